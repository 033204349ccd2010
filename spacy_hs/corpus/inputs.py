"""The inputs of preprocessing: which files to read, and their documents in batches.

A document is a non-blank line of a text file or one record of a JSONL file (its ``"text"``);
either may be gzip or bzip2 compressed. Files are read line by line, in `WorkUnit` pieces
(whole files, or byte ranges of uncompressed ones, for engines that split the work), and
decoded as UTF-8 with bad bytes replaced and counted. Memory is bounded: over-long lines are
read in pieces, and batches hold at most ``batch_size`` documents and ``BATCH_CHARS``
characters.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import os
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import srsly

from ..errors import Errors, InputError, InputNotFoundError, Warnings, describe
from ..util import special_file

PathLike = str | os.PathLike
TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl",)
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open}
# For messages about a compressed input that cannot be read: its format and how to test it.
COMPRESSED_FORMATS = {".gz": ("gzip", "gzip -t"), ".bz2": ("bzip2", "bzip2 -t")}
# Upper bound on the characters of one batch: with long documents, batch_size alone would let a
# batch (and memory) grow with document length.
BATCH_CHARS = 1_000_000
_DECODE_ERRORS = "spacy_hs.count_replace"


@dataclass
class WorkUnit:
    """A piece of one input file: the whole file, or bytes ``[start, end)`` of an uncompressed
    one. ``start`` and ``end`` lie at line starts (just after a newline byte), so each document
    is read whole, and decoded exactly as when the whole file is read."""

    path: Path
    start: int = 0
    end: int | None = None  # None: to the end of the file

    def __str__(self) -> str:
        if self.start == 0 and self.end is None:
            return str(self.path)
        end = "end" if self.end is None else f"{self.end:,}"
        return f"{self.path} (bytes {self.start:,}-{end})"


# Archives and compressed formats spacy-hs does not read (.gz and .bz2 it decompresses), by
# their signatures (at an offset, the file's first bytes): no text file starts so.
_ARCHIVES = [
    (0, b"PK\x03\x04", "a zip archive", "unzip {path}"),
    (0, b"PK\x05\x06", "a zip archive", "unzip {path}"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7z archive", "7z x {path}"),
    (0, b"Rar!\x1a\x07", "a RAR archive", "unrar x {path}"),
    (0, b"\xfd7zXZ\x00", "xz-compressed data", "unxz -k {path}"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed data", "unzstd {path}"),
    (257, b"ustar", "a tar archive", "tar -xf {path}"),
]


def archive_kind(path: PathLike) -> tuple[str, str] | None:
    """(what it is, the command that extracts it) if the file at ``path`` is an archive or
    compressed data of a format spacy-hs does not read (zip, tar, 7z, RAR, xz, zstd), from its
    first bytes; else None. Such a file read as text turns its headers into words."""
    try:
        with open(path, "rb") as file:
            head = file.read(512)
    except OSError:
        return None  # reported when the file is read
    for offset, magic, kind, command in _ARCHIVES:
        if head[offset : offset + len(magic)] == magic:
            return kind, command.format(path=path)
    return None


def collect_input_files(inputs: Sequence[PathLike]) -> list[Path]:
    """The files to read, in order: files as given, directories walked recursively and sorted.

    Hidden files and directories are skipped; in directories only text and JSONL files are read
    (optionally compressed), with a warning naming what was skipped.
    """
    files: list[Path] = []
    for path in map(Path, inputs):
        if not path.exists():
            raise InputNotFoundError(Errors.E100.format(path=path))
        kind = special_file(path)
        if kind is not None:  # opening a FIFO would wait for a writer
            raise InputError(Errors.E113.format(path=path, kind=kind))
        if not path.is_dir():
            archive = archive_kind(path)  # read as text whatever its name: not an archive
            if archive is not None:
                raise InputError(Errors.E115.format(path=path, kind=archive[0], command=archive[1]))
            files.append(path)
            continue
        found, skipped = [], []
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path)
            if any(part.startswith(".") for part in relative.parts) or not child.is_file():
                continue
            (found if _is_text_file(child) else skipped).append(child)
        if not found:
            raise InputError(Errors.E101.format(path=path, suffixes=_SUFFIX_LIST))
        if skipped:
            warnings.warn(
                Warnings.W101.format(
                    count=len(skipped), path=path, example=skipped[0].name, suffixes=_SUFFIX_LIST
                ),
                stacklevel=2,
            )
        files.extend(found)
    return files


_SUFFIX_LIST = ", ".join(TEXT_SUFFIXES + JSONL_SUFFIXES)


def _is_text_file(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in TEXT_SUFFIXES + JSONL_SUFFIXES


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in JSONL_SUFFIXES


def _count_and_replace(error: UnicodeError) -> tuple[str, int]:
    # A codec error handler: replace like errors="replace", and count the bytes for the warning.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _decoding.replaced = getattr(_decoding, "replaced", 0) + error.end - error.start
    return "\ufffd", error.end


# The handler is process-wide; count per thread (a Dask worker may run several readers).
_decoding = threading.local()


codecs.register_error(_DECODE_ERRORS, _count_and_replace)


class Reader:
    """Streams (text, document index) pairs from the input files, counting what it repairs.

    A document is a non-blank line (text input) or one record (JSONL). Lines longer than
    ``max_length`` are read in pieces and cut at whitespace, so no line is ever held whole.
    """

    def __init__(self, units: Sequence[WorkUnit], *, max_length: int):
        self.units = units
        self.max_length = max_length
        self.documents = 0
        self.split_lines = 0
        self.replaced_by_file: dict[Path, int] = {}

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for unit in self.units:
            _decoding.replaced = 0
            suffix = unit.path.suffix.lower()
            try:
                with open_unit(unit) as f:
                    if _is_jsonl(unit.path):
                        yield from self._jsonl(f, unit)
                    else:
                        yield from self._text(f)
            except (OSError, EOFError, zlib.error) as err:
                # gzip raises BadGzipFile (an OSError) for a fake file and EOFError for a
                # truncated one; bz2 raises OSError.
                raise _read_error(unit.path, suffix, err) from None
            if replaced := _decoding.replaced:
                by_file = self.replaced_by_file
                by_file[unit.path] = by_file.get(unit.path, 0) + replaced

    def _text(self, f: IO[str]) -> Iterator[tuple[str, int]]:
        limit = self.max_length
        pending = ""  # the tail of an over-long line, not yet emitted (shorter than `limit`)
        in_long_line = False
        while True:
            # readline(n) stops early only at a line end or the end of the file.
            chunk = f.readline(limit - len(pending))
            if not chunk:
                if pending.strip():
                    yield pending.strip(), self.documents - 1
                return
            text, pending = pending + chunk, ""
            complete = len(text) < limit or text.endswith("\n")
            if not in_long_line:
                if complete:
                    if text := text.strip():
                        self.documents += 1
                        yield text, self.documents - 1
                    continue
                in_long_line = True
                self.documents += 1
                self.split_lines += 1
            if complete:
                in_long_line = False
            else:
                text, pending = _cut(text, limit)
            if text := text.strip():
                yield text, self.documents - 1

    def _jsonl(self, f: IO[str], unit: WorkUnit) -> Iterator[tuple[str, int]]:
        path = unit.path
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = srsly.json_loads(line)
            except ValueError as err:
                number += lines_before(unit)
                raise InputError(Errors.E102.format(line=number, path=path, reason=err)) from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                found = (
                    f"keys {sorted(record)}" if isinstance(record, dict) else type(record).__name__
                )
                if isinstance(record, dict) and "text" in record:
                    found = f"text of type {type(record['text']).__name__}"
                number += lines_before(unit)
                raise InputError(Errors.E103.format(line=number, path=path, found=found))
            text = text.strip()
            if not text:
                continue
            self.documents += 1
            if len(text) > self.max_length:
                self.split_lines += 1
                while len(text) > self.max_length:
                    piece, text = _cut(text, self.max_length)
                    if piece.strip():
                        yield piece.strip(), self.documents - 1
            if text.strip():
                yield text.strip(), self.documents - 1


def _read_error(path: Path, suffix: str, err: BaseException) -> InputError:
    reason = describe(err) if str(err) else f"{type(err).__name__}: the file ends too early"
    if suffix in COMPRESSED_FORMATS:
        name, check = COMPRESSED_FORMATS[suffix]
        return InputError(
            Errors.E184.format(
                path=path, reason=reason, suffix=suffix, format=name, check=f"{check} {path}"
            )
        )
    return InputError(Errors.E185.format(path=path, reason=reason))


def open_unit(unit: WorkUnit) -> IO[str]:
    """The text of a unit, decoded as `open` decodes the whole file (universal newlines)."""
    options: dict[str, Any] = {"encoding": "utf-8", "errors": _DECODE_ERRORS, "newline": None}
    compressed = COMPRESSED.get(unit.path.suffix.lower())
    if unit.start == 0 and unit.end is None:
        return (compressed or open)(unit.path, "rt", **options)
    if compressed is not None:
        raise ValueError(f"A compressed file is read whole, not in byte ranges: {unit}")
    raw = _ByteRange(unit.path, unit.start, unit.end)
    return io.TextIOWrapper(io.BufferedReader(raw, 1 << 16), **options)


def lines_before(unit: WorkUnit) -> int:
    """Lines of the file before ``unit`` (read only to give an error its line number)."""
    if unit.start == 0:
        return 0
    with open_unit(WorkUnit(unit.path, 0, unit.start)) as f:
        return sum(1 for _ in f)


class _ByteRange(io.RawIOBase):
    """Bytes ``[start, end)`` of a file, as a raw stream (end None: to the end of the file)."""

    def __init__(self, path: Path, start: int, end: int | None):
        self._file = open(path, "rb", buffering=0)
        self._file.seek(start)
        self._left = float("inf") if end is None else end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = int(min(len(buffer), self._left))
        if size <= 0:
            return 0
        count = self._file.readinto(memoryview(buffer).cast("B")[:size]) or 0
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _cut(text: str, limit: int) -> tuple[str, str]:
    """Split ``text`` (at least ``limit`` characters) at the last whitespace before ``limit``;
    mid-word at ``limit`` if the second half of that window has none."""
    cut = max(text.rfind(" ", 0, limit), text.rfind("\t", 0, limit))
    if cut < limit // 2:
        cut = limit
    return text[:cut], text[cut:]


def batches(documents: Iterable[tuple[str, int]], batch_size: int) -> Iterator[Batch]:
    texts: list[str] = []
    ids: list[int] = []
    chars = 0
    for text, doc_id in documents:
        texts.append(text)
        ids.append(doc_id)
        chars += len(text)
        if len(texts) >= batch_size or chars >= BATCH_CHARS:
            yield Batch(texts, ids)
            texts, ids, chars = [], [], 0
    if texts:
        yield Batch(texts, ids)


@dataclass
class Batch:
    texts: list[str]
    doc_ids: list[int]
