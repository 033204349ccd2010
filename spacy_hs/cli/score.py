"""`spacy-hs score`: the perplexity of every document of a corpus, on one process or many."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._dask import DashboardOpt, SchedulerTimeoutOpt, engine_opt, scheduler_opt, workers_opt
from ._util import Arg, EngineName, Opt, app, dask_options, library_warnings

MB = 1_000_000


@app.command("score")
def score_cli(
    pipeline: Annotated[
        str,
        Arg(
            metavar="PIPELINE",
            help="A pipeline directory written by `spacy-hs assemble` (or an HSModel directory), "
            "or the name of an installed pipeline package.",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        list[Path],
        Arg(
            metavar="INPUT...",
            help="The documents: JSON Lines (.jsonl, one object per document) or plain text "
            "(documents separated by blank lines), either optionally .gz compressed.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        Arg(
            metavar="OUTPUT",
            help="JSON Lines, one record per document in input order (id, tokens, perplexity, "
            "surprisal, unknown), or Parquet if the name ends in .parquet (needs pyarrow). "
            "Written atomically.",
            show_default=False,
        ),
    ],
    text_field: Annotated[
        str, Opt("--text-field", help="JSON Lines: the field holding a document's text.")
    ] = "text",
    id_field: Annotated[
        str,
        Opt(
            "--id-field",
            help="JSON Lines: the field holding a document's id. Without one, the id is the "
            "document's 0-based index in the input.",
        ),
    ] = "id",
    per_token: Annotated[
        bool,
        Opt("--per-token", help="Add each token's text and surprisal in bits (null: unscored)."),
    ] = False,
    buckets: Annotated[
        str | None,
        Opt(
            "--buckets",
            help="Two percentiles, e.g. 33,66: add a bucket field (head, middle, tail) cut at "
            "the perplexities of these percentiles in a deterministic sample of the corpus, as "
            "CCNet does. The cutoffs are written to OUTPUT.cutoffs.json.",
            show_default=False,
        ),
    ] = None,
    cutoffs: Annotated[
        str | None,
        Opt(
            "--cutoffs",
            help="The bucket cutoffs given: two perplexities (e.g. 120,450) or the "
            "OUTPUT.cutoffs.json of an earlier run (to cut other shards alike).",
            show_default=False,
        ),
    ] = None,
    max_perplexity: Annotated[
        float | None,
        Opt(
            "--max-perplexity",
            help="Also write the documents whose perplexity is at most this, with their text, "
            "to --kept.",
            show_default=False,
        ),
    ] = None,
    kept: Annotated[
        Path | None,
        Opt(
            "--kept",
            help="JSON Lines file for --max-perplexity (id, text and scores; readable by `spacy-hs "
            "preprocess`). Default: OUTPUT's name up to its first dot + .kept.jsonl.",
            show_default=False,
        ),
    ] = None,
    skip_bad: Annotated[
        bool,
        Opt(
            "--skip-bad",
            help="Skip bad input lines (not JSON, no text field, not UTF-8) and count them, "
            "instead of stopping at the first.",
        ),
    ] = False,
    engine: Annotated[
        EngineName,
        engine_opt(
            "local (this machine: --workers processes) or dask (a Dask cluster: a local one, or "
            'the one at --scheduler; needs pip install "spacy-hs[dask]"). Both write identical '
            "files."
        ),
    ] = EngineName.local,
    workers: Annotated[
        int | None,
        workers_opt(
            "Worker processes: local, default 1 (this process); dask, the local cluster's, "
            "default one per CPU core.",
            at_least=1,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        scheduler_opt(
            "they must load PIPELINE by the same path or package name. Default: a local cluster "
            "on 127.0.0.1."
        ),
    ] = None,
    scheduler_timeout: SchedulerTimeoutOpt = None,
    dashboard: DashboardOpt = False,
    chunk_mb: Annotated[
        float,
        Opt(
            "--chunk-mb",
            help="MB of text per unit of work (a chunk is also at most 10,000 documents). "
            "Memory holds about two chunks per worker.",
        ),
    ] = 1.0,
    batch_size: Annotated[
        int, Opt("--batch-size", "-b", at_least=1, help="Documents per nlp.pipe batch.")
    ] = 64,
    progress: Annotated[
        bool,
        Opt(
            "--progress/--no-progress",
            help="Show documents/s and tokens/s on stderr (a bar on a terminal, else a line "
            "every few seconds).",
        ),
    ] = True,
) -> None:
    """Score each document of a corpus: tokens, perplexity, mean surprisal, unknown words.

    A document's figures are those of nlp(text)._.hs_perplexity, with the pipeline's own
    settings (head, document cache). Memory stays flat whatever the corpus size.
    """
    from ..errors import ConfigError, Errors
    from ..scoring import DaskEngine, LocalEngine, score_corpus

    engine_options = dask_options(
        engine, scheduler=scheduler, dashboard=dashboard, scheduler_timeout=scheduler_timeout
    )
    if not chunk_mb > 0:
        raise ConfigError(Errors.E912.format(option="--chunk-mb", expected="> 0", value=chunk_mb))
    with library_warnings():
        if engine == EngineName.dask:
            runner = DaskEngine(workers=workers, **engine_options)
        else:
            runner = LocalEngine(workers=workers or 1)
        try:
            summary = score_corpus(
                pipeline,
                inputs,
                output,
                engine=runner,
                text_field=text_field,
                id_field=id_field,
                per_token=per_token,
                buckets=buckets,
                cutoffs=cutoffs,
                max_perplexity=max_perplexity,
                kept=kept,
                skip_bad=skip_bad,
                chunk_chars=max(1, round(chunk_mb * MB)),
                batch_size=batch_size,
                progress=progress,
            )
        except KeyboardInterrupt:
            msg.fail(f"Interrupted: {output} was not written.", exits=130)
    seconds = max(summary.seconds, 1e-9)
    msg.good(
        f"Scored {summary.documents:,} documents ({summary.tokens:,} tokens) in "
        f"{summary.seconds:.1f} s: {summary.documents / seconds:,.0f} documents/s, "
        f"{summary.tokens / seconds:,.0f} tokens/s"
    )
    msg.good(f"Wrote {output}")
    if summary.cutoffs is not None:
        cuts = summary.cutoffs
        origin = (
            f"percentiles {cuts.percentiles[0]:g} and {cuts.percentiles[1]:g} of a sample of "
            f"{cuts.sample:,} documents"
            if cuts.percentiles
            else "given"
        )
        msg.good(
            f"Buckets cut at perplexity {cuts.head:.6g} and {cuts.tail:.6g} ({origin}); "
            f"cutoffs in {summary.cutoffs_path}"
        )
        names = [name for name in ("head", "middle", "tail", "none") if name in summary.buckets]
        msg.table(
            [(name, f"{summary.buckets[name]:,}") for name in names],
            header=("bucket", "documents"),
            aligns=("l", "r"),
        )
    if summary.kept is not None:
        msg.good(
            f"Wrote {summary.kept:,} documents with perplexity <= {max_perplexity:g} to "
            f"{summary.kept_path}"
        )
