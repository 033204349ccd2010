"""`spacy-hs corpus`: write the bundled default corpus (no network) as raw text files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ..errors import ConfigError, Errors
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
    source: Annotated[
        str,
        Opt(
            "--source",
            help="default: gensim's bundled Wikipedia sample + Lee corpus (offline); text8 or "
            "wikitext103: an archive in --assets fetched by `spacy project assets`.",
        ),
    ] = "default",
    assets: Annotated[
        Path, Opt("--assets", help="Where `spacy project assets` put text8/wikitext103 archives.")
    ] = Path("assets"),
    max_articles: Annotated[
        int,
        Opt(
            "--max-articles",
            at_least=0,
            help="Keep at most this many Wikipedia articles (0: all, about 100).",
        ),
    ] = 0,
    min_words: Annotated[
        int,
        Opt("--min-words", at_least=1, help="Drop Wikipedia articles with fewer words (stubs)."),
    ] = 50,
    lee: Annotated[
        bool, Opt("--lee/--no-lee", help="Also write the Lee news corpus (lee.txt).")
    ] = True,
    progress: Annotated[
        bool, Opt("--progress/--no-progress", help="Show a progress bar of the lines written.")
    ] = True,
) -> None:
    """Write a raw-text corpus; by default from gensim's bundled test data, with no network.

    default: wiki.txt (a sample of English Wikipedia, markup removed with gensim's wiki tools)
    and lee.txt (the Lee news corpus, 300 Australian news stories).

    Next: spacy-hs preprocess OUTPUT_DIR corpus.tok.txt
    """
    from ..corpus.sources import SOURCES, extract_asset_corpus, extract_default_corpus

    if source == "default":
        files = extract_default_corpus(
            output_dir,
            max_articles=max_articles or None,
            min_words=min_words,
            lee=lee,
            progress=progress,
        )
    elif source in SOURCES:
        files = extract_asset_corpus(source, assets, output_dir, progress=progress)
    else:
        raise ConfigError(Errors.E124.format(source=source, choices=", ".join(SOURCES)))
    msg.table(
        [(f.path, f"{f.documents:,}", f"{f.words:,}") for f in files],
        header=("file", "lines", "words"),
        aligns=("l", "r", "r"),
    )
    total = sum(f.words for f in files)
    msg.good(f"Wrote the default corpus to {output_dir}: {total:,} words")
