"""What every preprocessing engine shares: the job, the statistics and the writer.

An engine turns the input files into token text; `preprocess` validates before it and writes
the meta files and renames the outputs after it. All engines share `write_units`, so their
output is byte-identical by construction. The engines: `spacy_hs.corpus.local_engine` (this
process or local worker processes) and `spacy_hs.corpus.dask_engine`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from ..progress import Progress
from ..util import open_new
from . import tokenfile
from .inputs import Batch, Reader, WorkUnit, batches
from .processor import BatchResult, ProcessorConfig, SplitPart


@dataclass
class SplitStats:
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    types: set[str] = field(default_factory=set)
    _last_doc: int = -1

    def add(self, part: SplitPart) -> None:
        if part.sentences:
            # Batches arrive in order; a document cut between batches is counted once.
            self.documents += part.documents - (part.first_doc == self._last_doc)
            self._last_doc = part.last_doc
        self.sentences += part.sentences
        self.tokens += part.tokens
        self.types.update(part.new_types)

    def merge(self, later: SplitStats) -> None:
        """Add the statistics of a later unit (units never share a document)."""
        self.documents += later.documents
        self.sentences += later.sentences
        self.tokens += later.tokens
        self.types |= later.types


@dataclass
class CorpusStats:
    """What reading and tokenizing some units gave; `merge` adds a later unit's statistics."""

    splits: list[SplitStats]  # per output file: the token file, then the held-out file
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

    config: ProcessorConfig
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
    process: Callable[[Iterator[Batch]], Iterable[BatchResult]],
    units: Sequence[WorkUnit],
    outputs: Sequence[IO[str]],
    *,
    max_length: int,
    batch_size: int,
    progress: Progress | None = None,
    document_marker: bool = False,
) -> CorpusStats:
    """Read ``units`` in order, tokenize their batches with ``process`` (which yields results in
    order) and write the token text to ``outputs`` (one per split). Every engine runs this.

    document_marker: the batches mark the document ends inside them; here the blank line goes
    between batches where a document ends, and after the last document (units never share a
    document, so shards of units concatenate to the same file)."""
    reader = Reader(units, max_length=max_length)
    stats = CorpusStats(splits=[SplitStats() for _ in outputs])
    splits = stats.splits
    last_documents = [-1] * len(outputs)  # per output: the document of its last line
    for result in process(batches(reader, batch_size)):
        for side, (split, handle, part) in enumerate(zip(splits, outputs, result.splits)):
            if document_marker and part.sentences:
                if last_documents[side] not in (-1, part.first_doc):
                    handle.write(tokenfile.LINE_END)
                last_documents[side] = part.last_doc
            handle.write(part.text)
            split.add(part)
        stats.input_tokens += result.input_tokens
        if progress is not None:
            note = f"{reader.documents:,} docs, {splits[0].sentences:,} sentences"
            progress.update(result.input_tokens, note=note)
    for handle, last in zip(outputs, last_documents):
        if last != -1:
            handle.write(tokenfile.LINE_END)
    stats.documents, stats.split_lines = reader.documents, reader.split_lines
    stats.replaced_by_file = reader.replaced_by_file
    return stats


def open_output(path: Path) -> IO[str]:
    # Lone surrogates (possible from JSON escapes) cannot be UTF-8: write U+FFFD-free "?".
    return open_new(path, "w", encoding="utf-8", errors="replace", newline="\n", buffering=1 << 20)
