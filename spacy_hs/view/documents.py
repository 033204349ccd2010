"""Texts in, Docs out, a page written: the library side of ``spacy-hs render``.

Plain text: one document per non-empty line (as ``spacy-hs preprocess`` reads ``.txt``), from a
file or stdin (``-``). Pretokenized text: a token file as ``spacy-hs preprocess`` writes it (one
sentence per line, tokens separated by spaces, e.g. ``corpus/heldout.txt``); each line is one
sentence, as ``spacy-hs evaluate`` scores it, and consecutive lines are grouped into docs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors, InputError, OutputError, describe
from ..util import atomic_file, check_output_location, check_utf8, special_file, utf8_safe

STDIN = "-"
# Components that set sentence boundaries; for pretokenized text the lines are the sentences.
SENTENCE_ATTRIBUTES = ("token.is_sent_start", "token.sent_start")


def read_lines(source: str | Path, *, max_lines: int | None = None) -> list[str]:
    """The non-empty lines of a UTF-8 file, or of stdin for ``-`` (at most ``max_lines``)."""
    if str(source) == STDIN:
        return _take(_non_empty(_stdin_lines()), max_lines)
    path = Path(source)
    if not path.exists():
        raise InputError(Errors.E732.format(path=path))
    if path.is_dir():
        raise InputError(Errors.E733.format(path=path))
    kind = special_file(path)
    if kind is not None:
        raise InputError(Errors.E740.format(path=path, kind=kind))
    try:
        with path.open(encoding="utf8") as file:
            lines = _take(_non_empty(file), max_lines)
    except UnicodeDecodeError as err:
        raise InputError(Errors.E734.format(path=path, reason=err.reason)) from None
    except OSError as err:
        reason = f"{err.strerror} ({type(err).__name__})" if err.strerror else describe(err)
        raise InputError(Errors.E185.format(path=path, reason=reason)) from None
    if not lines:
        raise InputError(Errors.E735.format(path=path))
    return lines


def texts_to_docs(nlp: Language, texts: Sequence[str]) -> list[Doc]:
    """Each text through the whole pipeline (InputError E738 for text that is not UTF-8, E741
    for one longer than ``nlp.max_length``, which spaCy would refuse after the ones before)."""
    for number, text in enumerate(texts, start=1):
        check_utf8(text, "The text")
        if len(text) > nlp.max_length:
            raise InputError(
                Errors.E741.format(number=number, length=len(text), limit=nlp.max_length)
            )
    return list(nlp.pipe(texts))


def token_lines_to_docs(
    nlp: Language, lines: Sequence[str], *, sentences_per_doc: int = 1
) -> list[Doc]:
    """Pretokenized lines (tokens separated by spaces) as Docs of ``sentences_per_doc`` lines,
    one sentence per line. The pipeline runs without its sentence-setting components (e.g. the
    sentencizer), which would re-split the lines."""
    docs = []
    for start in range(0, len(lines), sentences_per_doc):
        words: list[str] = []
        sent_starts: list[bool] = []
        for line in lines[start : start + sentences_per_doc]:
            tokens = line.split()
            words.extend(tokens)
            sent_starts.extend([True] + [False] * (len(tokens) - 1))
        docs.append(Doc(nlp.vocab, words=words, sent_starts=sent_starts))
    splitters = [
        name
        for name in nlp.pipe_names
        if any(attr in SENTENCE_ATTRIBUTES for attr in nlp.get_pipe_meta(name).assigns)
    ]
    with nlp.select_pipes(disable=splitters):
        return list(nlp.pipe(docs))


def check_page_output(path: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """OutputError unless the page may be written at ``path``, checked before any work: not a
    directory (E737), not one of ``inputs`` (E180), not inside a model or pipeline directory,
    whose files it would destroy (E181), and writable (E017)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(Errors.E737.format(path=path))
    check_output_location(path, [source for source in inputs if str(source) != STDIN])
    return path


def write_page(path: str | Path, html: str, *, inputs: Sequence[str | Path] = ()) -> Path:
    """Write ``html`` to ``path`` atomically; never over one of ``inputs``, nor into a model or
    pipeline directory (``check_page_output``)."""
    path = check_page_output(path, inputs)
    with atomic_file(path, "w", encoding="utf8") as file:
        file.write(utf8_safe(html))
    return path


def _stdin_lines() -> Iterator[str]:
    """stdin's lines, decoded as UTF-8 whatever the locale; InputError (E738) at the first
    line that is not UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    lines = sys.stdin if stream is None else (b.decode("utf-8", "surrogateescape") for b in stream)
    for number, line in enumerate(lines, start=1):
        yield check_utf8(line, f"Line {number} of standard input (-)")


def _non_empty(lines: Iterator[str]) -> Iterator[str]:
    return (line.rstrip("\r\n") for line in lines if line.strip())


def _take(lines: Iterator[str], limit: int | None) -> list[str]:
    taken = []
    for line in lines:
        if limit is not None and len(taken) >= limit:
            break
        taken.append(line)
    return taken
