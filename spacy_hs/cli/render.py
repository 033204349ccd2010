"""`spacy-hs render`: a self-contained HTML page showing how predictable each word of a text is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ..errors import ConfigError, Errors
from ._util import Arg, Opt, PipelineCacheOpt, app


@app.command("render")
def render_cli(
    pipeline: Annotated[
        Path,
        Arg(
            help="Pipeline directory (`spacy-hs assemble`) or HSModel directory (`spacy-hs train`)."
        ),
    ],
    output: Annotated[
        Path, Opt("--output", "-o", help="The HTML page to write (atomically), e.g. view.html.")
    ],
    input_path: Annotated[
        str | None,
        Arg(
            metavar="INPUT",
            show_default=False,
            help="Text file with one document per line, or - for stdin. Or give --text.",
        ),
    ] = None,
    text: Annotated[
        str | None, Opt("--text", help="The text to render (one document), instead of INPUT.")
    ] = None,
    style: Annotated[
        str,
        Opt("--style", help="Colour by 'rank' or 'surprisal' first; the page can switch."),
    ] = "rank",
    top_k: Annotated[
        int, Opt("--top-k", "-k", at_least=1, at_most=100, help="Predictions shown on hover.")
    ] = 5,
    max_docs: Annotated[
        int | None, Opt("--max-docs", at_least=1, help="Render only the first N documents.")
    ] = None,
    pretokenized: Annotated[
        bool,
        Opt(
            "--pretokenized",
            help="INPUT is a token file (one sentence per line, tokens separated by spaces, "
            "as `spacy-hs preprocess` writes), scored line by line as `spacy-hs evaluate` does.",
        ),
    ] = False,
    sentences_per_doc: Annotated[
        int,
        Opt(
            "--sentences-per-doc",
            at_least=1,
            help="With --pretokenized: lines grouped per document.",
        ),
    ] = 1,
    cache: PipelineCacheOpt = None,
) -> None:
    """Write the surprisal view of a text: an HTML page of its words, each coloured.

    The colour is the exact rank (or surprisal) of the actual word in the pipeline's next-word
    distribution; hovering a word shows its top-k predictions and the distribution's entropy.
    The page needs no server and makes no request."""
    from ..pipeline.package import load_predictor_pipeline  # spaCy loads lazily: --help stays fast
    from ..view import render
    from ..view.documents import (
        check_page_output,
        read_lines,
        texts_to_docs,
        token_lines_to_docs,
        write_page,
    )

    if input_path is not None and text is not None:
        raise ConfigError(Errors.E730)
    if input_path is None and text is None:
        raise ConfigError(Errors.E731)
    if sentences_per_doc != 1 and not pretokenized:
        raise ConfigError(Errors.E739)
    inputs = [pipeline] + ([input_path] if input_path is not None else [])
    check_page_output(output, inputs)  # before any work: never over a model's files
    if text is not None:
        lines = [text]
    else:
        limit = None if max_docs is None else max_docs * (sentences_per_doc if pretokenized else 1)
        lines = read_lines(input_path, max_lines=limit)
    nlp, _ = load_predictor_pipeline(pipeline, cache=cache)
    if pretokenized:
        docs = token_lines_to_docs(nlp, lines, sentences_per_doc=sentences_per_doc)
    else:
        docs = texts_to_docs(nlp, lines)
    docs = docs[:max_docs] if max_docs is not None else docs
    html = render(docs, style=style, page=True, jupyter=False, options={"top_k": top_k})
    assert html is not None
    write_page(output, html, inputs=inputs)
    n_tokens = sum(len(doc) for doc in docs)
    size = len(html.encode("utf8"))
    msg.good(f"Wrote {output}: {len(docs)} document(s), {n_tokens:,} tokens, {size:,} bytes")
