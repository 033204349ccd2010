"""The bundled default corpus: raw English text that needs no network.

gensim's PyPI package ships test data with two real corpora:

- a shortened English Wikipedia dump (``enwiki-latest-pages-articles1.xml-...-shortened.bz2``,
  about 100 articles after dropping redirects and stubs);
- the Lee news corpus (``lee_background.cor``, 300 Australian news stories, one per line).

`extract_default_corpus` turns them into raw text files, one paragraph or story per line, for
`spacy_hs.corpus.preprocess`. The wiki markup is removed with gensim's own tools (``extract_pages``,
``filter_wiki``), but not gensim's tokenizer: spaCy tokenizes in the next stage.
"""

from __future__ import annotations

import bz2
import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gensim
from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages, filter_wiki

from ..errors import ConfigError, Errors, InputError, OutputError
from ..progress import Progress
from ..util import (
    atomic_outputs,
    check_output_location,
    missing_dirs,
    open_new,
    remove_empty,
    same_content,
)

WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"
WIKI_FILE, LEE_FILE = "wiki.txt", "lee.txt"
# gensim's WikiCorpus drops articles under 50 tokens as stubs; so do we (counting words).
ARTICLE_MIN_WORDS = 50
# Shorter lines are captions, table cells and list debris rather than prose.
PARAGRAPH_MIN_WORDS = 5
# Sections that hold lists and references, not running text.
SKIPPED_SECTIONS = frozenset(
    ["see also", "references", "notes", "external links", "further reading", "bibliography",
     "sources", "footnotes", "citations"]
)  # fmt: skip
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_LIST_MARKERS = re.compile(r"^[*#:;]+\s*")
_BOLD_ITALIC = re.compile(r"'{2,}")
_SPACES = re.compile(r"\s+")


# Optional larger corpora: the archive `spacy project assets` downloads, and how to read it.
ASSET_SOURCES = {
    "text8": ("text8.zip", "text8"),
    "wikitext103": ("wikitext-103-raw-v1.zip", "wikitext-103-raw/wiki.train.raw"),
}
SOURCES = ("default", *ASSET_SOURCES)
# text8 is one line of 17M words without sentence marks; like gensim's Text8Corpus, cut it.
TEXT8_WORDS_PER_LINE = 1000


@dataclass
class CorpusFile:
    """One extracted file: its path, its documents (lines) and words (whitespace-separated)."""

    path: Path
    documents: int
    words: int


def gensim_test_data() -> Path:
    """gensim's bundled test data directory (inside the installed gensim package)."""
    return Path(gensim.__file__).parent / "test" / "test_data"


def extract_default_corpus(
    output_dir: str | os.PathLike,
    *,
    max_articles: int | None = None,
    min_words: int = ARTICLE_MIN_WORDS,
    lee: bool = True,
    progress: bool = False,
) -> list[CorpusFile]:
    """Write the default corpus as raw text: ``wiki.txt`` and (with ``lee``) ``lee.txt``.

    max_articles: stop after this many kept Wikipedia articles (None: all, about 100), to make
        a smaller corpus quickly (tests use it).
    min_words: drop articles with fewer words after markup removal (redirects and stubs).
    progress: show the lines written on stderr (``spacy_hs.progress``).

    Files are written atomically; each line is one paragraph (wiki) or one story (Lee).
    Raises `InputError` if gensim's test data is not installed.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(Errors.E122.format(path=output_dir))
    dump, lee_source = gensim_test_data() / WIKI_DUMP, gensim_test_data() / LEE_CORPUS
    for source in (dump, lee_source) if lee else (dump,):
        if not source.exists():
            raise InputError(Errors.E120.format(path=source))
    created = missing_dirs(output_dir)  # removed again if nothing is written
    articles = wiki_articles(dump, max_articles=max_articles, min_words=min_words)
    paragraphs = (p for a in articles for p in a)
    written = [_write_lines(output_dir / WIKI_FILE, paragraphs, progress=progress)]
    if written[0].documents == 0:
        remove_empty(created)
        raise InputError(
            Errors.E121.format(path=dump, max_articles=max_articles, min_words=min_words)
        )
    if lee:
        with open(lee_source, encoding="utf-8") as f:
            stories = (line.strip() for line in f)
            written.append(_write_lines(output_dir / LEE_FILE, stories, progress=progress))
    return written


def wiki_articles(
    dump: str | os.PathLike,
    *,
    max_articles: int | None = None,
    min_words: int = ARTICLE_MIN_WORDS,
) -> Iterator[list[str]]:
    """The paragraphs of each main-namespace article of a MediaWiki ``.xml.bz2`` dump, streamed.

    Redirects, other namespaces and articles under ``min_words`` words are skipped.
    """
    kept = 0
    with bz2.open(dump) as f:
        for title, text, _page_id in extract_pages(f, filter_namespaces=("0",)):
            if max_articles is not None and kept >= max_articles:
                return
            if not text or text.lstrip()[:9].upper() == "#REDIRECT":
                continue
            if any(title.startswith(namespace + ":") for namespace in IGNORED_NAMESPACES):
                continue
            paragraphs = article_paragraphs(text)
            if sum(len(p.split()) for p in paragraphs) >= min_words:
                kept += 1
                yield paragraphs


def article_paragraphs(markup: str) -> list[str]:
    """The running text of one article's wiki markup, one paragraph per item.

    gensim's ``filter_wiki`` removes templates, links, tables and tags; what it leaves of
    headings, list markers and bold/italic quotes is removed here, as are reference sections.
    """
    paragraphs: list[str] = []
    skipping = False
    for line in filter_wiki(markup).split("\n"):
        line = line.strip()
        heading = _HEADING.match(line)
        if heading:
            # A level-2 heading ends a skipped section; its subsections stay skipped.
            if len(heading.group(1)) <= 2 or not skipping:
                skipping = heading.group(2).strip().lower() in SKIPPED_SECTIONS
            continue
        if skipping:
            continue
        line = _BOLD_ITALIC.sub("", _LIST_MARKERS.sub("", line))
        line = _SPACES.sub(" ", line).strip()
        if len(line.split()) >= PARAGRAPH_MIN_WORDS:
            paragraphs.append(line)
    return paragraphs


def _write_lines(path: Path, lines: Iterator[str], *, progress: bool = False) -> CorpusFile:
    """Write non-empty lines atomically (temp file, then rename), counting them and their words.

    Nothing is written if there is no line. The name is ours, the directory the user's: an
    existing file is replaced only by the same text (a plain text file carries no mark of who
    wrote it), and never inside a model or pipeline directory."""
    check_output_location(path)
    documents = words = 0
    bar = Progress(f"Writing {path.name}", unit="lines", enabled=progress)
    with bar, atomic_outputs([path], not_ours=same_content) as (tmp,):
        with open_new(tmp, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                if line:
                    f.write(line + "\n")
                    documents += 1
                    words += len(line.split())
                    bar.update()
        if not documents:  # never leave an empty corpus file behind
            tmp.unlink()
    return CorpusFile(path=path, documents=documents, words=words)


def extract_asset_corpus(
    source: str,
    assets_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    progress: bool = False,
) -> list[CorpusFile]:
    """Write a downloaded corpus (``text8`` or ``wikitext103``) as raw text to
    ``OUTPUT_DIR/<source>.txt``, streamed from its zip archive in ``assets_dir`` (with a
    progress bar of the lines written, if ``progress``)."""
    if source not in ASSET_SOURCES:
        raise ConfigError(Errors.E124.format(source=source, choices=", ".join(SOURCES)))
    archive_name, member = ASSET_SOURCES[source]
    archive = Path(assets_dir) / archive_name
    if not archive.exists():
        raise InputError(Errors.E123.format(source=source, path=archive))
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(Errors.E122.format(path=output_dir))
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
            lines = _text8_lines(text) if source == "text8" else _wikitext_lines(text)
            return [_write_lines(output_dir / f"{source}.txt", lines, progress=progress)]
    except (zipfile.BadZipFile, KeyError, EOFError, OSError) as err:
        raise InputError(Errors.E125.format(path=archive, reason=err)) from None


def _text8_lines(text: io.TextIOBase) -> Iterator[str]:
    carry = ""
    while chunk := text.read(1 << 20):
        words = (carry + chunk).split(" ")
        carry = words.pop()  # possibly a word cut by the chunk boundary
        words = [w for w in words if w]
        for start in range(0, len(words), TEXT8_WORDS_PER_LINE):
            yield " ".join(words[start : start + TEXT8_WORDS_PER_LINE])
    if carry.strip():
        yield carry.strip()


def _wikitext_lines(text: io.TextIOBase) -> Iterator[str]:
    for line in text:
        line = line.strip()
        if line and not line.startswith("="):  # " = Heading = " lines are titles
            yield line
