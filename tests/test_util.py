"""spacy_hs.util: atomic output with the user's umask, stale temporaries, interrupted replaces."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_hs.errors import OutputError
from spacy_hs.util import (
    atomic_file,
    atomic_outputs,
    is_positive_int,
    recover_dir,
    remove_stale_temporaries,
    staging_dir,
    temporary_sibling,
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


def test_is_positive_int() -> None:
    assert is_positive_int(1) and is_positive_int(10**12)
    assert not any(is_positive_int(v) for v in (0, -1, True, 1.0, "1", None))
