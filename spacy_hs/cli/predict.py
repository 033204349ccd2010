"""`spacy-hs predict`: the most probable next words after a text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import Arg, Opt, PipelineCacheOpt, app


@app.command("predict")
def predict_cli(
    model_or_pipeline: Annotated[
        Path, Arg(help="HSModel directory (`spacy-hs train`) or pipeline (`spacy-hs assemble`).")
    ],
    text: Annotated[str, Arg(help="The text to continue; its last sentence is the context.")],
    top_k: Annotated[
        int | None,
        Opt(
            "--top-k",
            "-k",
            at_least=1,
            help="How many words to list. Default: the pipeline's (10).",
        ),
    ] = None,
    head: Annotated[
        str | None,
        Opt(
            "--head",
            help="auto, cbow or the model's trained head (e.g. directional, ngram). Default: "
            "the pipeline's (auto: the trained head if there is one, else cbow).",
        ),
    ] = None,
    cache: PipelineCacheOpt = None,
) -> None:
    """Print the top-k next words after TEXT with their exact probabilities."""
    # spaCy loads lazily: --help stays fast
    from ..pipeline.package import load_predictor_pipeline, predict_next

    nlp, component = load_predictor_pipeline(model_or_pipeline, top_k=top_k, head=head, cache=cache)
    prediction = predict_next(nlp, component, text)
    if not prediction.next_words:
        msg.warn(
            "No word of the text's last sentence is in the model's vocabulary; nothing to "
            "predict from. Check the text's language and spelling."
        )
        return
    if prediction.context:
        msg.info(f"Context ({len(prediction.context)} known words): {' '.join(prediction.context)}")
    else:
        msg.warn(
            "No word of the text's last sentence is in the model's vocabulary: these are the "
            "head's predictions for the first word of a sentence. Check the text's language and "
            "spelling."
        )
    rows = [
        (rank, word, f"{prob:.4f}", f"{math.log(prob):.3f}")
        for rank, (word, prob) in enumerate(prediction.next_words, start=1)
    ]
    msg.table(
        rows,
        header=("rank", "word", "probability", "log-prob"),
        aligns=("r", "l", "r", "r"),
        divider=True,
    )
