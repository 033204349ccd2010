"""The document cache's math (``spacy_hs.cache``): counts, the mixture, its exact top-k, the
settings; each against a brute force in plain Python or numpy."""

from __future__ import annotations

import numpy as np
import pytest

from spacy_hs.cache import (
    CacheSettings,
    cache_counts,
    mix_log_probs,
    mix_top_k,
    window_distribution,
)
from spacy_hs.errors import ConfigError

RNG_SEED = 3


def brute_counts(ids, size, documents=None):
    """For each t: how often ids[t] occurs among the last ``size`` known ids before t in its
    document, and how many known ids that window holds."""
    documents = [0] * len(ids) if documents is None else list(documents)
    counts, held = [], []
    for t, word in enumerate(ids):
        before = [w for s, w in enumerate(ids[:t]) if w >= 0 and documents[s] == documents[t]]
        window = before[-size:] if size else []
        held.append(len(window))
        counts.append(window.count(word) if word >= 0 else 0)
    return counts, held


def test_cache_counts_cross_sentences_and_skip_unknown_tokens() -> None:
    ids = np.array([4, -1, 4, 7, 4, 7, -1, 4])
    counts, held = cache_counts(ids, 3)
    assert held.tolist() == [0, 1, 1, 2, 3, 3, 3, 3]
    assert counts.tolist() == [0, 0, 1, 0, 2, 1, 0, 1]


@pytest.mark.parametrize("size", [1, 3, 10, 1000])
def test_cache_counts_equal_brute_force_across_documents(size: int) -> None:
    rng = np.random.default_rng(RNG_SEED)
    ids = rng.integers(-1, 6, 300)
    documents = np.sort(rng.integers(0, 7, 300))
    counts, held = cache_counts(ids, size, documents=documents)
    expected_counts, expected_held = brute_counts(ids.tolist(), size, documents.tolist())
    assert counts.tolist() == expected_counts
    assert held.tolist() == expected_held
    alone, alone_held = cache_counts(ids, size)  # one document
    assert (alone.tolist(), alone_held.tolist()) == brute_counts(ids.tolist(), size)


def test_other_targets_are_counted_in_the_same_window() -> None:
    ids = np.array([2, 3, 2, -1, 5])
    targets = np.array([2, 2, 3, 2, -1])  # e.g. an unknown token scored as word 2
    counts, held = cache_counts(ids, 10, targets)
    assert counts.tolist() == [0, 1, 1, 2, 0]
    assert held.tolist() == [0, 1, 2, 3, 3]


def random_distribution(rng: np.random.Generator, n_words: int) -> np.ndarray:
    logits = rng.normal(0, 2, n_words)
    return np.exp(logits) / np.exp(logits).sum()


def test_the_mixture_sums_to_one_and_follows_the_formula() -> None:
    rng = np.random.default_rng(RNG_SEED)
    n_words, weight = 50, 0.3
    head = random_distribution(rng, n_words)
    window = rng.integers(0, 8, 20)
    words, cached = window_distribution(window)
    assert cached.sum() == pytest.approx(1.0)
    assert cached.tolist() == [np.count_nonzero(window == w) / 20 for w in words.tolist()]
    every_word = np.arange(n_words)
    counts = np.array([np.count_nonzero(window == w) for w in every_word])
    mixed = mix_log_probs(np.log(head), counts, np.full(n_words, 20), weight)
    expected = (1 - weight) * head + weight * counts / 20
    np.testing.assert_allclose(np.exp(mixed), expected, rtol=1e-12)
    assert np.exp(mixed).sum() == pytest.approx(1.0, rel=1e-12)
    # An empty cache is the head alone, bit for bit.
    alone = mix_log_probs(np.log(head), np.zeros(n_words), np.zeros(n_words), weight)
    np.testing.assert_array_equal(alone, np.log(head))


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("weight", [0.05, 0.4, 0.9])
def test_the_top_k_of_the_mixture_is_exact(k: int, weight: float) -> None:
    rng = np.random.default_rng(RNG_SEED + k)
    n_words = 60
    for _ in range(20):
        head = random_distribution(rng, n_words)
        window = rng.integers(0, n_words, int(rng.integers(1, 30)))
        words, cached = window_distribution(window)
        order = np.lexsort((np.arange(n_words), -head))
        asked: list[int] = []

        def head_log_prob(ids: np.ndarray, head=head, asked=asked) -> np.ndarray:
            asked.extend(ids.tolist())
            return np.log(head[ids])

        ids, log_probs = mix_top_k(
            order[:k], np.log(head[order[:k]]), words, cached, weight, k, head_log_prob
        )
        mixture = (1 - weight) * head
        mixture[words] += weight * cached
        expected = np.lexsort((np.arange(n_words), -mixture))[:k]
        assert ids.tolist() == expected.tolist()
        np.testing.assert_allclose(np.exp(log_probs), mixture[expected], rtol=1e-12)
        assert set(asked) <= set(words.tolist()) - set(order[:k].tolist())  # only cache words


@pytest.mark.parametrize(
    "value",
    [{"size": 0, "weight": 0.1}, {"size": 10, "weight": 1.0}, {"size": 5}, 3, "yes", {"x": 1}],
)
def test_bad_cache_settings_are_refused(value) -> None:
    with pytest.raises(ConfigError, match=r"\[E027\]"):
        CacheSettings.from_value(value)


def test_cache_settings_round_trip() -> None:
    settings = CacheSettings.from_value({"size": 30, "weight": 0.2})
    assert settings == CacheSettings(30, 0.2)
    assert CacheSettings.from_value(settings.to_dict()) == settings
    assert CacheSettings.from_value(None) is None


def test_the_weight_grows_with_the_history_and_no_ramp_is_a_fixed_weight() -> None:
    held = np.array([0, 1, 2, 4, 10, 1000])
    ramped = CacheSettings(10, 0.3, 4.0).weights(held)
    expected = [0.3 * (n / (n + 4)) ** 2 for n in held.tolist()]
    np.testing.assert_allclose(ramped, expected, rtol=1e-15)
    assert (np.diff(ramped) > 0).all()
    assert CacheSettings(10, 0.3).weights(held).tolist() == [0.0] + [0.3] * 5


def test_the_ramped_mixture_equals_brute_force() -> None:
    """log P = log((1 - λ(n)) P_head + λ(n) C), λ(n) = λ_max (n / (n + c))², n the tokens
    cached, across documents, against a loop over the positions; the whole distribution at a
    position sums to 1."""
    rng = np.random.default_rng(RNG_SEED)
    n_words, settings = 12, CacheSettings(7, 0.4, 3.0)
    ids = rng.integers(-1, n_words, 80)
    documents = np.repeat(np.arange(4), [10, 25, 5, 40])
    heads = np.stack([random_distribution(rng, n_words) for _ in ids])
    head_log_probs = np.log(heads[np.arange(len(ids)), np.maximum(ids, 0)])
    counts, held = cache_counts(ids, settings.size, documents=documents)
    mixed = mix_log_probs(head_log_probs, counts, held, settings.weights(held))
    for t in range(len(ids)):
        before = ids[:t][(documents[:t] == documents[t]) & (ids[:t] >= 0)]
        window = before[len(before) - min(len(before), settings.size) :]
        n = len(window)
        weight = settings.weight * (n / (n + settings.ramp)) ** 2
        distribution = (1 - weight) * heads[t]
        if n:
            distribution += weight * np.bincount(window, minlength=n_words) / n
        assert distribution.sum() == pytest.approx(1.0, rel=1e-12)
        if ids[t] >= 0:
            assert mixed[t] == pytest.approx(np.log(distribution[ids[t]]), rel=1e-12)


def test_settings_without_a_ramp_score_as_before_bit_for_bit() -> None:
    old = CacheSettings.from_value({"size": 30, "weight": 0.2})
    assert old.ramp == 0 and old.to_dict() == {"size": 30, "weight": 0.2}
    rng = np.random.default_rng(RNG_SEED)
    ids = rng.integers(0, 20, 200)
    head_log_probs = np.log(rng.uniform(0.001, 0.2, 200))
    counts, held = cache_counts(ids, old.size)
    np.testing.assert_array_equal(
        mix_log_probs(head_log_probs, counts, held, old.weights(held)),
        mix_log_probs(head_log_probs, counts, held, old.weight),
    )
    ramped = CacheSettings.from_value({"size": 30, "weight": 0.2, "ramp": 5})
    assert ramped == CacheSettings(30, 0.2, 5.0)
    assert CacheSettings.from_value(ramped.to_dict()) == ramped
    with pytest.raises(ConfigError, match=r"\[E027\]"):
        CacheSettings.from_value({"size": 30, "weight": 0.2, "ramp": -1})


def test_a_delayed_cache_is_silent_and_exact_until_it_holds_enough() -> None:
    """With delay m, λ(n) = λ_max ((n - m) / (n - m + c))² once n > m, and 0 before: there
    the mixture is the head's own log-prob, bit for bit."""
    delayed = CacheSettings.from_value({"size": 30, "weight": 0.2, "ramp": 5, "delay": 3})
    assert delayed == CacheSettings(30, 0.2, 5.0, 3)
    assert CacheSettings.from_value(delayed.to_dict()) == delayed
    held = np.arange(8)
    expected = [0.0] * 4 + [0.2 * ((n - 3) / (n - 3 + 5)) ** 2 for n in range(4, 8)]
    np.testing.assert_allclose(delayed.weights(held), expected, rtol=1e-15)
    assert CacheSettings(30, 0.2, 0.0, 3).weights(held).tolist() == [0.0] * 4 + [0.2] * 4
    rng = np.random.default_rng(RNG_SEED)
    ids = rng.integers(0, 5, 200)
    head_log_probs = np.log(rng.uniform(0.001, 0.2, 200))
    counts, held = cache_counts(ids, delayed.size, documents=np.repeat(np.arange(50), 4))
    mixed = mix_log_probs(head_log_probs, counts, held, delayed.weights(held))
    np.testing.assert_array_equal(mixed, head_log_probs)  # documents of 4: n <= 3
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match=r"\[E027\]"):
            CacheSettings.from_value({"size": 30, "weight": 0.2, "delay": bad})
