"""`spacy-hs corpus`: write the bundled default corpus (no network) as raw text files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import Arg, Opt, app


@app.command("corpus")
def corpus_cli(
    output_dir: Annotated[
        Path,
        Arg(
            metavar="OUTPUT_DIR",
            help="Directory for wiki.txt (one paragraph per line) and lee.txt (one story per "
            "line); created if missing, files replaced atomically.",
            show_default=False,
        ),
    ],
    max_articles: Annotated[
        int | None,
        Opt(
            "--max-articles",
            min=1,
            help="Keep at most this many Wikipedia articles (default: all, about 100).",
            show_default=False,
        ),
    ] = None,
    min_words: Annotated[
        int,
        Opt("--min-words", min=1, help="Drop Wikipedia articles with fewer words (stubs)."),
    ] = 50,
    lee: Annotated[
        bool, Opt("--lee/--no-lee", help="Also write the Lee news corpus (lee.txt).")
    ] = True,
) -> None:
    """Write the default corpus from gensim's bundled test data, with no network.

    wiki.txt: a sample of English Wikipedia, markup removed with gensim's wiki tools.

    lee.txt: the Lee news corpus (300 Australian news stories).

    Next: spacy-hs preprocess OUTPUT_DIR corpus.tok.txt
    """
    from ..corpus import CorpusError, extract_default_corpus

    try:
        files = extract_default_corpus(
            output_dir, max_articles=max_articles, min_words=min_words, lee=lee
        )
    except CorpusError as err:
        msg.fail(str(err), exits=1)
    msg.table(
        [(f.path, f"{f.documents:,}", f"{f.words:,}") for f in files],
        header=("file", "lines", "words"),
        aligns=("l", "r", "r"),
    )
    total = sum(f.words for f in files)
    msg.good(f"Wrote the default corpus to {output_dir}: {total:,} words")
