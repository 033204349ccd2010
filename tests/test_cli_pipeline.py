"""`spacy-hs assemble`, `predict` and `package`, and the library functions behind them; the
end-to-end test installs a packaged pipeline into a fresh venv and loads it by name."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import spacy
import typer.main
from conftest import run_cli
from spacy.cli.package import get_third_party_dependencies

from spacy_hs import HSModel
from spacy_hs.cli import app
from spacy_hs.pipeline.package import PipelineError, assemble, package_pipeline

TEXT = "Hundreds of people have been forced to vacate their"


@pytest.fixture(scope="module")
def pipeline_dir(normalized_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipelines") / "hs_pipeline"
    result = run_cli("assemble", str(normalized_model_dir), str(path), "--lang", "en")
    assert result.exit_code == 0, result.output
    return path


invoke = run_cli


def test_every_option_has_help() -> None:
    commands = typer.main.get_command(app).commands
    for name in ("assemble", "predict", "package"):
        command = commands[name]
        assert command.help
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


COMMANDS = ["preprocess", "train", "evaluate", "assemble", "predict", "package", "render", "corpus"]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_reads_plainly(name: str) -> None:
    """Flags take no value (no ``<bool>``, --help included), arguments are named in capitals,
    the usage line reads INPUT... OUTPUT, and Rich markup swallows no [extra]."""
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "{" not in result.output
    usage = result.output.split("Usage: ")[1].split(" [OPTIONS] ")[1].split()[0]
    assert usage.isupper(), usage
    if name == "preprocess":
        assert "spacy-hs preprocess [OPTIONS] INPUT... OUTPUT" in result.output
        assert 'pip install "spacy-hs[dask]"' in result.output


def test_root_help_has_no_bool_metavar() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "<bool>" not in result.output


# -- assemble ----------------------------------------------------------------------------------


def test_assemble_writes_a_loadable_pipeline(pipeline_dir: Path, normalized_model: HSModel) -> None:
    nlp = spacy.load(pipeline_dir)
    assert nlp.pipe_names == ["sentencizer", "hs_predictor"]
    assert nlp.config["components"]["hs_predictor"]["model_path"] is None
    assert nlp.vocab.vectors.shape == normalized_model.vectors.shape
    doc = nlp(TEXT)
    words = [t.lower_ for t in doc]
    expected = normalized_model.predict_next(words)
    assert [w for w, _ in doc._.hs_next] == [w for w, _ in expected]
    assert doc[1]._.hs_logprob == pytest.approx(
        normalized_model.log_prob_next("of", ["hundreds"]), rel=1e-6
    )
    # Written atomically: no temporary directory is left beside it.
    assert [p.name for p in pipeline_dir.parent.iterdir()] == [pipeline_dir.name]


def test_assembled_pipeline_is_readable_by_others(normalized_model_dir: Path, tmp_path: Path):
    """Created with the user's umask, as any directory: 0755 under umask 022 (not mkdtemp's
    0700), its files 0644."""
    old = os.umask(0o022)
    try:
        assemble(normalized_model_dir, tmp_path / "shared" / "pipeline")
    finally:
        os.umask(old)
    pipeline = tmp_path / "shared" / "pipeline"
    assert stat.S_IMODE(pipeline.stat().st_mode) == 0o755
    assert stat.S_IMODE((pipeline / "hs_predictor").stat().st_mode) == 0o755
    assert stat.S_IMODE((pipeline / "config.cfg").stat().st_mode) == 0o644


def test_assemble_replaces_its_own_output_only(normalized_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "pipeline"
    assemble(normalized_model_dir, target, top_k=3)
    assemble(normalized_model_dir, target, top_k=4)  # a previous pipeline is replaced
    assert spacy.load(target).get_pipe("hs_predictor").top_k == 4
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    result = invoke("assemble", normalized_model_dir, other)
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output
    assert (other / "todo.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "pipeline"]


def test_assemble_bad_inputs(normalized_model_dir: Path, tmp_path: Path) -> None:
    result = invoke("assemble", tmp_path / "missing", tmp_path / "out")
    assert result.exit_code == 1 and "Missing model file" in result.output
    result = invoke("assemble", normalized_model_dir, tmp_path / "out", "--lang", "qq")
    assert result.exit_code == 1 and "Unknown language 'qq'" in result.output
    assert not (tmp_path / "out").exists()


# -- predict -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["model", "pipeline"])
def test_predict_prints_the_top_k(
    source: str, normalized_model_dir: Path, pipeline_dir: Path, normalized_model: HSModel
) -> None:
    path = normalized_model_dir if source == "model" else pipeline_dir
    result = invoke("predict", path, TEXT, "--top-k", "3")
    assert result.exit_code == 0, result.output
    expected = normalized_model.predict_next(TEXT.lower().split(), top_k=3)
    lines = result.raw.splitlines()
    table = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [row[1] for row in table] == [w for w, _ in expected]
    assert [float(row[2]) for row in table] == pytest.approx([p for _, p in expected], abs=1e-4)
    assert "Context (4 known words): been forced to their" in result.output


def test_predict_bad_inputs(tmp_path: Path, normalized_model_dir: Path) -> None:
    result = invoke("predict", tmp_path, "some words")
    assert result.exit_code == 1 and "neither an spacy-hs model directory" in result.output
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "plain")
    result = invoke("predict", tmp_path / "plain", "some words")
    assert result.exit_code == 1 and "has no hs_predictor component" in result.output
    result = invoke("predict", normalized_model_dir, "zzqx qqzx")
    assert result.exit_code == 0 and "nothing to predict" in result.output
    result = invoke("predict", normalized_model_dir, "the", "--head", "directional")
    assert result.exit_code == 1 and "has no 'directional' next-word head" in result.output


def test_predict_warns_when_no_word_is_known(directional_model: HSModel, tmp_path: Path) -> None:
    """The directional head predicts a first word from an empty context: say so, rather than
    print "Context (0 known words):"."""
    directional_model.to_disk(tmp_path / "model")
    result = invoke("predict", tmp_path / "model", "zzqx qqzx")
    assert result.exit_code == 0, result.output
    assert "0 known words" not in result.output
    assert "\u26a0 No word of the text's last sentence" in result.output
    assert "first word of a sentence" in result.output and "probability" in result.output


# -- package -----------------------------------------------------------------------------------


def test_spacy_finds_the_spacy_hs_requirement(pipeline_dir: Path) -> None:
    """spaCy's own requirement detection maps the hs_predictor factory to spacy-hs."""
    config = spacy.load(pipeline_dir).config
    assert any(r.startswith("spacy-hs>=") for r in get_third_party_dependencies(config))


def test_package_bad_inputs(pipeline_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not valid: use ASCII letters"):
        package_pipeline(pipeline_dir, tmp_path, "hs-news", "1.0.0")
    with pytest.raises(PipelineError, match="version '1.0' is not valid"):
        package_pipeline(pipeline_dir, tmp_path, "hs_news", "1.0")
    with pytest.raises(PipelineError, match="not a spaCy pipeline directory"):
        package_pipeline(tmp_path, tmp_path, "hs_news", "1.0.0")
    result = invoke("package", tmp_path, tmp_path / "out", "--name", "x", "--version", "1.0.0")
    assert result.exit_code == 1 and "not a spaCy pipeline directory" in result.output


def test_packaged_pipeline_installs_and_loads_by_name(pipeline_dir: Path, tmp_path: Path) -> None:
    """Build the wheel with `spacy-hs package`, install it with --no-index into a fresh venv
    that sees this environment's packages, and load it there by name."""
    out = tmp_path / "packages"
    command = [sys.executable, "-m", "spacy_hs", "package", str(pipeline_dir), str(out)]
    subprocess.run(
        command + ["--name", "hs_e2e", "--version", "1.2.3"], check=True, capture_output=True
    )
    wheel = out / "en_hs_e2e-1.2.3" / "dist" / "en_hs_e2e-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("en_hs_e2e-1.2.3.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert any("spacy-hs" in line for line in requires), requires
    assert any(line.split()[1].startswith("spacy<") for line in requires), requires
    with pytest.raises(PipelineError, match="already exists"):
        package_pipeline(pipeline_dir, out, "hs_e2e", "1.2.3")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The test environment's packages (spaCy, the editable spacy-hs) stay visible, with their
    # own .pth files processed; the package itself goes into the new venv.
    parent = sysconfig.get_paths()["purelib"]
    Path(site_packages, "_parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index"]
    subprocess.run(pip + [str(wheel)], check=True, capture_output=True)
    script = (
        "import json, spacy, en_hs_e2e\n"
        "nlp = spacy.load('en_hs_e2e')\n"
        f"doc = nlp({TEXT!r})\n"
        "print(json.dumps({'file': en_hs_e2e.__file__, 'next': doc._.hs_next}))\n"
    )
    result = subprocess.run([str(python), "-c", script], check=True, capture_output=True)
    got = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert Path(got["file"]).is_relative_to(venv)
    expected = spacy.load(pipeline_dir)(TEXT)._.hs_next
    assert [w for w, _ in got["next"]] == [w for w, _ in expected]
    assert [p for _, p in got["next"]] == pytest.approx([p for _, p in expected], rel=1e-9)


def test_cache_off_and_auto_on_predict_render_and_assemble(hs_model: HSModel, tmp_path) -> None:
    """Nothing in the CLI turned the document cache off; --cache off|auto does, on each."""
    from spacy_hs.pipeline.package import load_predictor_pipeline

    model = HSModel.from_bytes(hs_model.to_bytes())
    model.settings["cache"] = {"size": 50, "weight": 0.5}
    model.to_disk(tmp_path / "model")
    text = "the fire the fire the fire the"
    auto = invoke("predict", tmp_path / "model", text, "--cache", "auto")
    off = invoke("predict", tmp_path / "model", text, "--cache", "off")
    assert auto.exit_code == 0 and off.exit_code == 0, auto.output + off.output
    assert auto.output != off.output
    assert invoke("predict", tmp_path / "model", text).output == auto.output  # default: auto
    bad = invoke("predict", tmp_path / "model", text, "--cache", "on")
    assert bad.exit_code == 1 and "[E191] --cache must be 'off' or 'auto', got 'on'" in bad.output
    result = invoke("assemble", tmp_path / "model", tmp_path / "off", "--cache", "off")
    assert result.exit_code == 0, result.output
    assert load_predictor_pipeline(tmp_path / "off")[1].cache is None
    assert invoke("predict", tmp_path / "off", text).output == off.output
    on_again = invoke("predict", tmp_path / "off", text, "--cache", "auto")
    assert on_again.output == auto.output
    pages = {}
    for choice in ("auto", "off"):
        page = tmp_path / f"{choice}.html"
        result = invoke("render", tmp_path / "model", "-o", page, "--text", text, "--cache", choice)
        assert result.exit_code == 0, result.output
        pages[choice] = page.read_text(encoding="utf8")
    assert pages["auto"] != pages["off"]
