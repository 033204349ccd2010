"""Reading the documents to score, in input order and in bounded chunks.

Two formats, either optionally gzip-compressed (``.gz``):

- JSON Lines (``.jsonl``, ``.json``, ``.ndjson``): one JSON object per line, the document's
  text in ``text_field`` and its id in ``id_field`` (optional; blank lines are skipped);
- anything else is plain text: documents separated by one or more blank lines, the text of a
  document being its lines joined by newlines.

A document without an id is given its 0-based index among all the documents of all inputs,
bad ones included, so that skipping a bad line shifts no other document's id.

A bad line (not JSON, no text field, not UTF-8) stops the run with an error that names the file
and line, or with ``skip_bad`` is skipped (in plain text, the whole document holding it) and
counted in ``BadLines``. Memory holds one chunk at a time: a chunk ends after ``max_documents``
documents or ``max_chars`` characters, so how documents fall into chunks depends on the input
alone, never on the engine.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import Errors, InputError
from ..util import special_file

JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")
DEFAULT_TEXT_FIELD = "text"
DEFAULT_ID_FIELD = "id"
DEFAULT_CHUNK_CHARS = 1_000_000
DEFAULT_CHUNK_DOCUMENTS = 10_000


@dataclass
class Chunk:
    """Consecutive documents: ``start`` is the input index of the first (for messages)."""

    number: int
    start: int
    ids: list[Any]
    texts: list[str]

    @property
    def last(self) -> int:
        return self.start + len(self.texts) - 1


@dataclass
class BadLines:
    """The bad lines skipped with ``skip_bad``: how many, and where the first was."""

    count: int = 0
    first: str | None = None

    def add(self, where: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = where


@dataclass
class InputSpec:
    """How to read the inputs: the JSON fields, and what to do with bad lines."""

    text_field: str = DEFAULT_TEXT_FIELD
    id_field: str = DEFAULT_ID_FIELD
    skip_bad: bool = False
    bad: BadLines = field(default_factory=BadLines)


def is_json_lines(path: Path) -> bool:
    """Whether ``path`` is read as JSON Lines (by its suffix, ``.gz`` aside)."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(JSON_LINES_SUFFIXES)


def check_inputs(paths: Sequence[Path]) -> None:
    """InputError unless every path is a regular, readable file."""
    for path in paths:
        if not path.exists():
            raise InputError(Errors.E905.format(path=path, problem="does not exist"))
        if path.is_dir():
            raise InputError(Errors.E905.format(path=path, problem="is a directory"))
        kind = special_file(path)
        if kind is not None:
            raise InputError(Errors.E905.format(path=path, problem=f"is {kind}, not a file"))


def read_documents(paths: Sequence[Path], spec: InputSpec) -> Iterator[tuple[Any, str]]:
    """``(id, text)`` of every document of ``paths``, in order (see the module doc)."""
    index = 0
    for path in paths:
        try:
            with _open(path) as f:
                reader = _json_lines(f, path, spec) if is_json_lines(path) else _text(f, path, spec)
                for document_id, text in reader:
                    if text is not None:
                        yield (index if document_id is None else document_id), text
                    index += 1
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(Errors.E906.format(path=path, reason=err)) from None


def chunks(
    documents: Iterable[tuple[Any, str]],
    *,
    max_chars: int = DEFAULT_CHUNK_CHARS,
    max_documents: int = DEFAULT_CHUNK_DOCUMENTS,
) -> Iterator[Chunk]:
    """The documents cut into chunks of at most ``max_documents`` documents and about
    ``max_chars`` characters (a chunk ends with the document that reaches it)."""
    number, start, chars = 0, 0, 0
    ids: list[Any] = []
    texts: list[str] = []
    for document_id, text in documents:
        ids.append(document_id)
        texts.append(text)
        chars += len(text)
        if chars >= max_chars or len(texts) >= max_documents:
            yield Chunk(number, start, ids, texts)
            number, start, chars = number + 1, start + len(texts), 0
            ids, texts = [], []
    if texts:
        yield Chunk(number, start, ids, texts)


def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _decode(line: bytes, path: Path, number: int, spec: InputSpec) -> str | None:
    """The line as text, or None if it is not UTF-8 and ``skip_bad`` (counted)."""
    try:
        # A byte order mark opens some files written on Windows: not part of the text.
        return line.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as err:
        reason = f"byte 0x{line[err.start]:02x} at column {err.start + 1}"
        if spec.skip_bad:
            spec.bad.add(f"line {number} of {path}: not UTF-8 ({reason})")
            return None
        raise InputError(Errors.E904.format(line=number, path=path, reason=reason)) from None


def _json_lines(f: IO[bytes], path: Path, spec: InputSpec) -> Iterator[tuple[Any, str | None]]:
    """(id or None, text) per record; text None for a skipped bad line."""
    for number, raw in enumerate(f, start=1):
        line = _decode(raw, path, number, spec)
        if line is None:
            yield None, None
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield None, _bad(spec, Errors.E902, path, number, reason=err, what="not valid JSON")
            continue
        text = record.get(spec.text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            found = _found(record, spec.text_field)
            what = f"no {spec.text_field!r} string field"
            yield None, _bad(spec, Errors.E903, path, number, field=spec.text_field, found=found,
                             what=what)  # fmt: skip
            continue
        yield record.get(spec.id_field), text


def _text(f: IO[bytes], path: Path, spec: InputSpec) -> Iterator[tuple[None, str | None]]:
    """(None, text) per blank-line-separated document; text None for a skipped document."""
    lines: list[str] = []
    bad = False
    for number, raw in enumerate(f, start=1):
        line = _decode(raw, path, number, spec)
        if line is None:
            bad = True
            continue
        if line.strip():
            lines.append(line.rstrip("\r\n"))
            continue
        if lines or bad:
            yield None, None if bad else "\n".join(lines)
            lines, bad = [], False
    if lines or bad:
        yield None, None if bad else "\n".join(lines)


def _bad(spec: InputSpec, error: str, path: Path, number: int, *, what: str, **values: Any) -> None:
    if spec.skip_bad:
        spec.bad.add(f"line {number} of {path}: {what}")
        return None
    raise InputError(error.format(line=number, path=path, **values))


def _found(record: Any, text_field: str) -> str:
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if text_field in record:
        return f"{text_field!r} is a {type(record[text_field]).__name__}"
    keys = ", ".join(repr(k) for k in list(record)[:5])
    return f"fields {keys}" if keys else "an empty object"
