"""spacy_hs.corpus.normalize: number words are words; the earlier like_num rule stays available,
and token files and models that recorded no rule keep it."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from conftest import run_cli

from spacy_hs import HSModel
from spacy_hs.corpus import tokenfile
from spacy_hs.corpus.normalize import NormalizerSettings, TokenNormalizer
from spacy_hs.errors import ConfigError

TEXT = "The first two of one hundred men came in 1984 at 3.5 and paid 1,000 dollars."
NUMBER_WORDS = ["first", "two", "one", "hundred"]
# What every token file and model recorded before numbers_rule existed.
RECORDED_BEFORE = {
    "lowercase": True,
    "punct": "drop",
    "numbers": "placeholder",
    "urls": "placeholder",
    "stopwords": "keep",
}


def words(text: str, settings: NormalizerSettings | dict | None = None) -> list[str]:
    return TokenNormalizer(settings).words(spacy.blank("en")(text))


def test_number_words_are_words_and_digits_are_numbers() -> None:
    assert words(TEXT) == [
        "the", "first", "two", "of", "one", "hundred", "men", "came", "in", "<num>", "at",
        "<num>", "and", "paid", "<num>", "dollars",
    ]  # fmt: skip
    # Digits with letters are words too; digits with other signs are numbers.
    assert words("mp3 2nd 10:30 1980s") == ["mp3", "2nd", "<num>", "1980s"]


def test_the_like_num_rule_stays_available() -> None:
    found = words(TEXT, NormalizerSettings(numbers_rule="like_num"))
    assert all(word not in found for word in NUMBER_WORDS)
    assert found[:6] == ["the", "<num>", "<num>", "of", "<num>", "<num>"]
    with pytest.raises(ConfigError, match=r"numbers_rule='words' is not one of digits, like_num"):
        NormalizerSettings(numbers_rule="words")  # type: ignore[arg-type]


def test_settings_recorded_without_a_rule_keep_like_num() -> None:
    """A model or token file made with the old behaviour normalises new text as its corpus
    was; a partial dict of settings given by hand gets the defaults."""
    assert NormalizerSettings.from_dict(RECORDED_BEFORE).numbers_rule == "like_num"
    assert NormalizerSettings.from_dict({"punct": "keep"}).numbers_rule == "digits"
    assert NormalizerSettings.from_dict(None).numbers_rule == "digits"
    assert NormalizerSettings().to_dict()["numbers_rule"] == "digits"
    assert "first" not in words(TEXT, RECORDED_BEFORE)


def test_a_model_that_recorded_no_rule_keeps_like_num_in_the_pipeline(
    normalized_model: HSModel, tmp_path: Path
) -> None:
    """The component of a model trained with the defaults scores "first" as itself; that of a
    model whose settings predate the rule scores it as <num>, as its corpus had it."""
    assert normalized_model.settings["normalizer"]["numbers_rule"] == "digits"
    old = HSModel.from_bytes(normalized_model.to_bytes())
    old.settings["normalizer"] = dict(RECORDED_BEFORE)
    old.to_disk(tmp_path / "old")
    context = ["he", "was", "the"]
    old = HSModel.from_disk(tmp_path / "old")
    for model, expected in ((normalized_model, "first"), (old, "<num>")):
        nlp = spacy.blank("en")
        nlp.add_pipe("hs_predictor").set_model(model)
        doc = nlp("He was the first")
        assert doc[3]._.hs_logprob == pytest.approx(
            model.log_prob_next(expected, context, head="cbow"), rel=1e-6
        )


def test_preprocess_numbers_rule_option(lee_path: Path, tmp_path: Path) -> None:
    default, like_num = tmp_path / "digits.txt", tmp_path / "like_num.txt"
    assert run_cli("preprocess", lee_path, default, "--no-progress").exit_code == 0
    options = ["--numbers-rule", "like_num", "--no-progress"]
    result = run_cli("preprocess", lee_path, like_num, *options)
    assert result.exit_code == 0, result.output
    assert tokenfile.read_meta(default)["normalizer"]["numbers_rule"] == "digits"
    assert tokenfile.read_meta(like_num)["normalizer"]["numbers_rule"] == "like_num"
    digits_words = default.read_text(encoding="utf8").split()
    like_num_words = like_num.read_text(encoding="utf8").split()
    for word in ("two", "one", "hundred"):
        assert word in digits_words and word not in like_num_words
    assert digits_words.count("<num>") < like_num_words.count("<num>")
