"""The token file: the one format that every stage after preprocessing reads.

Format: UTF-8 text, one sentence per line, tokens separated by single spaces, each line ending
in ``\\n`` (gensim's ``LineSentence`` and ``corpus_file`` format). ``spacy-hs preprocess``
writes it; gensim training, head training and evaluation read it, all through this module:

* ``format_line``: how a sentence is written;
* ``sentences``: how it is read back, with one decoding policy: strict UTF-8, an error that
  names the file, line and byte on the first invalid byte (never replaced here: gensim reads the
  file's raw bytes, so a repaired copy would not be what it trains on), and blank lines skipped;
* ``check_token_file``: one streaming pass that finds every problem before training starts;
* ``meta_path`` / ``read_meta`` / ``write_meta``: the ``<token file>.meta.json`` beside it, with
  the language, normaliser settings and statistics of preprocessing.
"""

from __future__ import annotations

import codecs
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import srsly

from ..errors import (
    Errors,
    InputError,
    InputIsDirectoryError,
    InputNotFoundError,
    describe,
)
from ..util import atomic_file, special_file

SEPARATOR = " "  # between the tokens of a line
LINE_END = "\n"  # after the last token of a line
META_SUFFIX = ".meta.json"
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst", ".lzma")
READ_CHUNK = 1 << 20
# `preprocess` writes a few KB of meta; train copies it into the model's meta.json, which
# loading caps at 64 MB (validation.META_MAX_BYTES): a larger one is refused before reading.
META_MAX_BYTES = 1 << 20
PathLike = str | os.PathLike


def format_line(tokens: Iterable[str]) -> str:
    """One sentence as a line of the token file."""
    return SEPARATOR.join(tokens) + LINE_END


def sentences(
    path: PathLike,
    *,
    what: str = "Token file",
    on_bytes: Callable[[int], Any] | None = None,
    blank_lines: bool = False,
) -> Iterator[list[str]]:
    """The tokens of each non-blank line of a token file, in order.

    on_bytes: called with the size of each line read (for progress bars).
    blank_lines: also yield an empty list for each blank line: the document-end marker
        (``documents``). gensim's ``LineSentence`` skips blank lines, so a marked file trains
        gensim as an unmarked one would.
    Raises InputError naming the line and byte of the first invalid UTF-8 sequence.
    """
    path = Path(path)
    check_path(path, what)
    offset = 0
    with _open(path) as file:
        for line_no, raw in enumerate(file, 1):
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                raise InputError(
                    Errors.E153.format(
                        what=what, path=path, line=line_no, offset=offset + err.start,
                        reason=err.reason,
                    )
                ) from None
            offset += len(raw)
            if on_bytes is not None:
                on_bytes(len(raw))
            tokens = line.split()
            if tokens or blank_lines:
                yield tokens


def documents(path: PathLike, *, what: str = "Token file") -> Iterator[list[list[str]]]:
    """The documents of a token file: its sentences (non-blank lines), split where a blank
    line marks a document's end. A file without blank lines is one document."""
    document: list[list[str]] = []
    for tokens in sentences(path, what=what, blank_lines=True):
        if tokens:
            document.append(tokens)
        elif document:
            yield document
            document = []
    if document:
        yield document


@dataclass
class TokenFileCheck:
    """What one streaming pass over a token file found."""

    path: str
    bytes: int
    lines: int


def check_token_file(path: PathLike, what: str = "Corpus file") -> TokenFileCheck:
    """Check that ``path`` is a plain-text, UTF-8 token file with at least one token.

    One streaming pass in 1 MB blocks (memory stays flat, even for a corpus that is one huge
    line, as text8 is). Non-UTF-8 bytes are an error, not replaced (see the module docstring).
    """
    path = Path(path)
    check_path(path, what)
    if path.name.lower().endswith(COMPRESSED_SUFFIXES):
        raise InputError(Errors.E152.format(what=what, path=path))
    # An incremental decoder: a character split across two blocks is fine.
    decoder = codecs.getincrementaldecoder("utf8")()
    n_bytes = n_lines = 0
    has_token = False
    last = b""
    with _open(path) as file:
        # None, after the last block, flushes the decoder (a truncated character at the end).
        for chunk in itertools.chain(iter(lambda: file.read(READ_CHUNK), b""), [None]):
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as err:
                data = pending + (chunk or b"")
                raise InputError(
                    Errors.E153.format(
                        what=what,
                        path=path,
                        line=n_lines + data.count(b"\n", 0, err.start) + 1,
                        offset=n_bytes - len(pending) + err.start,
                        reason=err.reason,
                    )
                ) from None
            if chunk:
                has_token = has_token or (bool(text) and not text.isspace())
                n_bytes += len(chunk)
                n_lines += chunk.count(b"\n")
                last = chunk[-1:]
    if not has_token:
        raise InputError(Errors.E154.format(what=what, path=path))
    n_lines += last not in (b"", b"\n")  # a last line without a newline
    return TokenFileCheck(str(path), n_bytes, n_lines)


def check_path(path: Path, what: str = "Token file") -> None:
    """InputError (not found, a directory, a FIFO or device) unless ``path`` is a regular file
    to read; checked before it is opened, so that a FIFO never blocks."""
    if not path.exists():
        raise InputNotFoundError(Errors.E150.format(what=what, path=path))
    if path.is_dir():
        raise InputIsDirectoryError(Errors.E151.format(what=what, path=path))
    kind = special_file(path)
    if kind is not None:
        raise InputError(Errors.E171.format(what=what, path=path, kind=kind))
    if not os.access(path, os.R_OK):
        reason = "permission denied (PermissionError)"
        raise InputError(Errors.E185.format(path=path, reason=reason))


def _open(path: Path) -> IO[bytes]:
    """``path`` opened for reading; InputError (E185) if it cannot be (permissions)."""
    try:
        return path.open("rb")
    except OSError as err:
        reason = f"{err.strerror} ({type(err).__name__})" if err.strerror else describe(err)
        raise InputError(Errors.E185.format(path=path, reason=reason)) from None


# -- the meta file ------------------------------------------------------------------------------


def meta_path(token_file: PathLike) -> Path:
    """The path of the meta file beside a token file: ``<token file>.meta.json``."""
    token_file = Path(token_file)
    return token_file.with_name(token_file.name + META_SUFFIX)


def read_meta(token_file: PathLike) -> dict[str, Any] | None:
    """The meta dict written beside ``token_file``, or None for a token file made elsewhere.

    Raises InputError if the meta file exists but is not a JSON object, or is larger than
    ``META_MAX_BYTES`` (its size is checked before it is read).
    """
    path = meta_path(token_file)
    if not path.exists():
        return None
    kind = special_file(path)
    if kind is not None or path.is_dir():
        reason = f"it is {kind or 'a directory'}, not a regular file"
        raise InputError(Errors.E165.format(path=path, reason=reason))
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(META_MAX_BYTES + 1) if size <= META_MAX_BYTES else b""
        if max(size, len(data)) > META_MAX_BYTES:
            raise InputError(
                Errors.E172.format(path=path, size=max(size, len(data)), limit=META_MAX_BYTES)
            )
        meta = srsly.json_loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as err:
        if isinstance(err, InputError):
            raise

        raise InputError(Errors.E165.format(path=path, reason=describe(err))) from None
    if not isinstance(meta, dict):
        raise InputError(Errors.E165.format(path=path, reason="it is not a JSON object"))
    return meta


def dump_meta(meta: dict[str, Any]) -> str:
    """The meta file's text."""
    return srsly.json_dumps(meta, indent=2) + "\n"


def write_meta(token_file: PathLike, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the meta file beside ``token_file`` atomically; returns the meta as a reader of the
    file will get it (JSON's float parsing may differ in the last digit)."""
    text = dump_meta(meta)
    with atomic_file(meta_path(token_file), "w", encoding="utf-8") as file:
        file.write(text)
    return srsly.json_loads(text)
