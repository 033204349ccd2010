"""Shared helpers at the bottom of the package: value checks, and atomic output.

Atomic output: a file or directory appears complete under its name, or not at all. Everything
spacy-hs writes goes through here, and so does the policy that nothing is lost
(``check_output_location``, and the ownership checks of ``staging_dir`` and
``atomic_outputs``):

* an output is never an input of the same command, nor inside a model or pipeline directory,
  whether named directly or through a symbolic link;
* a file named explicitly as the output is replaced, as ``cp`` would; but spacy-hs replaces a
  directory, or a file whose name it chose inside a directory you gave, only if everything it
  would delete is something spacy-hs wrote. Otherwise it refuses and lists the other files.

Outputs are first written to temporary siblings named ``.<name>.spacy-hs-<pid>-<random>.tmp``
and renamed into place once complete. They are created with the user's umask (a new directory
is 0755 and a file 0644 under umask 022; ``tempfile.mkstemp`` and ``mkdtemp`` would give 0600
and 0700). Temporaries left by a run that was killed (its process is gone) are removed by the
next run that writes the same output, and a directory replacement interrupted between its two
renames is undone (``recover_dir``) by the next run or load.
"""

from __future__ import annotations

import errno
import filecmp
import glob
import json
import os
import re
import shutil
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import (
    ConfigError,
    Errors,
    InputError,
    OutputError,
    OutputExistsError,
    SpacyHSError,
    Warnings,
    describe,
)

TAG = "spacy-hs"
PathLike = str | os.PathLike
# A temporary sibling's name: the output's name, this tag, the writer's pid, a random part.
_TEMPORARY = re.compile(rf"\.(?P<name>.+)\.{TAG}-\d+-[0-9a-f]+\.(?:tmp|old)")
# Directories nothing is written into: spacy-hs models (meta.json of a "spacy-hs.*" format) and
# spaCy pipelines (config.cfg beside meta.json).
MODEL_FORMAT_PREFIX = f"{TAG}."
_META_MAX_BYTES = 64 << 20
_LISTED = 10  # items named in an error message; the rest are counted
# errno values that say the file system has no room left for an output (disk, quota, file size).
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# numpy's ndarray.tofile() reports a short write without an errno.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_SURROGATES = re.compile("[\ud800-\udfff]")
# How an OSError reads as text ("[Errno 28] No space left on device: ..."), e.g. in shutil.Error.
_ERRNO = re.compile(r"\[Errno (\d+)\]")
# Says why an existing output may not be replaced (``atomic_outputs``), or None if it may.
NotOurs = Callable[[Path, Path], "str | None"]


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Threads per core beyond which more workers only wait (``max_workers``), and an absolute cap.
WORKERS_PER_CORE = 4
MAX_WORKERS = 256


def max_workers() -> int:
    """The most training threads a setting may ask for: ``WORKERS_PER_CORE`` per available
    core, at most ``MAX_WORKERS``."""
    return min(WORKERS_PER_CORE * available_cores(), MAX_WORKERS)


def check_max_workers(value: int, error: str, **where: Any) -> None:
    """ConfigError with the message ``error`` (formatted with ``where`` and the value, the limit,
    ``WORKERS_PER_CORE`` and the cores) if ``value`` threads or processes exceed ``max_workers``:
    beyond it they only wait for a core, and a huge number never finishes starting."""
    limit = max_workers()
    if value > limit:
        facts = {"value": value, "limit": limit, "factor": WORKERS_PER_CORE}
        raise ConfigError(error.format(**where, **facts, cores=available_cores()))


def available_memory() -> int:
    """Bytes of memory this process may use: the kernel's MemAvailable (free memory plus caches
    it can drop), at most a container's limit; physical memory where MemAvailable is unknown.
    Used only to refuse what cannot fit, so it errs on the generous side."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, OSError, ValueError):
            return 1 << 62  # unknown: no bound
    try:  # a container's limit (cgroup v2); its usage counts page cache, so it is not used
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit_file:
            limit = limit_file.read().strip()
        if limit != "max":
            available = min(available, int(limit))
    except (OSError, ValueError):
        pass
    return available


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. "9.6 TiB"."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"


def check_utf8(text: str, what: str) -> str:
    """``text`` if it is valid Unicode; InputError (E738) if it holds the lone surrogates by
    which Python smuggles undecodable bytes (command-line arguments and stdin are decoded with
    ``surrogateescape``), which spaCy's tokenizer and any UTF-8 output would choke on."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        byte = ord(char) - 0xDC00 if 0xDC80 <= ord(char) <= 0xDCFF else ord(char)
        raise InputError(Errors.E738.format(what=what, byte=byte, position=err.start)) from None
    return text


def utf8_safe(text: str) -> str:
    """``text`` with each lone surrogate (UTF-8 cannot encode it) as U+FFFD: for a page."""
    return _SURROGATES.sub("\ufffd", text)


def is_positive_int(value: Any) -> bool:
    """An integer >= 1 (numpy integers included), but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def special_file(path: PathLike) -> str | None:
    """What ``path`` is if it exists but is not a regular file nor a directory (a FIFO, a
    device, a socket), in words; else None. Inputs are refused on this before they are opened:
    opening a FIFO waits for a writer, and a device such as /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


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
    """Remove a temporary, if it is there. Clean-up never raises: on a read-only file system
    even unlinking a missing file fails (EROFS), and that would hide the error being reported."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _output_name(path: Path) -> Path:
    """The output a temporary sibling stands for (messages name what the user asked for)."""
    match = _TEMPORARY.fullmatch(path.name)
    return path.with_name(match["name"]) if match else path


def _no_room(err: BaseException) -> bool:
    """Whether ``err`` says the file system is full (ENOSPC, a quota, numpy's short write, or
    one of the errors ``shutil.copytree`` gathers as text)."""
    if not isinstance(err, OSError) or isinstance(err, SpacyHSError):
        return False
    if isinstance(err, shutil.Error):
        return _copy_errno(err) is not None
    if err.errno in _NO_ROOM:
        return True
    return err.errno is None and _SHORT_WRITE.fullmatch(str(err)) is not None


def _copy_errno(err: shutil.Error) -> int | None:
    """The first errno of a full file system among the errors ``copytree`` gathered as text."""
    entries = err.args[0] if err.args and isinstance(err.args[0], list) else []
    for entry in entries:
        if isinstance(entry, tuple):
            for code in map(int, _ERRNO.findall(str(entry[-1]))):
                if code in _NO_ROOM:
                    return code
    return None


def _full_error(path: Path, err: OSError) -> OutputError:
    """E019 for a full file system while writing ``path`` (named as the user gave it)."""
    path = _output_name(path)
    try:
        free = shutil.disk_usage(next(p for p in [path, *path.parents] if p.exists())).free
    except (OSError, StopIteration):
        free = 0
    if isinstance(err, shutil.Error):
        reason = f"{os.strerror(_copy_errno(err) or errno.ENOSPC)} (shutil.Error, copying)"
    else:
        reason = f"{err.strerror} ({type(err).__name__})" if err.strerror else describe(err)
    return OutputError(Errors.E019.format(path=path, reason=reason, free=free))


def _write_error(path: Path, err: OSError) -> OutputError:
    """E017 for an OSError while creating ``path``, naming the output, not a temporary."""
    if _no_room(err):
        return _full_error(path, err)
    path = _output_name(path)
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():  # mkdir says only "File exists"
                reason = f"{parent} is a file, not a directory"
                return OutputError(Errors.E017.format(path=path, reason=reason))
            break
    reason = f"{err.strerror} ({type(err).__name__})" if err.strerror else describe(err)
    return OutputError(Errors.E017.format(path=path, reason=reason))


def _prepare(path: Path) -> list[Path]:
    """Create the parent directory and clear stale temporaries; OutputError if impossible.
    Returns the directories it created, deepest first (``remove_empty`` on failure)."""
    created = missing_dirs(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        remove_empty(created)
        raise _write_error(path, err) from None
    recover_dir(path)
    remove_stale_temporaries(path)
    return created


def missing_dirs(directory: PathLike) -> list[Path]:
    """``directory`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in [Path(directory), *Path(directory).parents]:
        if path.exists() or path.is_symlink():
            break
        missing.append(path)
    return missing


def remove_empty(directories: Iterable[Path]) -> None:
    """Remove directories a failed run created (deepest first), as long as they are empty: a
    failed command leaves no empty output directory behind."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


@contextmanager
def failing_writes(target: PathLike) -> Iterator[None]:
    """Turn a full file system (``OSError`` ENOSPC, EDQUOT, EFBIG, or numpy's short write)
    while writing ``target`` into OutputError E019; other errors pass through unchanged."""
    try:
        yield
    except OSError as err:
        if _no_room(err):
            raise _full_error(Path(target), err) from None
        raise


@contextmanager
def atomic_outputs(
    paths: Sequence[PathLike], *, not_ours: NotOurs | None = None
) -> Iterator[list[Path]]:
    """Yield one temporary path per output; when the block succeeds, each temporary the block
    wrote is renamed onto its output, all after the block, so that either every output is
    replaced or (on an error) none is. Temporaries are always removed.

    not_ours(target, temporary): for outputs whose names spacy-hs chose (inside a directory
    the user gave), why an existing ``target`` may not be replaced by the new ``temporary``,
    or None if it may (it is something spacy-hs wrote, or holds the same bytes). A reason
    raises OutputExistsError (E183) before anything is renamed.
    """
    targets = [Path(p) for p in paths]
    created: list[Path] = []
    for target in targets:
        created += _prepare(target)
    temporaries = [temporary_sibling(target) for target in targets]
    done = False
    try:
        with failing_writes(targets[0] if targets else "."):
            yield temporaries
        written = [(t, target) for t, target in zip(temporaries, targets) if t.exists()]
        if not_ours is not None:
            for temporary, target in written:
                why = not_ours(target, temporary) if target.exists() else None
                if why:
                    raise OutputExistsError(Errors.E183.format(path=target, why=why))
        for temporary, target in written:
            _rename(temporary, target)
        done = True
    finally:
        for temporary in temporaries:
            _remove(temporary)
        if not done:
            remove_empty(created)


def same_content(target: Path, temporary: Path) -> str | None:
    """``not_ours`` for text outputs that carry no mark: an existing file may be replaced only
    by the same bytes (nothing is lost)."""
    if target.is_file() and filecmp.cmp(target, temporary, shallow=False):
        return None
    return "its content differs from what this run writes"


def open_new(path: Path, mode: str = "w", **open_kwargs: Any) -> IO:
    """Create and open ``path`` (it must not exist), with the user's umask; OutputError if
    the file system refuses."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise _write_error(path, err) from None
    return os.fdopen(fd, mode, **open_kwargs)


@contextmanager
def atomic_file(
    path: PathLike, mode: str = "w", *, not_ours: NotOurs | None = None, **open_kwargs: Any
) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success it is renamed to ``path``
    (if ``not_ours`` allows it to replace an existing one: see ``atomic_outputs``).

    On error the temporary file is removed and an existing ``path`` is left untouched.
    """
    with atomic_outputs([path], not_ours=not_ours) as (temporary,):
        with open_new(temporary, mode, **open_kwargs) as file:
            yield file


@contextmanager
def staging_dir(target: PathLike, owned: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a new temporary sibling directory of ``target``; on success it replaces
    ``target`` (``replace_dir``), else it is removed.

    An existing ``target`` is replaced only if everything in it is something spacy-hs wrote:
    a path the new directory holds too, or one of ``owned`` (see ``check_replaceable``);
    otherwise OutputExistsError (E182) lists the rest, and ``target`` is left as it was.
    """
    target = Path(target)
    owned = list(owned)
    created = _prepare(target)
    temporary = temporary_sibling(target)
    done = False
    try:
        try:
            temporary.mkdir()
        except OSError as err:
            raise _write_error(target, err) from None
        with failing_writes(target):
            yield temporary
        check_replaceable(target, [*owned, *_files_under(temporary)])
        replace_dir(temporary, target)
        done = True
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if not done:
            remove_empty(created)


# -- what may be replaced ---------------------------------------------------------------------


def _files_under(directory: Path) -> list[str]:
    """The relative POSIX paths of everything under ``directory`` that is not a directory."""
    found = []
    for root, dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        found.extend((relative / name).as_posix() for name in files)
        found.extend((relative / d).as_posix() for d in dirs if Path(root, d).is_symlink())
    return found


def unowned(target: PathLike, owned: Iterable[str]) -> list[str]:
    """What replacing the directory ``target`` would delete that spacy-hs did not write.

    owned: relative POSIX paths of what spacy-hs wrote under ``target``; one that ends in "/"
    stands for everything under it. Returns the other paths, sorted; a directory none of whose
    contents are owned is listed once, with a trailing "/". Symbolic links are not followed.
    """
    owned = set(owned)
    prefixes = tuple(p for p in owned if p.endswith("/"))
    found: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                inside = relative + "/"
                if inside in owned or inside.startswith(prefixes):
                    continue
                if any(p.startswith(inside) for p in owned):
                    walk(Path(entry.path), inside)
                else:
                    found.append(inside)
            elif relative not in owned and not relative.startswith(prefixes):
                found.append(relative)

    walk(Path(target), "")
    return found


def check_replaceable(target: PathLike, owned: Iterable[str]) -> None:
    """OutputExistsError (E182) listing what replacing the directory ``target`` would delete
    that spacy-hs did not write (``unowned``); nothing if ``target`` is not a directory."""
    target = Path(target)
    if not target.is_dir() or target.is_symlink():  # a symlink is replaced, not what it holds
        return
    items = unowned(target, owned)
    if items:
        listed = ", ".join(items[:_LISTED])
        if len(items) > _LISTED:
            listed += f" and {len(items) - _LISTED} more"
        raise OutputExistsError(Errors.E182.format(path=target, count=len(items), items=listed))


def protected_kind(directory: PathLike) -> str | None:
    """What ``directory`` is if nothing may be written into it (a spacy-hs model or a spaCy
    pipeline directory), else None."""
    directory = Path(directory)
    meta = directory / "meta.json"
    if not meta.is_file():
        return None
    if (directory / "config.cfg").is_file():
        return "a spaCy pipeline directory"
    try:
        if meta.stat().st_size > _META_MAX_BYTES:
            return None
        header = json.loads(meta.read_bytes())
    except (OSError, ValueError):
        return None
    found = header.get("format") if isinstance(header, dict) else None
    if isinstance(found, str) and found.startswith(MODEL_FORMAT_PREFIX):
        return "a spacy-hs model directory"
    return None


def check_output_location(
    output: PathLike, inputs: Iterable[PathLike | None] = (), *, replaces_dir: bool = False
) -> None:
    """OutputError unless writing ``output`` is safe: it must not be one of ``inputs`` (E180),
    nor, if it is a directory that will be replaced (``replaces_dir``), hold one (E180); and it
    must not lie inside a model or pipeline directory (E181). Paths are compared after
    resolving symbolic links, so a link cannot lead an output onto an input or into a model."""
    resolved = Path(os.path.realpath(output))
    for source in inputs:
        if source is None:
            continue
        source_path = Path(os.path.realpath(source))
        if source_path == resolved:
            raise OutputError(
                Errors.E180.format(path=output, relation="the same file as", input=source)
            )
        if replaces_dir and source_path.is_relative_to(resolved):
            raise OutputError(
                Errors.E180.format(path=output, relation="a directory holding", input=source)
            )
    for parent in resolved.parents:
        kind = protected_kind(parent)
        if kind is not None:
            raise OutputError(Errors.E181.format(path=output, directory=parent, kind=kind))
    check_writable(output)


def check_writable(output: PathLike) -> None:
    """OutputError (E017), before any work, if the directory ``output`` goes into (or its
    nearest existing parent) is on a read-only file system or not writable for this process."""
    existing = next((p for p in Path(output).parents if p.exists()), None)
    if existing is None or not existing.is_dir():
        return  # a parent that is a file: E017 when it is created, with its own reason
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        return
    if read_only or not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EROFS if read_only else errno.EACCES
        raise _write_error(Path(output), OSError(code, os.strerror(code), str(existing)))


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
        raise _write_error(target, err) from None
