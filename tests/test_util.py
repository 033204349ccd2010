"""spacy_hs.util: atomic output with the user's umask, stale temporaries, interrupted replaces."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_hs.errors import OutputError, OutputExistsError
from spacy_hs.util import (
    atomic_file,
    atomic_outputs,
    check_output_location,
    check_replaceable,
    is_positive_int,
    recover_dir,
    remove_stale_temporaries,
    same_content,
    staging_dir,
    temporary_sibling,
    unowned,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_users_umask(tmp_path: Path, umask_022: None) -> None:
    with atomic_file(tmp_path / "out.txt") as file:
        file.write("text")
    with staging_dir(tmp_path / "model") as staged:
        (staged / "inner.npy").write_bytes(b"x")
    assert mode(tmp_path / "out.txt") == 0o644
    assert mode(tmp_path / "model") == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.txt"]


def test_failed_outputs_leave_the_old_ones(tmp_path: Path) -> None:
    target, other = tmp_path / "a.txt", tmp_path / "b.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_outputs([target, other]) as (tmp_a, tmp_b):
            tmp_a.write_text("new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and not other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_killed_runs_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "corpus.tok.txt"
    dead = target.with_name(f".{target.name}.spacy-hs-{_dead_pid()}-abcd.tmp")
    dead.write_text("half written")
    mine = temporary_sibling(target)
    mine.write_text("still being written")
    assert remove_stale_temporaries(target) == [dead]
    assert not dead.exists() and mine.exists()
    with atomic_file(target) as file:  # every write clears them too
        file.write("done")
    assert target.read_text() == "done"


def test_an_interrupted_directory_replacement_is_recovered(tmp_path: Path) -> None:
    target = tmp_path / "hs_model"
    aside = target.with_name(f".{target.name}.spacy-hs-{_dead_pid()}-abcd.old")
    aside.mkdir()
    (aside / "meta.json").write_text("{}")
    with pytest.warns(UserWarning, match=r"hs_model was missing.*has been restored"):
        assert recover_dir(target) == target
    assert (target / "meta.json").read_text() == "{}" and not aside.exists()
    assert recover_dir(target) is None


def test_unwritable_outputs_are_output_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"Cannot write .*file/out.txt"):
        with atomic_file(blocker / "out.txt") as file:
            file.write("never")
    with pytest.raises(OutputError, match="Cannot write"):
        with atomic_file("/proc/spacy-hs-test.txt") as file:
            file.write("never")


def test_clean_up_never_hides_the_error(read_only_dir: Path) -> None:
    """On a read-only file system even removing a temporary that was never created fails
    (EROFS): that must not replace the E017 of the write itself."""
    for target in (read_only_dir / "out.txt", read_only_dir / "old.txt"):
        with pytest.raises(OutputError, match=r"\[E017\] Cannot write .*Read-only file system"):
            with atomic_file(target) as file:
                file.write("new")
        with pytest.raises(OutputError, match=r"\[E017\]"):
            with staging_dir(read_only_dir / "model") as directory:
                (directory / "x").write_text("x")
    with pytest.raises(OutputError, match=r"\[E017\] Cannot write .*Read-only file system"):
        check_output_location(read_only_dir / "new" / "out.txt")
    assert (read_only_dir / "old.txt").read_text() == "an earlier output\n"


def test_is_positive_int() -> None:
    assert is_positive_int(1) and is_positive_int(10**12)
    assert not any(is_positive_int(v) for v in (0, -1, True, 1.0, "1", None))


# -- nothing lost: where outputs may go, and what replacing may delete ------------------------


def _model_dir(path: Path) -> Path:
    path.mkdir()
    (path / "meta.json").write_text('{"format": "spacy-hs.hs-model", "format_version": 1}')
    return path


def test_outputs_never_land_on_inputs_or_inside_models(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("text")
    link = tmp_path / "link.txt"
    link.symlink_to(source)
    for output in (source, link):
        with pytest.raises(OutputError, match=r"\[E180\] .*the same file as"):
            check_output_location(output, [source])
    with pytest.raises(OutputError, match=r"\[E180\] .*a directory holding"):
        check_output_location(tmp_path, [source], replaces_dir=True)
    model = _model_dir(tmp_path / "model")
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "config.cfg").write_text("[nlp]\n")
    (pipeline / "meta.json").write_text("{}")
    alias = tmp_path / "alias"
    alias.symlink_to(model)
    for output, kind in (
        (model / "meta.json", "a spacy-hs model directory"),
        (model / "sub" / "deeper.txt", "a spacy-hs model directory"),
        (alias / "metrics.json", "a spacy-hs model directory"),
        (pipeline / "vocab" / "x", "a spaCy pipeline directory"),
    ):
        with pytest.raises(OutputError, match=rf"\[E181\] .*{kind}"):
            check_output_location(output)
    check_output_location(tmp_path / "out.txt", [source])  # anything else is fine
    check_output_location(model, replaces_dir=True)  # a model may be replaced, as a whole


def test_what_replacing_a_directory_would_delete(tmp_path: Path) -> None:
    target = tmp_path / "pipeline"
    (target / "vocab").mkdir(parents=True)
    (target / "vocab" / "strings.json").write_text("[]")
    (target / "config.cfg").write_text("")
    (target / "NOTES.md").write_text("mine")
    (target / "mine" / "deep").mkdir(parents=True)
    (target / "mine" / "deep" / "x.txt").write_text("mine")
    (target / "empty").mkdir()
    (target / "link").symlink_to(tmp_path)
    owned = ["config.cfg", "vocab/"]
    assert unowned(target, owned) == ["NOTES.md", "empty/", "link", "mine/"]
    assert unowned(target, ["config.cfg", "vocab/strings.json", "mine/deep/x.txt"]) == [
        "NOTES.md",
        "empty/",
        "link",
    ]
    with pytest.raises(OutputExistsError, match=r"\[E182\] .*4 item\(s\).*NOTES.md, empty/"):
        check_replaceable(target, owned)


def test_staging_dir_replaces_only_what_spacy_hs_wrote(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staging_dir(target) as staged:
        (staged / "a.npy").write_bytes(b"1")
    with staging_dir(target) as staged:  # the same files: replaced
        (staged / "a.npy").write_bytes(b"2")
    assert (target / "a.npy").read_bytes() == b"2"
    (target / "NOTES.md").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"\[E182\] .*NOTES.md"):
        with staging_dir(target) as staged:
            (staged / "a.npy").write_bytes(b"3")
    assert (target / "a.npy").read_bytes() == b"2" and (target / "NOTES.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left
    with staging_dir(target, owned=["NOTES.md"]) as staged:  # declared as ours: replaced
        (staged / "a.npy").write_bytes(b"4")
    assert sorted(p.name for p in target.iterdir()) == ["a.npy"]


def test_files_with_names_spacy_hs_chose_need_its_consent(tmp_path: Path) -> None:
    target = tmp_path / "wiki.txt"
    target.write_text("the user's text")
    with pytest.raises(OutputExistsError, match=r"\[E183\] .*wiki.txt: its content differs"):
        with atomic_outputs([target], not_ours=same_content) as (temporary,):
            temporary.write_text("spacy-hs text")
    assert target.read_text() == "the user's text"
    with atomic_outputs([target], not_ours=same_content) as (temporary,):
        temporary.write_text("the user's text")  # the same bytes: nothing is lost
    with atomic_file(tmp_path / "new.txt", not_ours=same_content) as file:
        file.write("no file there yet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "wiki.txt"]


def test_write_errors_name_the_output_not_its_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        with atomic_file(blocker / "sub" / "out.txt") as file:
            file.write("never")
    assert f"{blocker} is a file, not a directory" in str(info.value)
    with pytest.raises(OutputError) as info:
        with atomic_file("/proc/spacy-hs-test.txt") as file:
            file.write("never")
    assert "Cannot write /proc/spacy-hs-test.txt:" in str(info.value)
    assert ".tmp" not in str(info.value)
