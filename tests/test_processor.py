"""spacy_hs.corpus.processor: tokens, normalisation and sentences (through `preprocess`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
import treebank
from conftest import lines_of

from spacy_hs.corpus.normalize import TokenNormalizer
from spacy_hs.corpus.preprocess import preprocess


def reference(lines: list[str], settings: dict) -> list[str]:
    """The token-file lines the slow, obvious way: spaCy's sentencizer + TokenNormalizer.words."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    normalizer = TokenNormalizer(settings)
    out = []
    for doc in nlp.pipe(line for line in lines if line.strip()):
        for sent in doc.sents:
            if words := normalizer.words(sent):
                out.append(" ".join(words))
    return out


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"lowercase": False, "punct": "keep", "numbers": "keep", "urls": "keep"},
        {"punct": "placeholder", "numbers": "drop", "urls": "drop", "stopwords": "drop"},
    ],
)
def test_output_equals_sentencizer_and_normalizer(
    tmp_path: Path, lee_txt: Path, settings: dict
) -> None:
    # The vectorised sentence rule and the orth-id cache must give exactly what spaCy's
    # sentencizer and the component's TokenNormalizer give token by token.
    out = tmp_path / "out.txt"
    preprocess(lee_txt, out, normalizer=settings, batch_size=7, progress=False)
    expected = reference(lee_txt.read_text(encoding="utf-8").splitlines(), settings)
    assert lines_of(out) == expected
    assert len(expected) > 100


def test_each_normalizer_option_changes_the_output(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text(
        "The Reserve Bank raised rates by 25 points, see https://www.rba.gov.au today.\n"
    )

    def words(**settings) -> list[str]:
        out = tmp_path / "out.txt"
        preprocess(source, out, normalizer=settings, progress=False)
        return out.read_text().split()

    default = words()
    assert default == "the reserve bank raised rates by <num> points see <url> today".split()
    assert "Reserve" in words(lowercase=False)
    assert "," in words(punct="keep") and "." in words(punct="keep")
    assert words(punct="placeholder").count("<punct>") == 2
    assert "25" in words(numbers="keep") and "<num>" not in words(numbers="drop")
    assert "https://www.rba.gov.au" in words(urls="keep")
    assert "<url>" not in words(urls="drop")
    assert "the" not in words(stopwords="drop") and "by" not in words(stopwords="drop")


def test_pretokenized_penn_treebank_keeps_tokens_and_lines(tmp_path: Path) -> None:
    lines = treebank.penn["valid"].splitlines()[:300]
    source = tmp_path / "ptb.valid.txt"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ptb.tok.txt"
    keep_all = {"lowercase": False, "punct": "keep", "numbers": "keep", "urls": "keep"}
    result = preprocess(source, out, pretokenized=True, normalizer=keep_all, progress=False)
    # Tokens are the whitespace-separated input (no spaCy tokenization, e.g. "<unk>" and "'s"
    # stay whole), one sentence per input line, no sentence splitting.
    expected = [" ".join(line.split()) for line in lines if line.split()]
    assert lines_of(out) == expected
    assert result.meta["pretokenized"] is True
    assert result.meta["stats"]["sentences"] == len(expected)
    # Normalisation still applies: "N" (PTB's number) is lowercased, "$" dropped as punctuation.
    preprocess(source, out, pretokenized=True, normalizer={"punct": "drop"}, progress=False)
    normalised = out.read_text().split()
    assert "n" in normalised and "N" not in normalised and "<unk>" in normalised


def test_min_sentence_length(tmp_path: Path, lee_txt: Path) -> None:
    out = tmp_path / "out.txt"
    preprocess(lee_txt, out, progress=False)
    all_sentences = len(lines_of(out))
    result = preprocess(lee_txt, out, min_sentence_length=12, progress=False)
    lengths = [len(line.split()) for line in lines_of(out)]
    assert min(lengths) >= 12
    assert result.meta["stats"]["sentences"] == len(lengths) < all_sentences
