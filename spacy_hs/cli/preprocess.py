"""`spacy-hs preprocess`: raw text -> token file (gensim LineSentence format) + meta.json."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import Arg, Opt, app, in_range, library_warnings


class Action(str, Enum):
    keep = "keep"
    drop = "drop"
    placeholder = "placeholder"


class StopwordAction(str, Enum):
    keep = "keep"
    drop = "drop"


class EngineName(str, Enum):
    local = "local"
    dask = "dask"


@app.command("preprocess")
def preprocess_cli(
    inputs: Annotated[
        list[Path],
        Arg(
            metavar="INPUT...",
            help="Text to read: .txt (one document per line; any file passed explicitly is read "
            'this way), .jsonl (one JSON object with a "text" field per line), either of them '
            ".gz or .bz2 compressed, or directories of such files (read recursively, in sorted "
            "order).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        Arg(
            metavar="OUTPUT",
            help="Token file to write: one sentence per line, tokens separated by spaces, "
            "UTF-8. OUTPUT.meta.json records the language, the normalizer settings and corpus "
            "statistics. Both are written atomically.",
            show_default=False,
        ),
    ],
    lang: Annotated[
        str, Opt("--lang", "-l", help="Language code of the spaCy tokenizer (spacy.blank).")
    ] = "en",
    lowercase: Annotated[
        bool, Opt("--lowercase/--no-lowercase", help="Lowercase every token.")
    ] = True,
    punct: Annotated[
        Action,
        Opt(help="Punctuation tokens: keep them, drop them, or write <punct> instead."),
    ] = Action.drop,
    numbers: Annotated[
        Action,
        Opt(help="Number-like tokens (spaCy's like_num): keep, drop, or write <num> instead."),
    ] = Action.placeholder,
    urls: Annotated[
        Action,
        Opt(help="URL-like tokens (spaCy's like_url): keep, drop, or write <url> instead."),
    ] = Action.placeholder,
    stopwords: Annotated[
        StopwordAction,
        Opt(help="spaCy's stop words: keep them (best for next-word prediction) or drop them."),
    ] = StopwordAction.keep,
    min_sentence_length: Annotated[
        int,
        Opt(
            "--min-sentence-length",
            callback=in_range("--min-sentence-length", 1),
            help="Leave out sentences with fewer tokens than this (counted after normalisation).",
        ),
    ] = 1,
    pretokenized: Annotated[
        bool,
        Opt(
            "--pretokenized",
            help="The input is already one tokenized sentence per line (e.g. Penn Treebank): "
            "split tokens on whitespace and do not split sentences. Normalisation still applies.",
        ),
    ] = False,
    doc_marker: Annotated[
        bool,
        Opt(
            "--doc-marker/--no-doc-marker",
            help="Write a blank line after each input document (a line of a .txt file, a "
            "record of a .jsonl file), in OUTPUT and --heldout: `spacy-hs evaluate` then starts "
            "the document cache afresh at each document. gensim skips blank lines.",
        ),
    ] = False,
    n_process: Annotated[
        int,
        Opt(
            "--n-process",
            "-n",
            callback=in_range("--n-process", 1),
            help="Processes for tokenizing. More than 1 pays off on large corpora only: each "
            "worker starts its own Python and spaCy.",
        ),
    ] = 1,
    batch_size: Annotated[
        int,
        Opt(
            "--batch-size",
            "-b",
            callback=in_range("--batch-size", 1),
            help="Documents per batch (also capped at 1M chars).",
        ),
    ] = 1000,
    heldout: Annotated[
        Path | None,
        Opt(
            "--heldout",
            help="Also write a held-out token file (with its own meta.json), e.g. for "
            "`spacy-hs evaluate`. Its sentences are left out of OUTPUT.",
            show_default=False,
        ),
    ] = None,
    heldout_fraction: Annotated[
        float,
        Opt(
            "--heldout-fraction",
            help="Share of the sentences for --heldout. The choice hashes each sentence's words: "
            "deterministic, and a repeated sentence always lands on the same side.",
        ),
    ] = 0.05,
    heldout_seed: Annotated[
        int, Opt("--heldout-seed", help="Seed of the held-out hash: another seed, another split.")
    ] = 0,
    max_length: Annotated[
        int | None,
        Opt(
            "--max-length",
            callback=in_range("--max-length", 2),
            help="Split lines longer than this many characters at whitespace. Default: spaCy's "
            "nlp.max_length (1,000,000).",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool, Opt("--progress/--no-progress", help="Show a progress bar with tokens/s.")
    ] = True,
    engine: Annotated[
        EngineName,
        Opt(
            "--engine",
            "-e",
            help="Where to tokenize: local (this process, or --n-process processes) or dask "
            "(a Dask cluster: a local one, or the one at --scheduler; needs "
            'pip install "spacy-hs[dask]"). Both write identical files.',
        ),
    ] = EngineName.local,
    workers: Annotated[
        int | None,
        Opt(
            "--workers",
            "-w",
            callback=in_range("--workers", 1),
            help="Dask: worker processes of the local cluster, one thread each. Default: one "
            "per CPU core.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        Opt(
            "--scheduler",
            help="Dask: address of a running scheduler (tcp://HOST:PORT) whose workers to use; "
            "the cluster is left running. Client and workers must share a filesystem with the "
            "inputs and OUTPUT's directory at the same paths. Default: start a local cluster.",
            show_default=False,
        ),
    ] = None,
    chunk_mb: Annotated[
        float | None,
        Opt(
            "--chunk-mb",
            help="Dask: MB of input per task (default 32). Uncompressed files are cut at line "
            "ends; compressed files are one task each.",
            show_default=False,
        ),
    ] = None,
    dashboard: Annotated[
        bool,
        Opt("--dashboard", help="Dask: serve the local cluster's dashboard on 127.0.0.1:8787."),
    ] = False,
    scheduler_timeout: Annotated[
        float | None,
        Opt(
            "--scheduler-timeout",
            help="Dask: seconds to wait for --scheduler and a worker (default 10).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Tokenize raw text with spaCy into a token file for `spacy-hs train`.

    Sentences are split with spaCy's sentencizer rule and tokens normalised as the options say.

    The settings are saved in OUTPUT.meta.json and applied by the trained pipeline to new text.

    Memory stays flat whatever the corpus size.

    With --engine dask the work is spread over a Dask cluster in tasks of --chunk-mb of input.
    """
    from ..corpus.normalize import NormalizerSettings
    from ..corpus.preprocess import preprocess
    from ..errors import ConfigError, Errors

    settings = NormalizerSettings(
        lowercase=lowercase,
        punct=punct.value,
        numbers=numbers.value,
        urls=urls.value,
        stopwords=stopwords.value,
    )
    dask_options = {
        "workers": workers,
        "scheduler": scheduler or None,  # project.yml passes "" for none
        "chunk_mb": chunk_mb,
        "dashboard": dashboard or None,
        "timeout": scheduler_timeout,
    }
    dask_options = {name: value for name, value in dask_options.items() if value is not None}
    if engine == EngineName.local and dask_options:
        flags = {"timeout": "scheduler_timeout"}
        given = ", ".join("--" + flags.get(name, name).replace("_", "-") for name in dask_options)
        raise ConfigError(Errors.E807.format(options=given))
    with library_warnings():
        runner = None
        if engine == EngineName.dask:
            from ..corpus.dask_engine import DaskEngine

            runner = DaskEngine(**dask_options)
        try:
            result = preprocess(
                inputs,
                output,
                lang=lang,
                normalizer=settings,
                min_sentence_length=min_sentence_length,
                pretokenized=pretokenized,
                document_marker=doc_marker,
                n_process=n_process,
                batch_size=batch_size,
                heldout=heldout,
                heldout_fraction=heldout_fraction,
                heldout_seed=heldout_seed,
                max_length=max_length,
                progress=progress,
                engine=runner,
            )
        except KeyboardInterrupt:
            msg.fail(f"Interrupted: {output} was not written.", exits=130)
    stats = result.meta["stats"]
    rate = sum(_tokens(m) for m in (result.meta, result.heldout_meta)) / max(stats["seconds"], 1e-9)
    msg.good(f"Wrote {output} in {stats['seconds']:.1f} s ({rate:,.0f} tokens/s written)")
    rows = [("token file", output, stats)]
    if result.heldout is not None and result.heldout_meta is not None:
        msg.good(f"Wrote held-out file {result.heldout}")
        rows.append(("held-out", result.heldout, result.heldout_meta["stats"]))
    keys = ("documents", "sentences", "tokens", "types")
    msg.table(
        [(name, *(f"{s[k]:,}" for k in keys)) for name, _, s in rows],
        header=("", *keys),
        aligns=("l", "r", "r", "r", "r"),
    )
    msg.text(f"Settings and statistics: {output}.meta.json")


def _tokens(meta: dict | None) -> int:
    return meta["stats"]["tokens"] if meta else 0
