"""word2vec.py: the [word2vec] settings, corpus checks, the per-epoch loss and gensim training,
on gensim's Lee news corpus."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gensim.models.word2vec import LineSentence

from spacy_hs import HSModel
from spacy_hs.training.config import available_cores, settings_names, word2vec_params
from spacy_hs.training.word2vec import LossSampler, sample_loss, train_word2vec

SMALL = dict(vector_size=16, epochs=2, workers=1, seed=3)


# -- settings ---------------------------------------------------------------------------


def test_params_defaults_and_all_cores():
    params = word2vec_params({})
    assert params["hs"] == 1 and params["negative"] == 0
    assert params["workers"] == available_cores() >= 1
    assert word2vec_params({"workers": 1})["workers"] == 1
    assert set(params) == set(settings_names("word2vec"))


def test_params_unknown_key_lists_valid_ones():
    with pytest.raises(ValueError, match="Unknown setting word2vec.size") as err:
        word2vec_params({"size": 100})
    assert "vector_size" in str(err.value) and "min_count" in str(err.value)


@pytest.mark.parametrize("hs", [0, 2])
def test_params_hs_must_be_1(hs):
    with pytest.raises(ValueError, match=r"hs = 1.*Huffman tree") as err:
        word2vec_params({"hs": hs})
    assert "--word2vec.hs 1" in str(err.value)


def test_params_negative_must_be_0():
    with pytest.raises(ValueError, match=r"negative = 5: set it to 0") as err:
        word2vec_params({"negative": 5})
    assert "--word2vec.negative 0" in str(err.value)


@pytest.mark.parametrize(
    "key, value",
    [("epochs", "ten"), ("epochs", 0), ("epochs", True), ("vector_size", 1.5), ("sg", 2)],
)
def test_params_bad_values(key, value):
    with pytest.raises(ValueError, match=f"word2vec.{key} must be"):
        word2vec_params({key: value})


# -- the loss sample ----------------------------------------------------------------------


def test_sampler_keeps_every_position_of_a_small_corpus(lee_path: Path):
    sampler = LossSampler(100_000, window=5)
    sentences = list(sampler(LineSentence(str(lee_path))))
    assert len(sentences) == 300  # the stream passes through unchanged
    assert len(sampler.kept) == 59890
    assert Counter(tokens[i] for tokens, i in sampler.kept) == Counter(
        word for sentence in sentences for word in sentence
    )


def test_sampler_is_uniform_over_positions(lee_path: Path):
    sentences = list(LineSentence(str(lee_path)))
    words = [word for sentence in sentences for word in sentence]
    sampler = LossSampler(3000, window=5, seed=1)
    for _ in sampler(sentences):
        pass
    assert len(sampler.kept) == 3000
    sampled = [tokens[i] for tokens, i in sampler.kept]
    # The share of "the" (~6% of tokens) and of the second half of the corpus match the
    # corpus within 4 standard errors.
    share = words.count("the") / len(words)
    error = math.sqrt(share * (1 - share) / 3000)
    assert abs(sampled.count("the") / 3000 - share) < 4 * error
    second_half = Counter(words[len(words) // 2 :])
    first_half = Counter(words[: len(words) // 2])
    # A word seen only in one half tells which half the position came from.
    only_second = sum(1 for w in sampled if second_half[w] and not first_half[w])
    only_first = sum(1 for w in sampled if first_half[w] and not second_half[w])
    assert abs(only_first - only_second) < 4 * math.sqrt(only_first + only_second)


@pytest.mark.parametrize("sg", [0, 1])
def test_sample_loss_is_the_exact_hs_loss(lee_path: Path, sg: int):
    """The per-epoch loss equals -log P computed independently by HSModel's compiled kernel."""
    result = train_word2vec(lee_path, {**SMALL, "sg": sg}, loss_sample=500)
    sampler = LossSampler(500, window=5, seed=SMALL["seed"])  # as train_word2vec draws it
    for _ in sampler(LineSentence(str(lee_path))):
        pass
    sample = sampler.examples(result.model.wv.key_to_index, sg=sg, cbow_mean=1)
    assert 300 < len(sample) <= 500
    if sg:
        assert np.all(np.diff(sample.context_offsets) == 1)
    model = HSModel.from_gensim(result.model)
    offsets = sample.context_offsets.tolist()
    contexts = [sample.context_ids[a:b].tolist() for a, b in zip(offsets, offsets[1:])]
    # Every context word, averaged (the CBOW hidden vector; one word each for skip-gram).
    expected = -model.log_prob_batch(sample.targets.tolist(), contexts).mean()
    assert sample_loss(result.model, sample) == pytest.approx(expected, rel=1e-5)
    # The last epoch's loss was measured on this same sample, with the final weights.
    assert result.loss_history[-1] == pytest.approx(expected, rel=1e-5)


# -- training -----------------------------------------------------------------------------


def test_train_reports_per_epoch_losses(lee_path: Path):
    reports = []
    result = train_word2vec(
        lee_path, {**SMALL, "sg": 1, "epochs": 4}, loss_sample=1000, on_epoch=reports.append
    )
    assert result.sentences == 300 and result.words == 59890
    assert result.vocab_size == len(result.model.wv) > 1000
    assert [r.epoch for r in reports] == [1, 2, 3, 4] and result.epochs == reports
    losses = result.loss_history
    # Each epoch's own loss (nats per example), not a running total: it falls as training
    # goes on and stays near the entropy of the vocabulary, far below a cumulative sum.
    assert all(0 < loss < math.log(result.vocab_size) + 1 for loss in losses)
    assert losses[-1] < losses[0]
    assert max(losses) - min(losses) < 1.0
    assert all(r.seconds > 0 and r.words_per_second > 0 for r in reports)
    assert result.words_per_second > 0 and result.train_seconds > 0


def test_train_without_loss_sample(lee_path: Path):
    result = train_word2vec(lee_path, SMALL, loss_sample=0)
    assert len(result.epochs) == 2 and all(math.isnan(loss) for loss in result.loss_history)


def test_train_is_reproducible_with_one_worker(lee_path: Path):
    first = train_word2vec(lee_path, SMALL, loss_sample=200)
    second = train_word2vec(lee_path, SMALL, loss_sample=200)
    np.testing.assert_array_equal(first.model.wv.vectors, second.model.wv.vectors)
    assert first.loss_history == second.loss_history
    third = train_word2vec(lee_path, {**SMALL, "seed": 4}, loss_sample=200)
    assert not np.array_equal(first.model.wv.vectors, third.model.wv.vectors)


def test_train_min_count_too_high(lee_path: Path):
    with pytest.raises(ValueError, match="min_count=100000") as err:
        train_word2vec(lee_path, {**SMALL, "min_count": 100_000})
    message = str(err.value)
    assert "59,890 words" in message and "--word2vec.min_count" in message


def test_train_one_word_corpus(tmp_path: Path):
    path = tmp_path / "one.txt"
    path.write_text("hello hello hello\nhello\n")
    with pytest.raises(ValueError, match="Only 1 word type") as err:
        train_word2vec(path, {**SMALL, "min_count": 1})
    assert "4 words and 1 distinct" in str(err.value)


def test_vectors_that_do_not_fit_in_memory_fail_before_gensim_allocates(
    lee_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vocabulary is known after the scan; its weights are checked against the memory
    available before gensim allocates them (not numpy's _ArrayMemoryError afterwards)."""
    import spacy_hs.training.word2vec as word2vec
    from spacy_hs.errors import ConfigError

    monkeypatch.setattr(word2vec, "available_memory", lambda: 64 << 20)
    with pytest.raises(ConfigError, match=r"\[E170\] word2vec.vector_size = 5,000 .* 64.0 MiB"):
        train_word2vec(lee_path, {**SMALL, "vector_size": 5000})
    monkeypatch.undo()
    assert len(train_word2vec(lee_path, {**SMALL, "epochs": 1}).model.wv) > 1000
