"""`spacy-hs assemble`: a spaCy pipeline directory around a trained HSModel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ..pipeline import DEFAULT_HEAD, DEFAULT_TOP_K
from ._util import CACHE_HELP, Arg, Opt, app, cache_choice


@app.command("assemble")
def assemble_cli(
    model_dir: Annotated[Path, Arg(help="HSModel directory written by `spacy-hs train`.")],
    pipeline_dir: Annotated[
        Path, Arg(help="Output pipeline directory (created; a previous one is replaced).")
    ],
    lang: Annotated[
        str | None,
        Opt("--lang", "-l", help="Pipeline language code. Default: the model's, else en."),
    ] = None,
    top_k: Annotated[
        int, Opt("--top-k", "-k", at_least=1, help="How many words Doc/Span/Token._.hs_next list.")
    ] = DEFAULT_TOP_K,
    head: Annotated[
        str,
        Opt(
            "--head",
            help="Prediction head: auto (the trained head if there is one, else cbow), cbow or "
            "the model's trained head (e.g. directional, ngram).",
        ),
    ] = DEFAULT_HEAD,
    context_size: Annotated[
        int | None,
        Opt(
            "--context-size", at_least=1, help="Context words per prediction. Default: the head's."
        ),
    ] = None,
    cache: Annotated[str, Opt("--cache", callback=cache_choice, help=CACHE_HELP)] = "auto",
) -> None:
    """Build a spaCy pipeline: blank LANG + sentencizer + hs_predictor, with vectors.

    `spacy.load(PIPELINE_DIR)` loads it without the model directory.
    """
    from ..pipeline.package import assemble  # spaCy loads lazily: --help stays fast

    nlp = assemble(
        model_dir,
        pipeline_dir,
        lang,
        top_k=top_k,
        head=head,
        context_size=context_size,
        cache=cache,
    )
    vectors = nlp.vocab.vectors
    msg.good(f"Wrote pipeline to {pipeline_dir}")
    msg.text(
        f"lang {nlp.lang}, components {', '.join(nlp.pipe_names)}, vectors "
        f"{vectors.shape[0]} x {vectors.shape[1]}. Load it with spacy.load({str(pipeline_dir)!r})."
    )
