"""The document cache and ``Document``: exact mixtures against brute force, the stream API, the
cache tuned and saved by training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gensim.models import Word2Vec

from spacy_hs import HSModel
from spacy_hs.cache import CacheSettings, cache_counts
from spacy_hs.corpus import tokenfile
from spacy_hs.errors import ConfigError
from spacy_hs.training.head import attach_head, train_head

CACHE = {"size": 30, "weight": 0.2}


@pytest.fixture(scope="module")
def model(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(
        model, lee_path, None, context_size=3, epochs=1, workers=1, progress=False, tune_cache=False
    )
    attach_head(model, head)
    return model


@pytest.fixture(scope="module")
def story(lee_path: Path) -> list[list[str]]:
    """One Lee news story, split into sentences of up to 12 words, plus an unknown word."""
    words = lee_path.read_text(encoding="utf8").splitlines()[3].split()
    sentences = [words[i : i + 12] for i in range(0, len(words), 12)]
    sentences[2].insert(3, "zzqx")
    return sentences


def ids_and_lengths(model: HSModel, sentences: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    ids = [model.key_to_index.get(w, -1) for s in sentences for w in s]
    return np.array(ids, dtype=np.int32), np.array([len(s) for s in sentences])


def brute_force(model: HSModel, sentences: list[list[str]], t: int, cache: dict) -> np.ndarray:
    """P(w) at token t by the formula: the head's distribution from its sentence's known words
    before t, mixed with the counts of the document's last N known words before t."""
    words = [w for s in sentences for w in s]
    start = 0
    for sentence in sentences:
        if start + len(sentence) > t:
            break
        start += len(sentence)
    head = model.probabilities_next(words[start:t])
    known = [model.key_to_index[w] for w in words[:t] if w in model.key_to_index]
    window = known[-cache["size"] :]
    if not window:
        return head
    counts = np.bincount(window, minlength=len(model)) / len(window)
    return (1 - cache["weight"]) * head + cache["weight"] * counts


def test_cache_none_is_the_batch_api(model: HSModel, story: list[list[str]]) -> None:
    contexts = [s[:t] for s in story for t in range(len(s))]
    words = [w for s in story for w in s]
    np.testing.assert_array_equal(
        model.log_prob_stream(story, cache=None), model.log_prob_next_batch(words, contexts)
    )
    assert model.cache_settings("auto") is None  # tune_cache=False: no saved cache
    np.testing.assert_array_equal(
        model.log_prob_stream(story), model.log_prob_stream(story, cache=None)
    )


def test_cache_log_probs_distributions_and_top_k_are_exact(model, story) -> None:
    ids, lengths = ids_and_lengths(model, story)
    document = model.document(ids, lengths, cache=CACHE)
    log_probs = document.log_probs()
    positions = np.array([0, 1, 5, 13, 27, 28, len(ids) - 1])
    distributions = document.probabilities_at(positions)
    np.testing.assert_allclose(distributions.sum(axis=1), 1.0, rtol=1e-9)
    for row, t in enumerate(positions.tolist()):
        brute = brute_force(model, story, t, CACHE)
        np.testing.assert_allclose(distributions[row], brute, rtol=1e-5, atol=1e-12)
        if ids[t] >= 0:
            assert log_probs[t] == pytest.approx(np.log(brute[ids[t]]), rel=1e-5)
        entropy = -(brute * np.log2(brute)).sum()
        assert entropy == pytest.approx(-(distributions[row] * np.log2(distributions[row])).sum())
    # top-k after position e continues token e-1's sentence: the slot of token e when e is
    # inside a sentence
    ends = np.array([5, 13, 27, 40])
    top_ids, top_log_probs = document.top_k_after(ends, 15)
    for row, end in enumerate(ends.tolist()):
        brute = brute_force(model, story, end, CACHE)
        expected = np.argsort(-brute, kind="stable")[:15]
        assert top_ids[row].tolist() == expected.tolist()
        np.testing.assert_allclose(np.exp(top_log_probs[row]), brute[expected], rtol=1e-5)


def test_a_repeated_word_scores_higher_with_the_cache(model: HSModel) -> None:
    sentences = [["the", "minister", "said", "the", "storm"], ["firefighters", "said", "storm"]]
    without = model.log_prob_stream(sentences, cache=None)
    with_cache = model.log_prob_stream(sentences, cache={"size": 100, "weight": 0.3})
    assert with_cache[7] > without[7]  # "storm", seen once before
    assert with_cache[0] == without[0]  # an empty cache: the head alone


def test_cache_counts_cross_sentences_and_skip_unknown_tokens() -> None:
    ids = np.array([4, -1, 4, 7, 4, 7, -1, 4])
    counts, held = cache_counts(ids, 3)
    assert held.tolist() == [0, 1, 1, 2, 3, 3, 3, 3]
    assert counts.tolist() == [0, 0, 1, 0, 2, 1, 0, 1]


@pytest.mark.parametrize(
    "value", [{"size": 0, "weight": 0.1}, {"size": 10, "weight": 1.0}, {"size": 5}, 3, "yes"]
)
def test_bad_cache_settings_are_refused(model: HSModel, value) -> None:
    with pytest.raises(ConfigError, match=r"\[E027\]"):
        model.log_prob_stream([["the"]], cache=value)


def test_training_tunes_and_saves_the_cache(cbow_gensim: Word2Vec, lee_path, tmp_path) -> None:
    # Lee stories as documents: each story's sentences, a blank line after each story.
    stories = lee_path.read_text(encoding="utf8").splitlines()[:120]
    marked = tmp_path / "stories.txt"
    lines = []
    for story in stories:
        words = story.split()
        lines += [" ".join(words[i : i + 15]) for i in range(0, len(words), 15)] + [""]
    marked.write_text("\n".join(lines) + "\n", encoding="utf8")
    assert len(list(tokenfile.documents(marked))) == len([s for s in stories if s.split()])
    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(model, marked, None, context_size=3, epochs=2, workers=1, progress=False)
    attach_head(model, head)
    tuned = model.meta["head"]["cache"]
    assert tuned["heldout_perplexity"] <= tuned["heldout_perplexity_without"]
    if tuned["weight"] > 0:
        assert CacheSettings.from_value(model.settings["cache"]).size == tuned["size"]
    model.to_disk(tmp_path / "model")
    loaded = HSModel.from_disk(tmp_path / "model")
    assert loaded.cache_settings() == model.cache_settings()
    words = [w for line in lines for w in line.split()][:300]
    np.testing.assert_array_equal(loaded.log_prob_stream([words]), model.log_prob_stream([words]))


def test_an_old_model_has_no_cache(model_dir: Path) -> None:
    old = HSModel.from_disk(Path(__file__).parent / "fixtures" / "model_v1")
    assert old.cache_settings() is None
    assert HSModel.from_disk(model_dir).cache_settings() is None


class Delegate:
    """A head that is not a TreeHead (answers through another's methods): the cache's generic
    top-k path."""

    def __init__(self, head):
        self.inner = head
        self.name, self.context_size = head.name, head.context_size
        self.predicts_sentence_start = head.predicts_sentence_start

    def log_prob(self, context_ids, word_ids):
        return self.inner.log_prob(context_ids, word_ids)

    def top_k(self, context_ids, k):
        return self.inner.top_k(context_ids, k)

    def log_probabilities(self, context_ids):
        return self.inner.log_probabilities(context_ids)


def test_the_generic_cached_top_k_equals_the_compiled_one(model, story) -> None:
    from spacy_hs.cache import CacheSettings
    from spacy_hs.document import Document

    ids, lengths = ids_and_lengths(model, story)
    settings = CacheSettings(40, 0.3)
    compiled = Document(ids, lengths, model.trained_head, settings, n_words=len(model))
    generic = Document(ids, lengths, Delegate(model.trained_head), settings, n_words=len(model))
    positions = np.arange(1, len(ids), 3)
    found, found_log_probs = generic.top_k_at(positions, 12)
    wanted, wanted_log_probs = compiled.top_k_at(positions, 12)
    np.testing.assert_array_equal(found, wanted)
    np.testing.assert_allclose(found_log_probs, wanted_log_probs, rtol=1e-9)
