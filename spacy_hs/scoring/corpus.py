"""Score a whole corpus into a file: `score_corpus`, behind ``spacy-hs score``.

Reads the inputs in chunks (`inputs`), scores them on an engine (`engines`), and writes one
record per document in input order (`outputs`), with a CCNet bucket (`buckets`) if asked, and
the documents at or under ``max_perplexity`` (with their text) to a second file.

Every output is written under a temporary name and renamed only when the whole run has
succeeded: an error or a Ctrl-C leaves no half-written file under the final names. With
``buckets`` (percentiles) the cutoffs are known only once every document is scored: the records
then go to a temporary spool first, and are written with their bucket in a second pass.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, Errors, OutputError, Warnings
from ..util import atomic_outputs, check_output_location, temporary_sibling
from .buckets import (
    DEFAULT_SAMPLE_SIZE,
    Cutoffs,
    PerplexitySample,
    cutoffs_path,
    parse_cutoffs,
    parse_percentiles,
    write_cutoffs,
)
from .engines import Engine, LocalEngine, ScoreJob, load_pipeline
from .inputs import (
    DEFAULT_CHUNK_CHARS,
    DEFAULT_CHUNK_DOCUMENTS,
    DEFAULT_ID_FIELD,
    DEFAULT_TEXT_FIELD,
    InputSpec,
    check_inputs,
    chunks,
    read_documents,
)
from .outputs import RecordWriter, check_parquet, open_records, open_text
from .progress import Progress
from .records import DEFAULT_BATCH_SIZE, json_line

PathLike = str | os.PathLike


@dataclass
class ScoreSummary:
    """What a run wrote: counts, and the paths of the outputs."""

    output: Path
    documents: int = 0
    tokens: int = 0
    seconds: float = 0.0
    skipped: int = 0
    kept: int | None = None
    kept_path: Path | None = None
    cutoffs: Cutoffs | None = None
    cutoffs_path: Path | None = None
    buckets: dict[str, int] = field(default_factory=dict)


def kept_path(output: Path) -> Path:
    """The default file of the documents at or under --max-perplexity: scores.jsonl ->
    scores.kept.jsonl (always JSON Lines)."""
    stem = output.name.split(".", 1)[0] or output.name
    return output.with_name(f"{stem}.kept.jsonl")


def score_corpus(
    pipeline: str | PathLike,
    inputs: Sequence[PathLike],
    output: PathLike,
    *,
    engine: Engine | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
    id_field: str = DEFAULT_ID_FIELD,
    per_token: bool = False,
    buckets: str | tuple[float, float] | None = None,
    cutoffs: str | PathLike | tuple[float, float] | None = None,
    max_perplexity: float | None = None,
    kept: PathLike | None = None,
    skip_bad: bool = False,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    chunk_documents: int = DEFAULT_CHUNK_DOCUMENTS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    progress: bool = False,
) -> ScoreSummary:
    """Score every document of ``inputs`` with ``pipeline`` into ``output``.

    pipeline: a pipeline directory (`spacy-hs assemble`), an HSModel directory or an installed
        pipeline package.
    inputs: JSON Lines or plain-text files, optionally .gz (`spacy_hs.scoring.inputs`).
    output: JSON Lines, or Parquet if the name ends in .parquet (needs pyarrow).
    engine: `LocalEngine` (default: this process) or `DaskEngine`.
    text_field / id_field: the JSON fields of a document's text and id.
    per_token: add each token's text and surprisal in bits.
    buckets: two percentiles ("33,66") whose perplexities, in a deterministic sample of
        ``sample_size`` documents, cut the corpus into head, middle and tail.
    cutoffs: or the two perplexities themselves ("120,450"), or a cutoffs file written beside
        an earlier output. Either way the cutoffs are written to OUTPUT.cutoffs.json.
    max_perplexity: also write the documents whose perplexity is at most this, with their text,
        to ``kept`` (default: OUTPUT's stem + ".kept.jsonl").
    skip_bad: skip bad input lines (counted, with a warning) instead of stopping.
    chunk_chars / chunk_documents: the size of a chunk of work (`spacy_hs.scoring.inputs`).
    batch_size: documents per ``nlp.pipe`` batch.
    progress: show documents and tokens per second on stderr.
    """
    output = Path(output)
    paths = [Path(p) for p in inputs]
    percentiles = parse_percentiles(buckets) if buckets is not None else None
    given = parse_cutoffs(cutoffs) if cutoffs is not None else None
    if percentiles is not None and given is not None:
        raise ConfigError(Errors.E911)
    _check_number("max_perplexity", max_perplexity, "a number > 0")
    if kept is not None and max_perplexity is None:
        raise ConfigError(Errors.E913)
    for name, value in (("chunk_chars", chunk_chars), ("chunk_documents", chunk_documents),
                        ("batch_size", batch_size), ("sample_size", sample_size)):  # fmt: skip
        _check_number(name, value, "an integer >= 1", integer=True)
    check_inputs(paths)
    kept_file = None if max_perplexity is None else Path(kept or kept_path(output))
    cuts_file = cutoffs_path(output) if percentiles or given else None
    targets = [p for p in (output, kept_file, cuts_file) if p is not None]
    _check_outputs(targets, paths)
    check_parquet(output)
    engine = engine or LocalEngine()
    name = str(Path(pipeline).absolute()) if Path(pipeline).exists() else str(pipeline)
    nlp = load_pipeline(name)  # in this process too: a bad pipeline fails before any work

    spec = InputSpec(text_field=text_field, id_field=id_field, skip_bad=skip_bad)
    documents = read_documents(paths, spec)
    job = ScoreJob(
        pipeline=name,
        nlp=nlp,
        chunks=chunks(documents, max_chars=chunk_chars, max_documents=chunk_documents),
        per_token=per_token,
        batch_size=batch_size,
        verbose=progress,
    )
    summary = ScoreSummary(output, kept_path=kept_file, cutoffs_path=cuts_file, cutoffs=given)
    meter = Progress(progress)
    sink = _Sink(given, max_perplexity, summary)
    with ExitStack() as stack:
        stack.callback(meter.close)
        temporaries = dict(zip(targets, stack.enter_context(atomic_outputs(targets))))
        records = stack.enter_context(closing(_scored(engine, job, meter)))
        main = stack.enter_context(closing(open_records(output, temporaries[output])))
        if kept_file is not None:
            sink.kept = stack.enter_context(open_text(temporaries[kept_file]))
        if percentiles is None:
            for record in records:
                sink.write(main, record)
        else:
            spool = temporary_sibling(output)
            stack.callback(spool.unlink, missing_ok=True)
            sample = PerplexitySample(sample_size)
            with open_text(spool) as f:
                for position, record in enumerate(records):
                    sample.add(position, record["perplexity"])
                    if kept_file is None:
                        del record["text"]  # the last key: popped, the order is as written
                    f.write(json_line(record))
            sink.cutoffs = summary.cutoffs = sample.cutoffs(percentiles)
            for record in _read_spool(spool):
                sink.write(main, record)
        if cuts_file is not None:
            with open_text(temporaries[cuts_file]) as f:
                write_cutoffs(summary.cutoffs, f)  # type: ignore[arg-type]
    summary.documents, summary.tokens = meter.documents, meter.tokens
    summary.seconds = meter.seconds
    summary.skipped = spec.bad.count
    if spec.bad.count:
        warnings.warn(
            Warnings.W900.format(count=spec.bad.count, first=spec.bad.first), stacklevel=2
        )
    return summary


def _scored(engine: Engine, job: ScoreJob, meter: Progress) -> Iterator[dict[str, Any]]:
    """The records as dicts, in input order, each with its text under "text" (dropped by the
    main output)."""
    with closing(engine.run(job)) as results:
        for chunk, scores in results:
            tokens = 0
            for text, score in zip(chunk.texts, scores):
                record = score.to_dict()
                record["text"] = text
                tokens += score.tokens
                yield record
            meter.update(len(scores), tokens)


class _Sink:
    """Writes each record to the main output (with its bucket) and, if kept, to the kept file
    (with its text after the id)."""

    def __init__(self, cutoffs: Cutoffs | None, max_perplexity: float | None, summary: Any):
        self.cutoffs = cutoffs
        self.max_perplexity = max_perplexity
        self.kept: IO[str] | None = None
        self.summary = summary
        if max_perplexity is not None:
            summary.kept = 0

    def write(self, main: RecordWriter, record: dict[str, Any]) -> None:
        text = record.pop("text", None)
        perplexity = record["perplexity"]
        if self.cutoffs is not None:
            bucket = record["bucket"] = self.cutoffs.bucket(perplexity)
            key = bucket or "none"
            self.summary.buckets[key] = self.summary.buckets.get(key, 0) + 1
        main.write(record)
        if self.kept is not None and perplexity is not None and perplexity <= self.max_perplexity:
            self.kept.write(json_line({"id": record["id"], "text": text, **record}))
            self.summary.kept += 1


def _read_spool(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _check_outputs(targets: Sequence[Path], inputs: Sequence[Path]) -> None:
    seen: dict[Path, Path] = {}
    for target in targets:
        if target.is_dir():
            raise OutputError(Errors.E907.format(path=target))
        check_output_location(target, inputs)  # E180 (an input), E181 (inside a model)
        resolved = target.resolve()
        if resolved in seen:
            raise OutputError(Errors.E918.format(path=target, other=seen[resolved]))
        seen[resolved] = target


def _check_number(name: str, value: Any, expected: str, *, integer: bool = False) -> None:
    if value is None:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise ConfigError(Errors.E912.format(option=name, expected=expected, value=value))
