"""Shared helpers at the bottom of the package: value checks, and atomic output.

Atomic output: a file or directory appears complete under its name, or not at all. Everything
spacy-hs writes goes through here. Outputs are first written to temporary siblings
named ``.<name>.spacy-hs-<pid>-<random>.tmp`` and renamed into place once complete. They are
created with the user's umask (a new directory is 0755 and a file 0644 under umask 022;
``tempfile.mkstemp`` and ``mkdtemp`` would give 0600 and 0700). Temporaries left by a run that
was killed (its process is gone) are removed by the next run that writes the same output, and a
directory replacement interrupted between its two renames is undone (``recover_dir``).
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import Errors, OutputError, Warnings, describe

TAG = "spacy-hs"
PathLike = str | os.PathLike


def is_positive_int(value: Any) -> bool:
    """An integer >= 1 (numpy integers included), but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def temporary_sibling(path: Path, kind: str = "tmp") -> Path:
    """A new, unused name beside ``path`` for a temporary of this process."""
    return path.with_name(f".{path.name}.{TAG}-{os.getpid()}-{os.urandom(4).hex()}.{kind}")


def _owner_pid(temporary: Path) -> int | None:
    try:
        return int(temporary.name.rsplit(f".{TAG}-", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _siblings(path: Path, kind: str) -> list[Path]:
    pattern = f".{glob.escape(path.name)}.{TAG}-*.{kind}"
    return sorted(path.parent.glob(pattern)) if path.parent.is_dir() else []


def remove_stale_temporaries(path: PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` whose process is gone (a killed run); returns them."""
    removed = []
    for stale in _siblings(Path(path), "tmp"):
        pid = _owner_pid(stale)
        if pid is not None and not _alive(pid):
            _remove(stale)
            removed.append(stale)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prepare(path: Path) -> None:
    """Create the parent directory and clear stale temporaries; OutputError if impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(Errors.E017.format(path=path, reason=describe(err))) from None
    recover_dir(path)
    remove_stale_temporaries(path)


@contextmanager
def atomic_outputs(paths: Sequence[PathLike]) -> Iterator[list[Path]]:
    """Yield one temporary path per output; when the block succeeds, each temporary the block
    wrote is renamed onto its output, all after the block, so that either every output is
    replaced or (on an error) none is. Temporaries are always removed."""
    targets = [Path(p) for p in paths]
    for target in targets:
        _prepare(target)
    temporaries = [temporary_sibling(target) for target in targets]
    try:
        yield temporaries
        for temporary, target in zip(temporaries, targets):
            if temporary.exists():
                _rename(temporary, target)
    finally:
        for temporary in temporaries:
            _remove(temporary)


def open_new(path: Path, mode: str = "w", **open_kwargs: Any) -> IO:
    """Create and open ``path`` (it must not exist), with the user's umask; OutputError if
    the file system refuses."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise OutputError(Errors.E017.format(path=path, reason=describe(err))) from None
    return os.fdopen(fd, mode, **open_kwargs)


@contextmanager
def atomic_file(path: PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success it is renamed to ``path``.

    On error the temporary file is removed and an existing ``path`` is left untouched.
    """
    with atomic_outputs([path]) as (temporary,):
        with open_new(temporary, mode, **open_kwargs) as file:
            yield file


@contextmanager
def staging_dir(target: PathLike) -> Iterator[Path]:
    """Yield a new temporary sibling directory of ``target``; on success it replaces
    ``target`` (``replace_dir``), else it is removed."""
    target = Path(target)
    _prepare(target)
    temporary = temporary_sibling(target)
    try:
        temporary.mkdir()
    except OSError as err:
        raise OutputError(Errors.E017.format(path=target, reason=describe(err))) from None
    try:
        yield temporary
        replace_dir(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an old ``target`` is removed only once ``new`` is in place.

    The old directory is first renamed aside to ``.<name>.spacy-hs-<pid>-<random>.old``; if the
    process dies before the new one is in place, ``recover_dir`` puts it back.
    """
    if not target.exists() and not target.is_symlink():
        _rename(new, target)
        return
    old = temporary_sibling(target, "old")
    _rename(target, old)
    try:
        _rename(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_dir(target: PathLike) -> Path | None:
    """Undo a directory replacement that was interrupted between its two renames: if
    ``target`` is missing and a previous version of it was set aside by a process that is gone,
    put that version back (with a warning saying so). Returns the restored path, if any."""
    target = Path(target)
    aside = [p for p in _siblings(target, "old") if not _alive(_owner_pid(p) or os.getpid())]
    if not aside:
        return None
    if target.exists():  # the replacement finished; only the removal of the old copy did not
        for old in aside:
            _remove(old)
        return None
    newest = max(aside, key=lambda p: p.stat().st_mtime)
    os.replace(newest, target)
    for old in aside:
        if old != newest:
            _remove(old)
    warnings.warn(Warnings.W010.format(path=target, old=newest.name), stacklevel=3)
    return target


def _rename(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as err:
        if err.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
            raise OutputError(Errors.E018.format(path=target)) from None
        raise OutputError(Errors.E017.format(path=target, reason=describe(err))) from None
