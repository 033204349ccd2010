"""`spacy-hs preprocess`: raw text -> token file (gensim LineSentence format) + meta.json."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from wasabi import msg

from ._dask import DashboardOpt, SchedulerTimeoutOpt, engine_opt, scheduler_opt, workers_opt
from ._util import Arg, EngineName, Opt, app, dask_options, fail, in_range, library_warnings

# The largest seed the token file's meta.json can record (a signed 64-bit JSON integer).
MAX_SEED = 2**63 - 1


def _process_count(option: str) -> Callable[[Any], Any]:
    """A typer callback: at least 1 (E190), at most ``util.max_workers`` (E114), checked
    before any work."""
    at_least_one = in_range(option, 1)

    def check(value: Any) -> Any:
        from ..dask_cluster import check_worker_processes
        from ..errors import SpacyHSError

        at_least_one(value)
        if value is not None:
            try:
                check_worker_processes(option, value)
            except SpacyHSError as err:
                fail(err)
        return value

    return check


class Action(str, Enum):
    keep = "keep"
    drop = "drop"
    placeholder = "placeholder"


class NumbersRule(str, Enum):
    digits = "digits"
    like_num = "like_num"


class StopwordAction(str, Enum):
    keep = "keep"
    drop = "drop"


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
        Action, Opt(help="Punctuation tokens: keep them, drop them, or write <punct> instead.")
    ] = Action.drop,
    numbers: Annotated[
        Action, Opt(help="Numbers (see --numbers-rule): keep, drop, or write <num> instead.")
    ] = Action.placeholder,
    numbers_rule: Annotated[
        NumbersRule,
        Opt(
            "--numbers-rule",
            help="Which tokens are numbers: digits (written with digits and no letter: 1984, "
            "3.5, 1,000; 'first' and 'two' stay words) or like_num (spaCy's like_num: number "
            "words too, the earlier rule).",
        ),
    ] = NumbersRule.digits,
    urls: Annotated[
        Action, Opt(help="URL-like tokens (spaCy's like_url): keep, drop, or write <url> instead.")
    ] = Action.placeholder,
    stopwords: Annotated[
        StopwordAction,
        Opt(help="spaCy's stop words: keep them (best for next-word prediction) or drop them."),
    ] = StopwordAction.keep,
    min_sentence_length: Annotated[
        int,
        Opt(
            "--min-sentence-length",
            at_least=1,
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
            callback=_process_count("--n-process"),
            help="Processes for tokenizing. More than 1 pays off on large corpora only: each "
            "worker starts its own Python and spaCy.",
        ),
    ] = 1,
    batch_size: Annotated[
        int,
        Opt(
            "--batch-size", "-b", at_least=1, help="Documents per batch (also capped at 1M chars)."
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
        int,
        Opt(
            "--heldout-seed",
            at_least=0,
            at_most=MAX_SEED,
            help="Seed of the held-out hash: another seed, another split.",
        ),
    ] = 0,
    max_length: Annotated[
        int | None,
        Opt(
            "--max-length",
            at_least=2,
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
        engine_opt(
            "Where to tokenize: local (this process, or --n-process processes) or dask (a Dask "
            'cluster: a local one, or the one at --scheduler; needs pip install "spacy-hs[dask]"). '
            "Both write identical files."
        ),
    ] = EngineName.local,
    workers: Annotated[
        int | None,
        workers_opt(
            "Dask: worker processes of the local cluster, one thread each. Default: one per CPU "
            "core.",
            callback=_process_count("--workers"),
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        scheduler_opt(
            "the cluster is left running. Client and workers must share a filesystem with the "
            "inputs and OUTPUT's directory at the same paths. Default: start a local cluster."
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
    dashboard: DashboardOpt = False,
    scheduler_timeout: SchedulerTimeoutOpt = None,
) -> None:
    """Tokenize raw text with spaCy into a token file for `spacy-hs train`.

    Sentences are split with spaCy's sentencizer rule and tokens normalised as the options say.

    The settings are saved in OUTPUT.meta.json and applied by the trained pipeline to new text.

    Memory stays flat whatever the corpus size.

    With --engine dask the work is spread over a Dask cluster in tasks of --chunk-mb of input.
    """
    from ..corpus.normalize import NormalizerSettings
    from ..corpus.preprocess import preprocess
    from ..errors import EXIT_INTERRUPTED

    settings = NormalizerSettings(
        lowercase=lowercase,
        punct=punct.value,
        numbers=numbers.value,
        urls=urls.value,
        stopwords=stopwords.value,
        numbers_rule=numbers_rule.value,
    )
    engine_options = dask_options(
        engine,
        workers=workers,
        scheduler=scheduler,
        chunk_mb=chunk_mb,
        dashboard=dashboard,
        scheduler_timeout=scheduler_timeout,
    )
    with library_warnings():
        runner = None
        if engine == EngineName.dask:
            from ..corpus.dask_engine import DaskEngine

            runner = DaskEngine(**engine_options)
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
            msg.fail(f"Interrupted: {output} was not written.", exits=EXIT_INTERRUPTED)
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
