"""spacy_hs.corpus.sources and `spacy-hs corpus`: the default corpus from gensim's test data."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

import spacy_hs.corpus.sources as corpus_module
from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.corpus.sources import (
    LEE_CORPUS,
    article_paragraphs,
    extract_default_corpus,
    gensim_test_data,
    wiki_articles,
)
from spacy_hs.errors import SpacyHSError

MARKUP = ("'''", "''", "[[", "]]", "{{", "}}", "==", "<ref", "#REDIRECT", "|-")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> list:
    return extract_default_corpus(tmp_path_factory.mktemp("corpus"), max_articles=4)


def test_extracts_wiki_text_without_markup(small_corpus: list) -> None:
    wiki, lee = small_corpus
    assert wiki.path.name == "wiki.txt" and lee.path.name == "lee.txt"
    lines = wiki.path.read_text(encoding="utf-8").splitlines()
    assert wiki.documents == len(lines) > 50
    assert wiki.words == sum(len(line.split()) for line in lines) > 5000
    assert all(len(line.split()) >= corpus_module.PARAGRAPH_MIN_WORDS for line in lines)
    text = "\n".join(lines)
    for markup in MARKUP:
        assert markup not in text, markup
    # The dump's first articles, as running text.
    assert "Anarchism is a political philosophy" in text
    assert "Autism is a neurodevelopmental disorder" in text


def test_copies_the_lee_corpus(small_corpus: list) -> None:
    lee = small_corpus[1]
    source = (gensim_test_data() / LEE_CORPUS).read_text(encoding="utf-8").splitlines()
    assert lee.path.read_text(encoding="utf-8").splitlines() == [s.strip() for s in source]
    assert (lee.documents, lee.words) == (300, sum(len(s.split()) for s in source))


def test_max_articles_and_min_words_limit_the_articles() -> None:
    dump = gensim_test_data() / corpus_module.WIKI_DUMP
    assert sum(1 for _ in wiki_articles(dump, max_articles=2)) == 2
    long_articles = list(wiki_articles(dump, max_articles=3, min_words=3000))
    assert len(long_articles) == 3
    assert all(sum(len(p.split()) for p in a) >= 3000 for a in long_articles)


def test_article_paragraphs_drop_headings_lists_and_reference_sections() -> None:
    markup = """'''Albedo''' is the measure of the [[diffuse reflection]] of sunlight.{{cite}}

== Terrestrial albedo ==
* Fresh snow reflects up to ninety percent of the light.
Short caption line

== References ==
* Smith, John. ''A book about albedo and many other things''. 2001.
=== Further notes ===
Everything in this section is part of the references.

== Astronomical albedo ==
The albedos of planets and moons are used to infer their surface composition."""
    assert article_paragraphs(markup) == [
        "Albedo is the measure of the diffuse reflection of sunlight.",
        "Fresh snow reflects up to ninety percent of the light.",
        "The albedos of planets and moons are used to infer their surface composition.",
    ]


def test_missing_test_data_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    # A gensim install without its test data (as some system packages ship it).
    monkeypatch.setattr(corpus_module, "gensim_test_data", lambda: tmp_path / "no_test_data")
    with pytest.raises(SpacyHSError, match=r"test data is not installed.*pip install"):
        extract_default_corpus(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = run_cli("corpus", str(tmp_path / "out"))
    assert result.exit_code == 1 and "not installed" in result.output
    assert "Traceback" not in result.output


def test_bad_output_and_no_articles_are_errors(tmp_path: Path, monkeypatch) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(SpacyHSError, match="is a file"):
        extract_default_corpus(a_file)
    # gensim's small table-markup dump (5 articles) is scanned in full quickly.
    monkeypatch.setattr(corpus_module, "WIKI_DUMP", "enwiki-table-markup.xml.bz2")
    with pytest.raises(SpacyHSError, match="No article"):
        extract_default_corpus(tmp_path / "out", max_articles=2, min_words=10**7, lee=False)
    assert not (tmp_path / "out").exists()  # no empty wiki.txt, nor an empty directory


def test_cli_corpus_then_preprocess(tmp_path: Path) -> None:
    out_dir = tmp_path / "corpus"
    result = run_cli("corpus", str(out_dir), "--max-articles", "2", "--no-lee", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "wiki.txt" in result.output and "words" in result.output
    assert "Writing wiki.txt" not in result.output  # --no-progress: no bar
    shown = run_cli("corpus", str(out_dir), "--max-articles", "2", "--no-lee", "--progress")
    assert shown.exit_code == 0 and "Writing wiki.txt" in shown.raw
    assert [p.name for p in out_dir.iterdir()] == ["wiki.txt"]
    # The next stage reads the directory as it is.
    stats = preprocess(out_dir, tmp_path / "corpus.tok.txt", progress=False).meta["stats"]
    assert stats["documents"] == len((out_dir / "wiki.txt").read_text().splitlines())
    assert stats["tokens"] > 1000


def _zip(path: Path, member: str, text: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, text)
    return path


def test_text8_archive_is_cut_into_lines(tmp_path: Path, lee_path: Path) -> None:
    from spacy_hs.corpus.sources import ASSET_SOURCES, TEXT8_WORDS_PER_LINE, extract_asset_corpus

    words = lee_path.read_text(encoding="utf8").lower().split()
    archive, member = ASSET_SOURCES["text8"]
    _zip(tmp_path / archive, member, " " + " ".join(words))  # text8 starts with a space
    (written,) = extract_asset_corpus("text8", tmp_path, tmp_path / "out")
    lines = written.path.read_text(encoding="utf8").splitlines()
    assert [w for line in lines for w in line.split()] == words
    assert max(len(line.split()) for line in lines) == TEXT8_WORDS_PER_LINE


def test_wikitext_archive_drops_headings(tmp_path: Path) -> None:
    from spacy_hs.corpus.sources import ASSET_SOURCES, extract_asset_corpus

    archive, member = ASSET_SOURCES["wikitext103"]
    text = " = Valkyria = \n\n Senjō no Valkyria 3 is a game .\n = = Plot = = \n It sold well .\n"
    _zip(tmp_path / archive, member, text)
    (written,) = extract_asset_corpus("wikitext103", tmp_path, tmp_path / "out")
    lines = written.path.read_text(encoding="utf8").splitlines()
    assert lines == ["Senjō no Valkyria 3 is a game .", "It sold well ."]


def test_asset_source_missing_or_corrupt(tmp_path: Path) -> None:
    from spacy_hs.corpus.sources import extract_asset_corpus

    with pytest.raises(SpacyHSError, match="spacy project assets"):
        extract_asset_corpus("text8", tmp_path, tmp_path / "out")
    (tmp_path / "text8.zip").write_bytes(b"not a zip")
    with pytest.raises(SpacyHSError, match="text8.zip"):
        extract_asset_corpus("text8", tmp_path, tmp_path / "out")
    with pytest.raises(SpacyHSError, match="Unknown corpus source"):
        extract_asset_corpus("ptb", tmp_path, tmp_path / "out")
