"""Raw text -> token file: the first stage of spacy-hs.

The token file is gensim's ``LineSentence`` format (one sentence per line, tokens separated by
single spaces, UTF-8), so ``Word2Vec(corpus_file=...)`` reads it directly. Beside it,
``<token file>.meta.json`` records the language and the normaliser settings, which travel into
the trained model so that the pipeline component normalises new text the same way.

`preprocess` checks the options and paths, has an engine read the inputs
(`spacy_hs.corpus.inputs`) and tokenize them (`spacy_hs.corpus.processor`), and writes the meta
files. Memory is bounded by the vocabulary, not by the corpus.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srsly

from ..errors import ConfigError, Errors, InputError, OutputError, Warnings
from ..util import atomic_outputs, check_output_location, is_positive_int, open_new
from . import tokenfile
from .engine import CorpusStats, Engine, PreprocessJob, SplitStats
from .inputs import PathLike, collect_input_files
from .local_engine import LocalEngine
from .normalize import NormalizerSettings
from .processor import BatchProcessor, ProcessorConfig


@dataclass
class PreprocessResult:
    """What `preprocess` wrote: the token file(s) and their meta dicts (as in the .meta.json)."""

    output: Path
    meta: dict[str, Any]
    heldout: Path | None = None
    heldout_meta: dict[str, Any] | None = None


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
    progress: show tokens/s on stderr: a bar on a terminal, else a line every few seconds.
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
    config = ProcessorConfig(
        lang=lang,
        normalizer=settings.to_dict(),
        pretokenized=pretokenized,
        min_sentence_length=min_sentence_length,
        document_marker=document_marker,
        heldout_fraction=heldout_fraction if heldout_path is not None else 0.0,
        heldout_seed=heldout_seed,
    )
    processor = BatchProcessor(config)  # also validates `lang` before any work
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
            engine = LocalEngine(n_process, processor)
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


def _meta(
    config: ProcessorConfig,
    split: SplitStats,
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
