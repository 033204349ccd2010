"""Raw text -> token file: the first stage of spacy-hs.

The token file is gensim's ``LineSentence`` format (one sentence per line, tokens separated by
single spaces, UTF-8), so ``Word2Vec(corpus_file=...)`` reads it directly. Beside it,
``<token file>.meta.json`` records the language and the normaliser settings, which travel into
the trained model so that the pipeline component normalises new text the same way.

Speed comes from doing no Python work per token. spaCy's tokenizer produces the ``Doc``; the rest
runs on numpy arrays of orth ids:

- every decision (the corpus word, the sentence-boundary flags) depends only on the lexeme, so it
  is computed once per vocabulary entry and stored in a direct-mapped table keyed by orth id;
- sentence boundaries follow spaCy's ``sentencizer`` rule exactly, vectorised over the batch
  (running the component itself costs about a third of the tokenizer's time);
- each batch becomes one string by a single ``str.join``, written in one call.

Memory is bounded by the vocabulary, not by the corpus: input is read line by line (over-long
lines in pieces), in batches of at most ``batch_size`` documents and ``BATCH_CHARS`` characters.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import os
import sys
import threading
import time
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import spacy
import srsly
from spacy.attrs import ORTH
from spacy.lexeme import Lexeme
from spacy.pipeline import Sentencizer
from spacy.strings import get_string_id, hash_string

from ..errors import (
    ConfigError,
    Errors,
    InputError,
    InputNotFoundError,
    OutputError,
    Warnings,
    describe,
)
from ..orth_table import OrthTable
from ..util import (
    atomic_outputs,
    check_output_location,
    is_positive_int,
    open_new,
    special_file,
)
from . import tokenfile
from .normalize import NormalizerSettings, TokenNormalizer

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
class PreprocessResult:
    """What `preprocess` wrote: the token file(s) and their meta dicts (as in the .meta.json)."""

    output: Path
    meta: dict[str, Any]
    heldout: Path | None = None
    heldout_meta: dict[str, Any] | None = None


# Engines ------------------------------------------------------------------------------------
# An engine turns the input files into token text; `preprocess` validates before it and writes
# the meta files and renames the outputs after it. All engines share `write_units`, so their
# output is byte-identical by construction.


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


@dataclass
class CorpusStats:
    """What reading and tokenizing some units gave; `merge` adds a later unit's statistics."""

    splits: list[_SplitStats]  # per output file: the token file, then the held-out file
    documents: int = 0  # documents read
    split_lines: int = 0  # over-long lines split at whitespace
    replaced_by_file: dict[Path, int] = field(default_factory=dict)  # non-UTF-8 bytes
    input_tokens: int = 0  # spaCy tokens, before normalisation

    @property
    def replaced_bytes(self) -> int:
        return sum(self.replaced_by_file.values())

    def merge(self, later: CorpusStats) -> None:
        for split, other in zip(self.splits, later.splits):
            split.merge(other)
        self.documents += later.documents
        self.split_lines += later.split_lines
        for path, count in later.replaced_by_file.items():
            self.replaced_by_file[path] = self.replaced_by_file.get(path, 0) + count
        self.input_tokens += later.input_tokens


@dataclass
class PreprocessJob:
    """What an `Engine` is asked to do: tokenize ``files`` (in order) with ``config``."""

    config: _ProcessorConfig
    files: list[Path]
    targets: list[Path]  # the final token file (and held-out file), for placing scratch files
    outputs: list[Path]  # where to write the token text of each target (temporary files)
    max_length: int
    batch_size: int
    progress: bool


class Engine(Protocol):
    def run(self, job: PreprocessJob) -> CorpusStats:
        """Write the token text of ``job.files`` to ``job.outputs``, in input order, and return
        its statistics. Raise `InputError` for bad input."""
        ...


def write_units(
    process: Callable[[Iterator[_Batch]], Iterable[_BatchResult]],
    units: Sequence[WorkUnit],
    outputs: Sequence[IO[str]],
    *,
    max_length: int,
    batch_size: int,
    bar: Any = None,
    document_marker: bool = False,
) -> CorpusStats:
    """Read ``units`` in order, tokenize their batches with ``process`` (which yields results in
    order) and write the token text to ``outputs`` (one per split). Every engine runs this.

    document_marker: the batches mark the document ends inside them; here the blank line goes
    between batches where a document ends, and after the last document (units never share a
    document, so shards of units concatenate to the same file)."""
    reader = _Reader(units, max_length=max_length)
    stats = CorpusStats(splits=[_SplitStats() for _ in outputs])
    splits = stats.splits
    last_documents = [-1] * len(outputs)  # per output: the document of its last line
    for result in process(_batches(reader, batch_size)):
        for side, (split, handle, part) in enumerate(zip(splits, outputs, result.splits)):
            if document_marker and part.sentences:
                if last_documents[side] not in (-1, part.first_doc):
                    handle.write(tokenfile.LINE_END)
                last_documents[side] = part.last_doc
            handle.write(part.text)
            split.add(part)
        stats.input_tokens += result.input_tokens
        if bar is not None:
            bar.update(result.input_tokens)
            bar.set_postfix_str(
                f"{reader.documents:,} docs, {splits[0].sentences:,} sentences", refresh=False
            )
    for handle, last in zip(outputs, last_documents):
        if last != -1:
            handle.write(tokenfile.LINE_END)
    stats.documents, stats.split_lines = reader.documents, reader.split_lines
    stats.replaced_by_file = reader.replaced_by_file
    return stats


def _run_local(job: PreprocessJob, processor: _BatchProcessor, n_process: int) -> CorpusStats:
    """The local engine: this process, or ``n_process`` worker processes fed batch by batch."""

    def process(batches: Iterator[_Batch]) -> Iterable[_BatchResult]:
        if n_process == 1:
            return map(processor.process_batch, batches)
        return _process_in_workers(job.config, batches, n_process)

    bar = _progress_bar(job.progress)
    handles: list[IO[str]] = []
    try:
        handles.extend(_open_output(p) for p in job.outputs)
        units = [WorkUnit(path) for path in job.files]
        return write_units(
            process,
            units,
            handles,
            max_length=job.max_length,
            batch_size=job.batch_size,
            bar=bar,
            document_marker=job.config.document_marker,
        )
    finally:
        for handle in handles:
            handle.close()
        bar.close()


def preprocess(
    inputs: PathLike | Sequence[PathLike],
    output: PathLike,
    *,
    lang: str = "en",
    normalizer: NormalizerSettings | dict[str, Any] | None = None,
    min_sentence_length: int = 1,
    pretokenized: bool = False,
    document_marker: bool = False,
    n_process: int = 1,
    batch_size: int = 1000,
    heldout: PathLike | None = None,
    heldout_fraction: float = 0.05,
    heldout_seed: int = 0,
    max_length: int | None = None,
    progress: bool = True,
    engine: Engine | None = None,
) -> PreprocessResult:
    """Tokenize raw text with spaCy and write a token file plus its ``.meta.json``.

    inputs: files or directories (read recursively, in sorted order). ``.txt`` (and any file
        passed explicitly) holds one document per line; ``.jsonl`` one JSON object with a
        ``"text"`` field per line; either may be ``.gz`` or ``.bz2`` compressed.
    output: the token file. Written atomically: on any error the previous file is untouched.
    lang: the language of ``spacy.blank``; its tokenizer splits the text.
    normalizer: how tokens become corpus words (`NormalizerSettings`); defaults lowercase, drop
        punctuation and map numbers and URLs to placeholders.
    min_sentence_length: sentences with fewer words (after normalisation) are left out.
    pretokenized: the input is already one tokenized sentence per line (e.g. Penn Treebank):
        tokens are split on whitespace, with no sentence splitting.
    document_marker: write a blank line after each document's last sentence, in each output
        file (the document-end marker of ``tokenfile.documents``); documents with no sentence
        left get none. Off by default: a corpus is then one stream.
    n_process: worker processes for tokenization (1 = in this process).
    batch_size: documents per batch (batches are also capped at ``BATCH_CHARS`` characters).
    heldout: if given, a second token file receiving about ``heldout_fraction`` of the
        sentences. The choice hashes each sentence's words with ``heldout_seed``, so it is
        deterministic, independent of batching and ``n_process``, and a sentence repeated in
        the corpus always lands on the same side: the two files share no sentence.
    max_length: lines longer than this many characters are split at whitespace (default: the
        ``max_length`` of the spaCy pipeline, 1,000,000).
    progress: show a progress bar with tokens/s on stderr.
    engine: where the text is tokenized: None (the default) in this process, or in
        ``n_process`` local worker processes; or another `Engine`, such as
        `spacy_hs.corpus.dask_engine.DaskEngine` (then ``n_process`` must be 1). Every engine
        writes byte-identical files and statistics.

    Raises `InputError` (`InputNotFoundError`), `ConfigError` or `OutputError` for bad input
    or options (a fake or truncated .gz or .bz2 file, an output that is an input or lies in a
    model directory) and when no token is left; warns about non-UTF-8 bytes (replaced by
    U+FFFD), skipped files and split lines.
    """
    start = time.perf_counter()
    input_paths = [
        Path(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    ]
    settings = normalizer if isinstance(normalizer, NormalizerSettings) else None
    try:
        settings = settings or NormalizerSettings.from_dict(normalizer)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from err
    _check_options(min_sentence_length, n_process, batch_size, heldout, heldout_fraction)
    output = Path(output)
    heldout_path = Path(heldout) if heldout is not None else None
    files = collect_input_files(input_paths)
    _check_outputs(output, heldout_path, input_paths, files)
    config = _ProcessorConfig(
        lang=lang,
        normalizer=settings.to_dict(),
        pretokenized=pretokenized,
        min_sentence_length=min_sentence_length,
        document_marker=document_marker,
        heldout_fraction=heldout_fraction if heldout_path is not None else 0.0,
        heldout_seed=heldout_seed,
    )
    processor = _BatchProcessor(config)  # also validates `lang` before any work
    if max_length is None:
        max_length = processor.nlp.max_length
    if max_length < 2:
        raise ConfigError(Errors.E110.format(name="max_length", expected=">= 2", value=max_length))
    if engine is not None and n_process != 1:
        raise ConfigError(Errors.E805.format(n_process=n_process))
    targets = [output] + ([heldout_path] if heldout_path is not None else [])
    # The token files and their meta files appear together when everything is written.
    outputs = targets + [tokenfile.meta_path(target) for target in targets]
    with atomic_outputs(outputs) as temporaries:
        job = PreprocessJob(
            config=config,
            files=files,
            targets=targets,
            outputs=list(temporaries[: len(targets)]),
            max_length=max_length,
            batch_size=batch_size,
            progress=progress,
        )
        if engine is None:
            stats = _run_local(job, processor, n_process)
        else:
            stats = engine.run(job)
        splits = stats.splits
        if splits[0].tokens == 0:
            raise InputError(
                Errors.E104.format(
                    inputs=", ".join(str(p) for p in input_paths),
                    min_length=min_sentence_length,
                    documents=stats.documents,
                )
            )
        if heldout_path is not None and splits[1].tokens == 0:
            raise InputError(
                Errors.E105.format(sentences=splits[0].sentences, fraction=heldout_fraction)
            )
        seconds = time.perf_counter() - start
        metas = [
            _meta(
                config,
                split,
                stats,
                seconds,
                input_paths,
                role=None if heldout_path is None else ("train", "heldout")[i],
            )
            for i, split in enumerate(splits)
        ]
        for i, (meta_tmp, meta) in enumerate(zip(temporaries[len(targets) :], metas)):
            text = tokenfile.dump_meta(meta)
            with open_new(meta_tmp, "w", encoding="utf-8") as file:
                file.write(text)
            # Return what a reader of the file gets (ujson's float parsing is not exact).
            metas[i] = srsly.json_loads(text)
    _warn_about_input(stats, max_length)
    return PreprocessResult(
        output=output,
        meta=metas[0],
        heldout=heldout_path,
        heldout_meta=metas[1] if heldout_path is not None else None,
    )


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


def _check_options(
    min_sentence_length: int,
    n_process: int,
    batch_size: int,
    heldout: PathLike | None,
    heldout_fraction: float,
) -> None:
    for name, value in (
        ("min_sentence_length", min_sentence_length),
        ("n_process", n_process),
        ("batch_size", batch_size),
    ):
        if not is_positive_int(value):
            raise ConfigError(
                Errors.E110.format(name=name, expected="an integer >= 1", value=value)
            )
    if heldout is not None and not 0.0 < heldout_fraction < 1.0:
        raise ConfigError(
            Errors.E110.format(
                name="heldout_fraction",
                expected="between 0 and 1 (exclusive)",
                value=heldout_fraction,
            )
        )


def _check_outputs(
    output: Path, heldout: Path | None, inputs: Sequence[Path], files: Sequence[Path]
) -> None:
    """Never overwrite input text, and never write where the next run would read it as input."""
    for target in [output] + ([heldout] if heldout is not None else []):
        if target.is_dir():
            raise OutputError(Errors.E111.format(path=target))
        written = {target.resolve(), tokenfile.meta_path(target).resolve()}
        for path in files:
            if path.resolve() in written:
                raise OutputError(Errors.E106.format(path=target, input=path))
        resolved = target.resolve()
        for path in inputs:
            if path.is_dir() and resolved.is_relative_to(path.resolve()):
                raise OutputError(Errors.E107.format(path=target, input=path))
        for written_path in (target, tokenfile.meta_path(target)):  # E180 / E181
            check_output_location(written_path, files)
    if heldout is not None and heldout.resolve() == output.resolve():
        raise OutputError(Errors.E108.format(path=output))


# Reading -------------------------------------------------------------------------------------


def _count_and_replace(error: UnicodeError) -> tuple[str, int]:
    # A codec error handler: replace like errors="replace", and count the bytes for the warning.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    _decoding.replaced = getattr(_decoding, "replaced", 0) + error.end - error.start
    return "\ufffd", error.end


# The handler is process-wide; count per thread (a Dask worker may run several readers).
_decoding = threading.local()


codecs.register_error(_DECODE_ERRORS, _count_and_replace)


class _Reader:
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
                with _open_unit(unit) as f:
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
                number += _lines_before(unit)
                raise InputError(Errors.E102.format(line=number, path=path, reason=err)) from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                found = (
                    f"keys {sorted(record)}" if isinstance(record, dict) else type(record).__name__
                )
                if isinstance(record, dict) and "text" in record:
                    found = f"text of type {type(record['text']).__name__}"
                number += _lines_before(unit)
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


def _open_unit(unit: WorkUnit) -> IO[str]:
    """The text of a unit, decoded as `open` decodes the whole file (universal newlines)."""
    options: dict[str, Any] = {"encoding": "utf-8", "errors": _DECODE_ERRORS, "newline": None}
    compressed = COMPRESSED.get(unit.path.suffix.lower())
    if unit.start == 0 and unit.end is None:
        return (compressed or open)(unit.path, "rt", **options)
    if compressed is not None:
        raise ValueError(f"A compressed file is read whole, not in byte ranges: {unit}")
    raw = _ByteRange(unit.path, unit.start, unit.end)
    return io.TextIOWrapper(io.BufferedReader(raw, 1 << 16), **options)


def _lines_before(unit: WorkUnit) -> int:
    """Lines of the file before ``unit`` (read only to give an error its line number)."""
    if unit.start == 0:
        return 0
    with _open_unit(WorkUnit(unit.path, 0, unit.start)) as f:
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


def _batches(documents: Iterable[tuple[str, int]], batch_size: int) -> Iterator[_Batch]:
    texts: list[str] = []
    ids: list[int] = []
    chars = 0
    for text, doc_id in documents:
        texts.append(text)
        ids.append(doc_id)
        chars += len(text)
        if len(texts) >= batch_size or chars >= BATCH_CHARS:
            yield _Batch(texts, ids)
            texts, ids, chars = [], [], 0
    if texts:
        yield _Batch(texts, ids)


@dataclass
class _Batch:
    texts: list[str]
    doc_ids: list[int]


# Processing ----------------------------------------------------------------------------------


@dataclass
class _ProcessorConfig:
    lang: str
    normalizer: dict[str, Any]
    pretokenized: bool
    min_sentence_length: int
    heldout_fraction: float  # 0: no held-out split
    heldout_seed: int
    document_marker: bool = False  # a blank line after each document


@dataclass
class _SplitPart:
    """One batch's share of one output file."""

    text: str = ""
    sentences: int = 0
    tokens: int = 0
    documents: int = 0  # distinct documents with a sentence in this part
    first_doc: int = -1
    last_doc: int = -1
    new_types: list[str] = field(default_factory=list)


@dataclass
class _BatchResult:
    splits: list[_SplitPart]
    input_tokens: int


@dataclass
class _SplitStats:
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    types: set[str] = field(default_factory=set)
    _last_doc: int = -1

    def add(self, part: _SplitPart) -> None:
        if part.sentences:
            # Batches arrive in order; a document cut between batches is counted once.
            self.documents += part.documents - (part.first_doc == self._last_doc)
            self._last_doc = part.last_doc
        self.sentences += part.sentences
        self.tokens += part.tokens
        self.types.update(part.new_types)

    def merge(self, later: _SplitStats) -> None:
        """Add the statistics of a later unit (units never share a document)."""
        self.documents += later.documents
        self.sentences += later.sentences
        self.tokens += later.tokens
        self.types |= later.types


# Lexeme flags for the sentence rule: bit 0 "punctuation-like" (is_punct or a sentence-final
# character), bit 1 "sentence-final character" (in the sentencizer's punct_chars).
_PUNCT_LIKE, _FINAL, _FLAGS = 1, 2, 3


class _BatchProcessor:
    """Turns batches of texts into token-file text. One per process; keeps its own caches."""

    def __init__(self, config: _ProcessorConfig):
        self.config = config
        self.nlp = _blank(config.lang)
        self.vocab = self.nlp.vocab
        self.normalizer = TokenNormalizer(config.normalizer)
        # The sentencizer's sentence-final characters, as orth ids (no string decoding per type).
        self.final_orths = frozenset(map(get_string_id, Sentencizer.default_punct_chars))
        self.table = OrthTable(1 << 16)
        self._by_text: dict[str, int] = {}  # pretokenized input: token text -> packed value
        self._word_ids: dict[str, int] = {}
        self._words: list[str] = []
        # Word id w at 2w followed by a space, at 2w+1 ending its line: one fancy index then
        # one str.join build a whole batch.
        self._word_array = np.empty(1024, dtype=object)
        # spaCy's 64-bit string hash of each word: the same in every process and run.
        self._word_hashes = np.zeros(512, dtype=np.uint64)
        # Per output file: which word ids it has received, to count its types.
        self._seen = [np.zeros(512, dtype=bool) for _ in range(2)]

    def reset_types(self) -> None:
        """Count types afresh: the next batches report every word as new once (a unit's
        statistics then stand alone, whichever process read the units before)."""
        for seen in self._seen:
            seen[:] = False

    def process_batch(self, batch: _Batch) -> _BatchResult:
        if self.config.pretokenized:
            return self._pretokenized(batch)
        arrays = [doc.to_array(ORTH) for doc in self.nlp.tokenizer.pipe(batch.texts)]
        lengths = np.fromiter(map(len, arrays), dtype=np.intp, count=len(arrays))
        orths = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)
        packed = self.table.lookup(orths, lambda new, _: self._resolve_orths(new.tolist()))
        starts = _sentence_starts(packed & _FLAGS, lengths)
        return self._emit(packed, starts, lengths, batch.doc_ids)

    def _pretokenized(self, batch: _Batch) -> _BatchResult:
        lines: list[list[str]] = []
        doc_ids: list[int] = []
        for text, doc_id in zip(batch.texts, batch.doc_ids):
            for line in text.splitlines():
                tokens = line.split()
                if tokens:
                    lines.append(tokens)
                    doc_ids.append(doc_id)
        lengths = np.fromiter(map(len, lines), dtype=np.intp, count=len(lines))
        get = self._by_text.get
        values = [get(token) for tokens in lines for token in tokens]
        if None in values:
            flat = (token for tokens in lines for token in tokens)
            values = [self._resolve_text(t) if v is None else v for t, v in zip(flat, values)]
        packed = np.array(values, dtype=np.int64)
        starts = np.zeros(len(packed), dtype=bool)
        starts[_offsets(lengths)[:-1][lengths > 0]] = True
        return self._emit(packed, starts, lengths, doc_ids)

    def _emit(
        self, packed: np.ndarray, starts: np.ndarray, lengths: np.ndarray, doc_ids: list[int]
    ) -> _BatchResult:
        """Build the output text of a batch from each token's packed value and sentence starts."""
        n_parts = 2 if self.config.heldout_fraction else 1
        parts = [_SplitPart() for _ in range(n_parts)]
        result = _BatchResult(parts, input_tokens=len(packed))
        if not len(packed):
            return result
        word_ids = (packed >> 2) - 1
        sentence_ids = np.cumsum(starts) - 1
        n_sentences = int(sentence_ids[-1]) + 1
        doc_of_token = np.repeat(np.asarray(doc_ids, dtype=np.int64), lengths)
        sentence_docs = doc_of_token[starts]
        kept = word_ids >= 0
        sizes = np.bincount(sentence_ids[kept], minlength=n_sentences)
        valid = sizes >= self.config.min_sentence_length
        kept &= valid[sentence_ids]
        words, sentences = word_ids[kept], sentence_ids[kept]
        if not len(words):
            return result
        line_end = _line_ends(sentences)
        if n_parts == 1:
            text = self._text(2 * words + line_end, sentence_docs[valid])
            self._fill(parts[0], 0, text, words, sentence_docs[valid], int(valid.sum()))
            return result
        # Held-out split: hash each sentence's words, then split tokens by their sentence's side.
        heldout = _heldout_sentences(
            self._word_hashes[words],
            line_end,
            self.config.heldout_fraction,
            self.config.heldout_seed,
        )
        token_heldout = np.repeat(heldout, np.diff(np.flatnonzero(line_end), prepend=-1))
        valid_docs = sentence_docs[valid]
        for side, part in enumerate(parts):
            chosen, side_words = (heldout, token_heldout) if side else (~heldout, ~token_heldout)
            side_words = words[side_words]
            side_ends = line_end[token_heldout] if side else line_end[~token_heldout]
            text = self._text(2 * side_words + side_ends, valid_docs[chosen])
            n_sentences = int(np.count_nonzero(chosen))
            self._fill(part, side, text, side_words, valid_docs[chosen], n_sentences)
        return result

    def _text(self, indices: np.ndarray, line_documents: np.ndarray) -> str:
        """The text of the lines given by word-array indices (``2 w``, or ``2 w + 1`` ending a
        line); with the document marker, a blank line after each document that ends before
        the last line (``write_units`` adds the one after the last)."""
        pieces = self._word_array[indices]
        if self.config.document_marker and len(line_documents) > 1:
            line_ends = np.flatnonzero(indices & 1)
            ends = line_ends[:-1][line_documents[1:] != line_documents[:-1]]
            pieces[ends] = pieces[ends] + tokenfile.LINE_END
        return "".join(pieces.tolist())

    def _fill(
        self,
        part: _SplitPart,
        side: int,
        text: str,
        words: np.ndarray,
        sentence_docs: np.ndarray,
        n_sentences: int,
    ) -> None:
        part.text, part.sentences, part.tokens = text, n_sentences, len(words)
        if n_sentences:
            part.documents = 1 + int(np.count_nonzero(sentence_docs[1:] != sentence_docs[:-1]))
            part.first_doc, part.last_doc = int(sentence_docs[0]), int(sentence_docs[-1])
        seen = self._seen[side]
        if len(seen) < len(self._words):
            grown = np.zeros(2 * len(self._words), dtype=bool)
            grown[: len(seen)] = seen
            seen = self._seen[side] = grown
        fresh = np.unique(words[~seen[words]])  # usually few: no sort of the whole batch
        seen[fresh] = True
        part.new_types = [self._words[i] for i in fresh.tolist()]

    def _resolve_orths(self, orths: list[int]) -> list[int]:
        # Runs once per type, so it is a large share of the cost beyond the tokenizer's:
        # Lexeme(vocab, orth) is 7x faster than vocab[orth].
        vocab, pack = self.vocab, self._pack
        return [pack(Lexeme(vocab, orth)) for orth in orths]

    def _resolve_text(self, text: str) -> int:
        value = self._by_text[text] = self._pack(self.vocab[text])
        return value

    def _pack(self, lexeme: Lexeme) -> int:
        """(word id + 1) << 2 | sentence flags; word id -1 (0 when packed) for a dropped token."""
        word = self.normalizer.norm(lexeme)
        word_id = -1 if word is None else self._word_id(word)
        final = lexeme.orth in self.final_orths
        flags = (_PUNCT_LIKE if (final or lexeme.is_punct) else 0) | (_FINAL if final else 0)
        return ((word_id + 1) << 2) | flags

    def _word_id(self, word: str) -> int:
        word_id = self._word_ids.get(word)
        if word_id is None:
            word_id = self._word_ids[word] = len(self._words)
            self._words.append(word)
            if 2 * word_id + 1 >= len(self._word_array):
                grown = np.empty(2 * len(self._word_array), dtype=object)
                grown[: len(self._word_array)] = self._word_array
                self._word_array = grown
                hashes = np.zeros(len(grown) // 2, dtype=np.uint64)
                hashes[: len(self._word_hashes)] = self._word_hashes
                self._word_hashes = hashes
            # Each word followed by what follows it in a token file: a space, or the line's end.
            self._word_array[2 * word_id] = word + tokenfile.SEPARATOR
            self._word_array[2 * word_id + 1] = word + tokenfile.LINE_END
            if self.config.heldout_fraction:
                self._word_hashes[word_id] = hash_string(word)
        return word_id


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.intp)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _sentence_starts(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """spaCy's sentencizer rule, vectorised over a batch of concatenated documents.

    The sentencizer starts a sentence at each document's first token, and at a token that is
    neither punctuation nor sentence-final when a sentence-final character (``punct_chars``)
    occurred since the last such token of the same document. (Equivalent to its loop because
    its ``seen_period`` is reset at every non-punctuation token.)
    """
    n = len(flags)
    starts = np.zeros(n, dtype=bool)
    offsets = _offsets(lengths)
    starts[offsets[:-1][lengths > 0]] = True
    finals_before = np.zeros(n + 1, dtype=np.int64)  # finals_before[i]: finals in tokens [0, i)
    np.cumsum((flags & _FINAL) != 0, out=finals_before[1:])
    words = np.flatnonzero((flags & _PUNCT_LIKE) == 0)
    if not len(words):
        return starts
    doc_begin = offsets[:-1][np.repeat(np.arange(len(lengths)), lengths)[words]]
    previous = np.empty_like(words)
    previous[0] = -1
    previous[1:] = words[:-1]
    boundary = np.maximum(previous, doc_begin - 1)  # last word before, or before the document
    seen_final = finals_before[words] - finals_before[boundary + 1] > 0
    starts[words[seen_final]] = True
    return starts


def _line_ends(sentences: np.ndarray) -> np.ndarray:
    """True at the last token of each sentence, given each token's (non-decreasing) sentence."""
    line_end = np.empty(len(sentences), dtype=bool)
    np.not_equal(sentences[1:], sentences[:-1], out=line_end[:-1])
    line_end[-1] = True
    return line_end


_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, splitmix64's increment


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit (wrapping uint64)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _heldout_sentences(
    word_hashes: np.ndarray, line_end: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """True for the sentences that go to the held-out file.

    A sentence's hash mixes each word's string hash with its position, sums over the sentence
    and mixes in the seed: equal sentences get equal hashes in any batch or process, so the
    split is deterministic and a repeated sentence never lands on both sides.
    """
    ends = np.flatnonzero(line_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    position = np.arange(len(word_hashes)) - np.repeat(starts, ends - starts + 1)
    with np.errstate(over="ignore"):
        tokens = _mix64(word_hashes + position.astype(np.uint64) * np.uint64(_GOLDEN))
        seed_term = np.uint64((seed + 1) * _GOLDEN % 2**64)
        sentences = _mix64(np.add.reduceat(tokens, starts) + seed_term)
    threshold = np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))
    return sentences < threshold


def _blank(lang: str) -> spacy.Language:
    try:
        return spacy.blank(lang)
    except (ImportError, KeyError, ValueError) as err:
        raise InputError(Errors.E109.format(lang=lang, reason=err)) from None


# Worker processes ----------------------------------------------------------------------------

_worker: _BatchProcessor | None = None


def _init_worker(config: _ProcessorConfig) -> None:
    global _worker
    _worker = _BatchProcessor(config)


def _work(batch: _Batch) -> _BatchResult:
    assert _worker is not None
    return _worker.process_batch(batch)


def _process_in_workers(
    config: _ProcessorConfig, batches: Iterable[_Batch], n_process: int
) -> Iterator[_BatchResult]:
    """Tokenize in worker processes; results come back in input order.

    Workers return finished text, not Docs, so little crosses the process boundary. At most
    two batches per worker are in flight, which keeps memory flat (``Pool.imap`` would read
    the whole input ahead).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pending: deque = deque()
    with context.Pool(n_process, initializer=_init_worker, initargs=(config,)) as pool:
        for batch in batches:
            pending.append(pool.apply_async(_work, (batch,)))
            if len(pending) >= 2 * n_process:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# Output --------------------------------------------------------------------------------------


def _open_output(path: Path) -> IO[str]:
    # Lone surrogates (possible from JSON escapes) cannot be UTF-8: write U+FFFD-free "?".
    return open_new(path, "w", encoding="utf-8", errors="replace", newline="\n", buffering=1 << 20)


def _meta(
    config: _ProcessorConfig,
    split: _SplitStats,
    stats: CorpusStats,
    seconds: float,
    inputs: Sequence[Path],
    role: str | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "lang": config.lang,
        "pretokenized": config.pretokenized,
        "normalizer": config.normalizer,
        "min_sentence_length": config.min_sentence_length,
        "inputs": [str(p) for p in inputs],
        "stats": {
            "documents": split.documents,
            "sentences": split.sentences,
            "tokens": split.tokens,
            "types": len(split.types),
            "replaced_bytes": stats.replaced_bytes,
            "split_lines": stats.split_lines,
            "seconds": round(seconds, 3),
        },
    }
    if config.document_marker:  # blank lines end documents (tokenfile.documents)
        meta["document_marker"] = True
    if role is not None:
        meta["split"] = {
            "role": role,
            "heldout_fraction": config.heldout_fraction,
            "seed": config.heldout_seed,
        }
    return meta


def _warn_about_input(stats: CorpusStats, max_length: int) -> None:
    for path, count in stats.replaced_by_file.items():
        warnings.warn(Warnings.W100.format(path=path, count=count), stacklevel=3)
    if stats.split_lines:
        warnings.warn(
            Warnings.W102.format(count=stats.split_lines, max_length=max_length), stacklevel=3
        )


def _progress_bar(enabled: bool) -> Any:
    from tqdm import tqdm  # a spaCy dependency

    return tqdm(
        disable=not enabled,
        desc="Preprocessing",
        unit=" tokens",
        unit_scale=True,
        file=sys.stderr,
        mininterval=0.5,
        leave=False,
    )
