"""Every bad input of issue 10, through the command line: a one-line error with its code and
exit code 1, never a traceback, never a hang, and no file lost. Then the cases where a run is
killed: its temporaries are removed by the next run, and an interrupted directory replacement
is undone by the next load or run, with a message saying so."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import spacy
from conftest import LEE, CliRun, mounted_tmpfs, run_cli
from isolated import run_python

from spacy_hs import HSModel
from spacy_hs.pipeline.package import assemble, package_pipeline
from spacy_hs.util import max_workers

FAST = [
    "--word2vec.vector_size", "8", "--word2vec.epochs", "1", "--word2vec.workers", "1",
    "--training.loss_sample", "100", "--head.enabled", "false",
]  # fmt: skip


def fails_with(result: CliRun, code: str, *fragments: object) -> None:
    """Exit code 1, one error (✘) carrying ``code``, the fragments in it, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.raw and "Aborted" not in result.raw
    assert result.output.count("\u2718") == 1, result.output  # one ✘ line (wrapped or not)
    assert f"\u2718 [{code}]" in result.output, result.output
    for fragment in fragments:
        assert str(fragment) in result.output, (fragment, result.output)


@pytest.fixture
def model(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's model directory, for tests that damage or protect it."""
    path = tmp_path / "model"
    shutil.copytree(model_dir, path)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` and its bytes: what must still be there afterwards."""
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


# -- preprocess: inputs that are not what their name says --------------------------------------


def test_fake_gz(tmp_path: Path) -> None:
    fake = tmp_path / "text.txt.gz"
    fake.write_text("plain text, not gzip\n")
    result = run_cli("preprocess", fake, tmp_path / "out.txt", "--no-progress")
    fails_with(result, "E184", fake, "gzip -t", "BadGzipFile")
    assert not (tmp_path / "out.txt").exists()


def test_fake_bz2(tmp_path: Path) -> None:
    fake = tmp_path / "text.txt.bz2"
    fake.write_text("plain text, not bzip2\n")
    result = run_cli("preprocess", fake, tmp_path / "out.txt", "--no-progress")
    fails_with(result, "E184", fake, "bzip2 -t")


def test_truncated_gz(tmp_path: Path) -> None:
    """It used to end in click's bare "Aborted." (an EOFError)."""
    data = gzip.compress(LEE.read_bytes())
    truncated = tmp_path / "lee.txt.gz"
    truncated.write_bytes(data[: len(data) // 2])
    result = run_cli("preprocess", truncated, tmp_path / "out.txt", "--no-progress")
    fails_with(result, "E184", truncated, "EOFError", "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lee.txt.gz"]  # no temporary left


@pytest.mark.parametrize("name", ["lee.zip", "lee.txt"])
def test_a_zip_archive_is_not_read_as_text(tmp_path: Path, name: str) -> None:
    """It was: its headers ("PK\\x03\\x04...lee.txt") ended up as tokens."""
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(LEE, "lee.txt")
    result = run_cli("preprocess", archive, tmp_path / "out.txt", "--no-progress")
    fails_with(result, "E115", archive, "is a zip archive, not text", f"unzip {archive}")
    assert not (tmp_path / "out.txt").exists()


def test_a_tar_archive_is_not_read_as_text(tmp_path: Path) -> None:
    archive = tmp_path / "lee.tar"
    subprocess.run(["tar", "-cf", archive, "-C", LEE.parent, LEE.name], check=True)
    result = run_cli("preprocess", archive, tmp_path / "out.txt", "--no-progress")
    fails_with(result, "E115", "is a tar archive", f"tar -xf {archive}")


# -- outputs that cannot be written ----------------------------------------------------------------


def test_output_under_proc(tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("some text here\n")
    result = run_cli("preprocess", text, "/proc/spacy-hs-out.txt", "--no-progress")
    fails_with(result, "E017", "Cannot write /proc/spacy-hs-out.txt")
    assert ".tmp" not in result.output  # names the output, not its temporary


def test_output_in_a_read_only_location(tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("some text here\n")
    if os.geteuid() == 0:  # root writes through permissions: use a read-only file system
        output = Path("/sys/spacy-hs-out.txt")
    else:
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        output = read_only / "out.txt"
    result = run_cli("preprocess", text, output, "--no-progress")
    fails_with(result, "E017", f"Cannot write {output}")


def test_output_whose_parent_is_a_file(tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("some text here\n")
    result = run_cli("preprocess", text, text / "out.txt", "--no-progress")
    fails_with(result, "E017", f"{text} is a file, not a directory")
    assert text.read_text() == "some text here\n"


def test_evaluate_plots_pointing_at_a_file(model: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots.png"
    plots.write_bytes(b"mine")
    result = run_cli("evaluate", model, "--plots", plots, "--no-progress")
    fails_with(result, "E186", plots)
    assert plots.read_bytes() == b"mine"


# -- model files that are not what they should be -----------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "assemble", "predict"])
def test_model_file_replaced_by_a_directory(model: Path, tmp_path: Path, command: str) -> None:
    """It used to end in an IsADirectoryError traceback."""
    (model / "vectors.npy").unlink()
    (model / "vectors.npy").mkdir()
    args = {
        "evaluate": ["evaluate", model, "--no-progress"],
        "assemble": ["assemble", model, tmp_path / "pipeline"],
        "predict": ["predict", model, "the"],
    }[command]
    fails_with(run_cli(*args), "E060", model / "vectors.npy", "a directory")


def test_format_version_as_a_string(model: Path) -> None:
    meta = json.loads((model / "meta.json").read_text())
    meta["format_version"] = "1"
    (model / "meta.json").write_text(json.dumps(meta))
    result = run_cli("evaluate", model, "--no-progress")
    fails_with(result, "E062", "format_version is '1' (str), not the integer 1")


def test_urandom_meta_through_the_cli(model: Path) -> None:
    (model / "meta.json").unlink()
    (model / "meta.json").symlink_to("/dev/urandom")
    run = run_python(
        "import sys; from spacy_hs.cli import main; sys.argv = ['spacy-hs'] + sys.argv[1:]; main()",
        "predict",
        str(model),
        "the",
        timeout=60,
    )
    assert not run.timed_out and run.returncode == 1
    assert "[E060]" in run.stdout + run.stderr and "Traceback" not in run.stderr


# -- nothing lost: outputs never over inputs or models ------------------------------------------


def test_evaluate_output_into_the_model(model: Path, tmp_path: Path) -> None:
    """`evaluate MODEL --output MODEL/meta.json` used to exit 0 and destroy the model."""
    before = snapshot(model)
    link = tmp_path / "link"
    link.symlink_to(model)
    alias = tmp_path / "metrics.json"
    alias.symlink_to(model / "meta.json")
    for output in (model / "meta.json", model / "metrics.json", link / "meta.json", alias):
        result = run_cli("evaluate", model, "--output", output, "--no-progress")
        fails_with(result, "E181", "a spacy-hs model directory")
    result = run_cli("evaluate", model, "--plots", model, "--no-progress")
    fails_with(result, "E181")
    assert snapshot(model) == before
    HSModel.from_disk(model)


def test_evaluate_output_over_the_heldout_file(model: Path, tmp_path: Path) -> None:
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("the government said\n")
    link = tmp_path / "link.txt"
    link.symlink_to(heldout)
    for output in (heldout, link):
        result = run_cli("evaluate", model, "--heldout", heldout, "--output", output)
        fails_with(result, "E180", "the same file as", heldout)
    assert heldout.read_text() == "the government said\n"


def test_preprocess_output_into_a_model(model: Path, tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("some text here\n")
    before = snapshot(model)
    result = run_cli("preprocess", text, model / "words.json", "--no-progress")
    fails_with(result, "E181", model)
    assert snapshot(model) == before


def test_corpus_into_a_model(model: Path) -> None:
    before = snapshot(model)
    fails_with(run_cli("corpus", model, "--max-articles", "1", "--no-lee"), "E181")
    assert snapshot(model) == before


def test_train_into_a_model(model: Path) -> None:
    result = run_cli("train", LEE, model, *FAST)
    fails_with(result, "E181", model)


def test_assemble_over_its_model(model: Path, tmp_path: Path) -> None:
    """A pipeline directory that holds the model it is built from would delete it."""
    pipeline = tmp_path / "pipeline"
    assemble(model, pipeline)
    inner = pipeline / "hs_predictor" / "model"
    fails_with(run_cli("assemble", inner, pipeline), "E180", "a directory holding")
    HSModel.from_disk(inner)


# -- nothing lost: replacing removes only what spacy-hs wrote -------------------------------------


def test_assemble_keeps_the_users_files(normalized_model_dir: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    assemble(normalized_model_dir, pipeline, top_k=4)  # its own output: replaced
    (pipeline / "NOTES.md").write_text("my notes")
    (pipeline / "extra").mkdir()
    (pipeline / "extra" / "data.txt").write_text("mine")
    (pipeline / "hs_predictor" / "model" / "README").write_text("also mine")
    before = snapshot(pipeline)
    result = run_cli("assemble", normalized_model_dir, pipeline, "--top-k", "5")
    fails_with(result, "E182", "3 item(s)", "NOTES.md", "extra/", "hs_predictor/model/README")
    assert snapshot(pipeline) == before
    assert spacy.load(pipeline).get_pipe("hs_predictor").top_k == 4


def test_assemble_keeps_components_it_did_not_add(
    normalized_model_dir: Path, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline"
    nlp = assemble(normalized_model_dir, pipeline)
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "acme"}])
    nlp.to_disk(pipeline)
    result = run_cli("assemble", normalized_model_dir, pipeline)
    fails_with(result, "E182", "entity_ruler")
    assert "entity_ruler" in spacy.load(pipeline).pipe_names


def test_train_keeps_the_users_files(model: Path, tmp_path: Path) -> None:
    output = tmp_path / "training"
    output.mkdir()
    shutil.copytree(model, output / "hs_model")
    (output / "hs_model" / "NOTES.md").write_text("my notes")
    (output / "hs_model" / "plots").mkdir()
    before = snapshot(output)
    start = time.perf_counter()
    result = run_cli("train", LEE, output, *FAST)
    fails_with(result, "E182", "NOTES.md", "plots/")
    assert time.perf_counter() - start < 20  # refused before gensim trains
    assert snapshot(output) == before


def test_train_keeps_a_gensim_file_it_did_not_save(tmp_path: Path) -> None:
    output = tmp_path / "training"
    assert run_cli("train", LEE, output, *FAST, "--save-gensim").exit_code == 0
    assert run_cli("train", LEE, output, *FAST, "--save-gensim").exit_code == 0  # its own
    (output / "word2vec.model").write_bytes(b"my own gensim model")
    result = run_cli("train", LEE, output, *FAST, "--save-gensim")
    fails_with(result, "E183", output / "word2vec.model", "does not record it")
    assert (output / "word2vec.model").read_bytes() == b"my own gensim model"


def test_corpus_keeps_the_users_wiki_txt(tmp_path: Path) -> None:
    """`spacy-hs corpus DIR` used to replace DIR/wiki.txt."""
    out = tmp_path / "corpus"
    args = ("corpus", out, "--max-articles", "1", "--no-lee")
    assert run_cli(*args).exit_code == 0
    assert run_cli(*args).exit_code == 0  # the same text again: nothing is lost
    (out / "wiki.txt").write_text("my own wiki notes\n")
    fails_with(run_cli(*args), "E183", out / "wiki.txt", "differs")
    assert (out / "wiki.txt").read_text() == "my own wiki notes\n"


def test_evaluate_keeps_a_plot_it_did_not_draw(model: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    model_dir = tmp_path / "with_loss"
    loaded = HSModel.from_disk(model)
    loaded.meta["loss_history"] = [3.0, 2.5]
    loaded.to_disk(model_dir)
    args = ("evaluate", model_dir, "--plots", plots, "--no-progress")
    assert run_cli(*args).exit_code == 0
    assert run_cli(*args).exit_code == 0  # its own plot is replaced
    (plots / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\nmy own plot")
    fails_with(run_cli(*args), "E183", plots / "loss.png", "not a plot drawn by spacy-hs")
    assert (plots / "loss.png").read_bytes().endswith(b"my own plot")


def test_package_keeps_the_users_files(normalized_model_dir: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    out = tmp_path / "packages"
    package_pipeline(pipeline, out, "keep", "1.0.0")
    package_pipeline(pipeline, out, "keep", "1.0.0", force=True)  # its own: replaced
    notes = out / "en_keep-1.0.0" / "NOTES.md"
    notes.write_text("release notes")
    args = ("package", pipeline, out, "--name", "keep", "--version", "1.0.0", "--force")
    fails_with(run_cli(*args), "E182", "NOTES.md")
    assert notes.read_text() == "release notes"


# -- packaging --------------------------------------------------------------------------------


def test_package_refuses_symlinks(normalized_model_dir: Path, tmp_path: Path) -> None:
    """A symlink inside the pipeline used to pack the file it points to into the wheel."""
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the wheel")
    (pipeline / "vocab" / "extra.txt").symlink_to(secret)
    result = run_cli("package", pipeline, tmp_path / "out", "--name", "x", "--version", "1.0.0")
    fails_with(result, "E331", "vocab/extra.txt")
    assert not (tmp_path / "out").exists()


def test_package_output_inside_the_pipeline(normalized_model_dir: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    before = snapshot(pipeline)
    result = run_cli("package", pipeline, pipeline / "dist", "--name", "x", "--version", "1.0.0")
    fails_with(result, "E181", "a spaCy pipeline directory")
    assert snapshot(pipeline) == before


def test_package_version_is_normalised_once(normalized_model_dir: Path, tmp_path: Path) -> None:
    """--version 01.2.3 used to name the directory ...-01.2.3 but the wheel ...-1.2.3."""
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    out = tmp_path / "packages"
    result = run_cli("package", pipeline, out, "--name", "v", "--version", "01.2.3")
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["en_v-1.2.3"]
    # spaCy's own messages name where the package is, not the temporary directory it was
    # built in (gone by now).
    assert ".tmp" not in result.output and "spacy-hs-" not in result.output, result.output
    assert str(out / "en_v-1.2.3") in result.output
    wheel = out / "en_v-1.2.3" / "dist" / "en_v-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert "Version: 1.2.3" in archive.read("en_v-1.2.3.dist-info/METADATA").decode()
    result = run_cli("package", pipeline, out, "--name", "v", "--version", "1.2.3")
    fails_with(result, "E317", "en_v-1.2.3")  # the same version


# -- killed runs ---------------------------------------------------------------------------


def test_temporaries_of_a_killed_preprocess_are_removed(tmp_path: Path) -> None:
    """preprocess is killed while it writes (its input takes a while): its hidden temporaries
    stay behind, and the next run writing the same output removes them."""
    large = tmp_path / "input.txt"
    large.write_text(LEE.read_text(encoding="utf8") * 40, encoding="utf8")
    output = tmp_path / "out" / "corpus.txt"
    command = [sys.executable, "-m", "spacy_hs", "preprocess", str(large), str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(output.parent.glob(".*.tmp")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = sorted(p.name for p in output.parent.glob(".*.tmp"))
    assert left == [f".corpus.txt.spacy-hs-{process.pid}-{left[0].rsplit('-', 1)[1]}"]
    text = tmp_path / "text.txt"
    text.write_text("Hello there. A second sentence.\n")
    assert run_cli("preprocess", text, output, "--no-progress").exit_code == 0
    assert sorted(p.name for p in output.parent.iterdir()) == ["corpus.txt", "corpus.txt.meta.json"]


# Replace a model directory, and die between the two renames of the replacement.
KILLED_REPLACEMENT = """
import os, sys
from spacy_hs import HSModel
from spacy_hs.pipeline.package import assemble
real = os.replace
def replace(source, target):
    real(source, target)
    if str(target).endswith(".old"):  # the old version is set aside; the new one is not in place
        os._exit(9)
os.replace = replace
kind, source, target = sys.argv[1:]
if kind == "model":
    HSModel.from_disk(source).to_disk(target)
else:
    assemble(source, target)
"""


def test_an_interrupted_model_replacement_is_recovered_by_the_next_load(
    model: Path, tmp_path: Path
) -> None:
    before = snapshot(model)
    run = run_python(KILLED_REPLACEMENT, "model", str(model), str(model), timeout=120)
    assert run.returncode == 9, run.stderr
    assert not model.exists() and list(tmp_path.glob(".model.spacy-hs-*.old"))
    with pytest.warns(UserWarning, match=r"\[W010\] .*model was missing.*has been restored"):
        HSModel.from_disk(model)
    assert snapshot(model) == before
    assert not list(tmp_path.glob(".model.spacy-hs-*.old"))
    HSModel.from_disk(model).to_disk(model)  # the next write clears the dead run's staging
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_interrupted_pipeline_replacement_is_recovered_by_the_next_run(
    normalized_model_dir: Path, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline"
    assemble(normalized_model_dir, pipeline)
    before = snapshot(pipeline)
    run = run_python(
        KILLED_REPLACEMENT, "pipeline", str(normalized_model_dir), str(pipeline), timeout=120
    )
    assert run.returncode == 9, run.stderr
    assert not pipeline.exists()
    result = run_cli("predict", pipeline, "the government")
    assert result.exit_code == 0, result.output
    assert "[W010]" in result.output and "has been restored" in result.output
    assert snapshot(pipeline) == before
    result = run_cli("assemble", normalized_model_dir, pipeline)  # and the next run cleans up
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline"]


@pytest.mark.parametrize("option", ["--word2vec.window", "--head.context_size"])
def test_context_sizes_are_bounded_before_training(tmp_path: Path, option: str) -> None:
    """A model that reads more context words than loading accepts is never trained."""
    start = time.perf_counter()
    result = run_cli("train", LEE, tmp_path / "out", *FAST, option, "100000")
    fails_with(result, "E160", option[2:], "an integer from 1 to 256, got 100000")
    assert time.perf_counter() - start < 20 and not (tmp_path / "out").exists()


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test, holding ``old.txt`` and then filled to the last
    byte (needs root; skipped where mounting is not allowed). Always unmounted."""
    with mounted_tmpfs(tmp_path / "disk") as disk:
        (disk / "old.txt").write_text("an earlier output\n")
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 16, 1 << 10, 1):  # fill to the last byte
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        yield disk


def assert_nothing_written(disk: Path) -> None:
    """Only what was there before: no temporaries, no empty output directories."""
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "old.txt"]
    assert (disk / "old.txt").read_text() == "an earlier output\n"


@pytest.mark.parametrize(
    "command",
    [
        ["preprocess", LEE, "{disk}/old.txt", "--no-progress"],
        ["preprocess", LEE, "{disk}/new/corpus.txt", "--no-progress"],
        ["train", LEE, "{disk}/training", *FAST],
        ["train", LEE, "{disk}/training", *FAST, "--save-gensim"],
        ["assemble", "{model}", "{disk}/pipeline"],
        ["render", "{model}", "--text", "The man said.", "-o", "{disk}/old.txt"],
        ["render", "{model}", "--text", "The man said.", "-o", "{disk}/view/view.html"],
        ["evaluate", "{model}", "-o", "{disk}/old.txt", "--no-progress"],
        ["evaluate", "{model}", "-o", "{disk}/metrics/m.json", "--no-progress"],
    ],
    ids=[
        "preprocess-over-old",
        "preprocess-new-dir",
        "train",
        "train-save-gensim",
        "assemble",
        "render-over-old",
        "render-new-dir",
        "evaluate-over-old",
        "evaluate-new-dir",
    ],
)
def test_a_full_disk_is_one_error(model_dir: Path, full_disk: Path, command: list) -> None:
    """No traceback (OSError ENOSPC, numpy's "N requested and M written"): one line with its
    code and exit 1; nothing half-written, the earlier output intact, no empty directory."""
    args = [str(a).format(disk=full_disk, model=model_dir) for a in command]
    result = run_cli(*args)
    fails_with(result, "E019", "the file system is full")
    assert_nothing_written(full_disk)


def test_a_full_tmpdir_is_one_error(full_disk: Path, tmp_path: Path, monkeypatch) -> None:
    """A full TMPDIR gave a raw ENOSPC from the head's scratch files, after gensim had
    trained."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(full_disk))
    monkeypatch.setattr(tempfile, "tempdir", str(full_disk))
    head = ["--head.enabled", "true", "--head.epochs", "1", "--head.ngram_orders", "0"]
    result = run_cli("train", LEE, tmp_path / "out", *FAST, *head)
    fails_with(result, "E419", "TMPDIR", "4 bytes per token")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.txt"]


def test_package_on_a_disk_too_small_is_one_error(model_dir: Path, tmp_path: Path) -> None:
    """spaCy's packaging copies the pipeline with shutil.copytree, which gathers ENOSPC into a
    shutil.Error: E019, and nothing half-written on the disk (a 512 KiB tmpfs, smaller than
    the pipeline: needs root, skipped where mounting is not allowed)."""
    pipeline = tmp_path / "pipeline"
    assemble(model_dir, pipeline)
    with mounted_tmpfs(tmp_path / "disk", "512k") as disk:
        args = ("package", pipeline, disk / "packages", "--name", "small", "--version", "1.0.0")
        result = run_cli(*args)
        fails_with(result, "E019", disk / "packages" / "en_small-1.0.0", "shutil.Error")
        assert list(disk.iterdir()) == []


# -- a read-only output location --------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["preprocess", LEE, "{ro}/old.txt", "--no-progress"],
        ["preprocess", LEE, "{ro}/new/corpus.txt", "--no-progress"],
        ["preprocess", LEE, "{tmp}/corpus.txt", "--heldout", "{ro}/heldout.txt", "--no-progress"],
        ["render", "{model}", "--text", "The man said.", "-o", "{ro}/old.txt"],
        ["evaluate", "{model}", "-o", "{ro}/metrics.json", "--no-progress"],
    ],
    ids=["preprocess", "preprocess-new-dir", "preprocess-heldout", "render", "evaluate"],
)
def test_a_read_only_output_is_one_error_before_the_work(
    model_dir: Path, read_only_dir: Path, tmp_path: Path, command: list
) -> None:
    """Not a raw OSError [Errno 30] from the clean-up of the temporary, after all the work:
    E017 that says the file system is read-only, before the work starts."""
    args = [str(a).format(ro=read_only_dir, model=model_dir, tmp=tmp_path) for a in command]
    result = run_cli(*args)
    output = next(a for a in args if str(read_only_dir) in a)
    fails_with(result, "E017", f"Cannot write {output}", "Read-only file system")
    assert "Wrote" not in result.output and not (tmp_path / "corpus.txt").exists()
    assert (read_only_dir / "old.txt").read_text() == "an earlier output\n"


# -- preprocess options: checked before any work -----------------------------------------------


TOO_MANY = max_workers() + 1  # worker processes: one more than training's threads may be


@pytest.mark.parametrize(
    "options, code, fragments",
    [
        (["--n-process", str(TOO_MANY)], "E114", [f"--n-process {TOO_MANY} is more than"]),
        (["-e", "dask", "--workers", str(TOO_MANY)], "E114", [f"--workers {TOO_MANY} is more"]),
        (["--heldout-seed", str(10**23)], "E190", ["--heldout-seed", str(2**63 - 1)]),
        (["-e", "dask", "--scheduler-timeout", "inf"], "E110", ["timeout", "at most 86400"]),
        (["-e", "dask", "--chunk-mb", "inf"], "E110", ["chunk_mb"]),
    ],
    ids=["n-process", "workers", "heldout-seed", "scheduler-timeout", "chunk-mb"],
)
def test_preprocess_options_are_bounded_before_the_work(
    tmp_path: Path, options: list[str], code: str, fragments: list[str]
) -> None:
    """No uncapped process pool (64 processes took 81 s against 3 s; 24 Dask workers 4.6 GB),
    no OverflowError from meta.json after all the work, no KeyError from Dask."""
    output = tmp_path / "out.txt"
    args = ["--heldout", tmp_path / "heldout.txt"] if "--heldout-seed" in options else []
    start = time.perf_counter()
    result = run_cli("preprocess", LEE, output, *options, *args, "--no-progress")
    fails_with(result, code, *fragments)
    assert time.perf_counter() - start < 20 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address", ["nonsense", "tcp://host:port", "foo://host:8786"])
def test_a_bad_scheduler_address_is_one_error(tmp_path: Path, address: str) -> None:
    """E801 and nothing after it: not a ``Client.__del__`` traceback when the half-made Client
    is collected."""
    pytest.importorskip("distributed")
    command = [sys.executable, "-m", "spacy_hs", "preprocess", str(LEE), str(tmp_path / "o.txt")]
    command += ["-e", "dask", "--scheduler", address, "--scheduler-timeout", "2", "--no-progress"]
    env = {**os.environ, "COLUMNS": "4000", "NO_COLOR": "1"}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[E801]" in run.stdout and address in run.stdout
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr


# -- Ctrl-C --------------------------------------------------------------------------------------


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


@pytest.mark.parametrize(
    "moment, marker",
    [
        ("imports", "_multiarray_umath"),  # numpy's core: the commands are being imported
        ("arguments", "_pydantic_core"),  # typer loads pydantic to convert the options
        ("training", "Training gensim"),  # printed as gensim starts
    ],
)
def test_ctrl_c_is_quiet_at_any_moment(tmp_path: Path, moment: str, marker: str) -> None:
    """The installed command stopped by Ctrl-C while it imports numpy and spaCy (it printed a
    KeyboardInterrupt traceback), reads its arguments (typer exited with 130 and said
    nothing) or trains (click's "Aborted!", exit 1): one line, exit code 130, no output."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see what the process has loaded")
    script = Path(sys.executable).with_name("spacy-hs")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "spacy_hs"]
    big = tmp_path / "big.txt"  # training lasts long enough to be interrupted
    big.write_bytes(LEE.read_bytes() * 20)
    command += ["train", str(big), str(tmp_path / "out"), "--word2vec.vector_size", "8"]
    command += ["--word2vec.epochs", "5", "--word2vec.workers", "1", "--head.enabled", "false"]
    env = {**os.environ, "COLUMNS": "4000", "ANSI_COLORS_DISABLED": "1", "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C's default action, as in a terminal: a background job of a non-interactive
        # shell (a CI run with `&`) starts with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert run.stdout is not None
    said = ""
    try:
        deadline = time.monotonic() + 120
        if moment == "training":
            while marker not in said:
                line = run.stdout.readline()
                assert line and time.monotonic() < deadline, run.communicate()
                said += line
        else:
            while marker not in _maps(run.pid):  # this library has just loaded
                assert run.poll() is None and time.monotonic() < deadline, run.communicate()
                time.sleep(0.002)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130, (said + stdout, stderr)
    assert "Traceback" not in stderr and "Aborted" not in stdout + stderr, stderr
    lines = [line for line in (said + stdout).splitlines() if line.strip()]
    assert lines[-1] == "\u2718 Interrupted.", said + stdout
    assert not (tmp_path / "out").exists()


# -- absurd training settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, fragments",
    [
        ("--word2vec.vector_size", "1000000000", ["word2vec.vector_size", "16 bytes per"]),
        ("--word2vec.workers", "100000", ["word2vec.workers = 100000", "times the"]),
        ("--head.workers", "100000", ["head.workers = 100000", "times the"]),
        ("--word2vec.@settings", "spacy.Tokenizer.v1", ["not registered", "spacy_hs.word2vec.v1"]),
        ("--word2vec.@settings", "nope.v1", ["[word2vec]", "spacy_hs.word2vec.v1"]),
        ("--word2vec.@settings", "spacy_hs.head.v1", ["reads the [head] section"]),
        ("--head.@settings", "spacy_hs.word2vec.v1", ["spacy_hs.head.v1"]),
        ("--training.@settings", "spacy_hs.head.v1", ["spacy_hs.training.v1"]),
    ],
)
def test_absurd_settings_fail_before_training(
    tmp_path: Path, option: str, value: str, fragments: list[str]
) -> None:
    """No numpy _ArrayMemoryError, no endless thread start-up, no catalogue.RegistryError or
    TypeError: one line with its code, in seconds, and no output directory."""
    start = time.perf_counter()
    result = run_cli("train", LEE, tmp_path / "out", *FAST, option, value)
    code = {"vector_size": "E160", "workers": "E163", "@settings": "E169"}[option.split(".")[1]]
    fails_with(result, code, *fragments)
    assert time.perf_counter() - start < 20 and not (tmp_path / "out").exists()


# -- text that is not UTF-8 -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, stdin",
    [
        (["predict", "{model}", "caf\udce9 au lait"], None),  # argv's surrogateescape
        (["render", "{model}", "--text", "caf\udce9 au lait", "-o", "{out}"], None),
        (["render", "{model}", "-", "-o", "{out}"], b"the man\ncaf\xe9 au lait\n"),
    ],
    ids=["predict-TEXT", "render-text", "render-stdin"],
)
def test_text_that_is_not_utf8(model_dir: Path, tmp_path: Path, args: list, stdin) -> None:
    """Bytes of another encoding on the command line or stdin: the error a file gets (not
    "UnicodeEncodeError: surrogates not allowed" from spaCy's tokenizer)."""
    out = tmp_path / "view.html"
    result = run_cli(*[a.format(model=model_dir, out=out) for a in args], stdin=stdin)
    fails_with(result, "E738", "is not UTF-8 (byte 0xe9 at character 3)", "iconv")
    assert not out.exists()


# -- inputs that are not regular files, or cannot be read -------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO nobody writes to: opening it for reading would block for ever."""
    path = tmp_path / "fifo.txt"
    os.mkfifo(path)
    return path


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A file this process may not read: mode 000, or for root (who may read any such file)
    a write-only file of /proc."""
    if os.geteuid() != 0:
        path = tmp_path / "unreadable.txt"
        path.write_text("the man said\n")
        path.chmod(0)
        return path
    path = Path("/proc/sys/vm/compact_memory")  # mode 0200: root may write it, not read it
    if not path.exists() or os.access(path, os.R_OK):
        pytest.skip("no file here that root may not read")
    return path


def run_within(seconds: float, *args: object) -> CliRun:
    """``run_cli`` in a child process, killed after ``seconds``: a FIFO must not block."""
    command = [sys.executable, "-m", "spacy_hs", *map(str, args)]
    env = {**os.environ, "COLUMNS": "4000", "NO_COLOR": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"spacy-hs {' '.join(map(str, args[:1]))} blocked for {seconds} s")
    result = CliRun.__new__(CliRun)
    result.exit_code, result.exception = done.returncode, SystemExit(done.returncode)
    result.raw = done.stdout + done.stderr
    result.output = " ".join(result.raw.split())
    return result


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["evaluate", "{model}", "--heldout", "/dev/null"], "E171", "is a character device"),
        (["evaluate", "{model}", "--heldout", "{tmp}"], "E151", "is a directory"),
        (["evaluate", "{model}", "--heldout", "{fifo}"], "E171", "is a FIFO (named pipe)"),
        (["train", "{fifo}", "{tmp}/out", *FAST], "E171", "Corpus file"),
        (["train", LEE, "{tmp}/out", *FAST, "--heldout", "{fifo}"], "E171", "Held-out file"),
        (["preprocess", "{fifo}", "{tmp}/out.txt"], "E113", "is a FIFO (named pipe)"),
        (["render", "{model}", "{fifo}", "-o", "{tmp}/v.html"], "E740", "is a FIFO"),
        (["evaluate", "{model}", "--similarity", "{fifo}"], "E210", "is a FIFO"),
        (["evaluate", "{model}", "--gensim-model", "{tmp}"], "E210", "is a directory"),
    ],
    ids=[
        "evaluate-dev-null",
        "evaluate-directory",
        "evaluate-fifo",
        "train-fifo",
        "train-heldout-fifo",
        "preprocess-fifo",
        "render-fifo",
        "evaluate-similarity-fifo",
        "evaluate-gensim-model-directory",
    ],
)
def test_inputs_that_are_not_regular_files(
    model_dir: Path, tmp_path: Path, fifo: Path, args: list, code: str, fragment: str
) -> None:
    """Refused before they are opened: no block on a FIFO, no "does not exist" for /dev/null."""
    values = {"model": model_dir, "tmp": tmp_path, "fifo": fifo}
    result = run_within(60, *[str(a).format(**values) for a in args])
    fails_with(result, code, fragment)
    assert "does not exist" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.txt").exists()


def test_a_fifo_as_the_corpus_meta_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    shutil.copy(LEE, corpus)
    os.mkfifo(tmp_path / "corpus.txt.meta.json")
    result = run_within(60, "train", corpus, tmp_path / "out", *FAST)
    fails_with(result, "E165", "corpus.txt.meta.json", "is a FIFO (named pipe), not a regular")
    assert "Training gensim" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["preprocess", "{path}", "{tmp}/out.txt", "--no-progress"],
        ["train", "{path}", "{tmp}/out", *FAST],
        ["evaluate", "{model}", "--heldout", "{path}", "--no-progress"],
        ["render", "{model}", "{path}", "-o", "{tmp}/v.html"],
        ["evaluate", "{model}", "--analogies", "{path}", "--no-progress"],
    ],
    ids=["preprocess", "train", "evaluate", "render", "evaluate-analogies"],
)
def test_unreadable_inputs(model_dir: Path, tmp_path: Path, unreadable: Path, args: list) -> None:
    """Not click's "Invalid value ... is not readable" (exit 2, no code): our E185, exit 1."""
    values = {"model": model_dir, "tmp": tmp_path, "path": unreadable}
    result = run_cli(*[str(a).format(**values) for a in args])
    fails_with(result, "E185", "Cannot read input", "ermission denied")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["render", "{model}", "--text", "The man", "-o", "{tmp}/v.html", "--top-k", "1000"],
            "--top-k must be",
        ),
        (
            ["render", "{model}", "--text", "The man", "-o", "{tmp}/v.html", "--max-docs", "-1"],
            "--max-docs must be",
        ),
        (["predict", "{model}", "The man", "--top-k", "0"], "--top-k must be"),
        (["preprocess", LEE, "{tmp}/o.txt", "--batch-size", "0"], "--batch-size must be"),
    ],
    ids=["render-top-k", "render-max-docs", "predict-top-k", "preprocess-batch-size"],
)
def test_numbers_out_of_range_exit_1_with_a_code(
    model_dir: Path, tmp_path: Path, args: list, fragment: str
) -> None:
    values = {"model": model_dir, "tmp": tmp_path}
    result = run_cli(*[str(a).format(**values) for a in args])
    fails_with(result, "E190", fragment)
    assert not (tmp_path / "v.html").exists() and not (tmp_path / "o.txt").exists()


def test_train_checks_its_corpus_before_announcing_training(tmp_path: Path) -> None:
    result = run_cli("train", tmp_path / "missing.txt", tmp_path / "out", *FAST)
    fails_with(result, "E150", "does not exist")
    assert "Training gensim" not in result.output
