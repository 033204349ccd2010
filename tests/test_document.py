"""``Documents`` (the core that owns the stream): log-probabilities, top-k, ranks and entropies
of batches of documents with the cache, against brute force; the cache tuned and saved by
training. The cache's own math is in test_cache.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gensim.models import Word2Vec

from spacy_hs import HSModel
from spacy_hs.cache import CacheSettings
from spacy_hs.corpus import tokenfile
from spacy_hs.document import Document, Documents
from spacy_hs.training.head import SHORT_DOCUMENT_Z, _never_worse, attach_head, train_head

CACHE = {"size": 30, "weight": 0.2}
RAMPED = {"size": 30, "weight": 0.3, "ramp": 6.0}


@pytest.fixture(scope="module")
def model(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(
        model, lee_path, None, context_size=3, epochs=1, workers=1, progress=False, tune_cache=False
    )
    attach_head(model, head, export_fine_tuned_vectors=False)
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
    weight = cache["weight"] * (len(window) / (len(window) + cache.get("ramp", 0.0))) ** 2
    return (1 - weight) * head + weight * counts


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


@pytest.mark.parametrize("cache", [CACHE, RAMPED])
def test_cache_log_probs_distributions_and_top_k_are_exact(model, story, cache) -> None:
    ids, lengths = ids_and_lengths(model, story)
    document = model.document(ids, lengths, cache=cache)
    log_probs = document.log_probs()
    positions = np.array([0, 1, 5, 13, 27, 28, len(ids) - 1])
    distributions = document.probabilities_at(positions)
    np.testing.assert_allclose(distributions.sum(axis=1), 1.0, rtol=1e-9)
    for row, t in enumerate(positions.tolist()):
        brute = brute_force(model, story, t, cache)
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
        brute = brute_force(model, story, end, cache)
        expected = np.argsort(-brute, kind="stable")[:15]
        assert top_ids[row].tolist() == expected.tolist()
        np.testing.assert_allclose(np.exp(top_log_probs[row]), brute[expected], rtol=1e-5)


def test_a_repeated_word_scores_higher_with_the_cache(model: HSModel) -> None:
    sentences = [["the", "minister", "said", "the", "storm"], ["firefighters", "said", "storm"]]
    without = model.log_prob_stream(sentences, cache=None)
    with_cache = model.log_prob_stream(sentences, cache={"size": 100, "weight": 0.3})
    assert with_cache[7] > without[7]  # "storm", seen once before
    assert with_cache[0] == without[0]  # an empty cache: the head alone


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
    attach_head(model, head, export_fine_tuned_vectors=False)
    tuned = model.meta["head"]["cache"]
    assert tuned["heldout_perplexity"] <= tuned["heldout_perplexity_without"]
    if tuned["weight"] > 0:
        assert CacheSettings.from_value(model.settings["cache"]).size == tuned["size"]
    model.to_disk(tmp_path / "model")
    loaded = HSModel.from_disk(tmp_path / "model")
    assert loaded.cache_settings() == model.cache_settings()
    words = [w for line in lines for w in line.split()][:300]
    np.testing.assert_array_equal(loaded.log_prob_stream([words]), model.log_prob_stream([words]))


def test_a_one_sentence_document_never_scores_worse_with_the_tuned_cache(
    cbow_gensim: Word2Vec, lee_path: Path, tmp_path: Path
) -> None:
    """Training tunes the cache's ramp on the held-out text: each held-out sentence read as its
    own document (its first 5 and 10 words, and whole) scores no worse with the saved cache,
    while the held-out text read as one stream gains from it."""
    model = HSModel.from_gensim(cbow_gensim)
    lines = lee_path.read_text(encoding="utf8").splitlines()
    heldout = tmp_path / "heldout.txt"
    sentences = []
    for story in lines[200:260]:
        words = [w for w in story.split() if w in model.key_to_index]
        sentences += [words[i : i + 15] for i in range(0, len(words), 15)]
    heldout.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf8")
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(lines[:200]) + "\n", encoding="utf8")
    head = train_head(model, corpus, heldout, context_size=3, epochs=2, workers=1, progress=False)
    attach_head(model, head, export_fine_tuned_vectors=False)
    tuned = model.meta["head"]["cache"]
    assert tuned["weight"] > 0 and tuned["heldout_perplexity"] < tuned["heldout_perplexity_without"]
    for cut in (5, 10, None):
        with_cache = without = 0.0
        for sentence in sentences:
            with_cache += np.nansum(model.log_prob_stream([sentence[:cut]], cache="auto"))
            without += np.nansum(model.log_prob_stream([sentence[:cut]], cache=None))
        assert with_cache >= without


def test_the_tuner_wants_a_silent_cache_or_a_clear_gain() -> None:
    """A short-document gain counts only when it is SHORT_DOCUMENT_Z standard errors above zero
    (on PTB, a gain of 0.3 standard errors on valid was a loss on test), or when the cache is
    silent there (the same log-probs)."""
    sentence_of = np.repeat(np.arange(100), 5)
    everywhere = slice(None)
    assert _never_worse(np.zeros(500), sentence_of, everywhere)
    rng = np.random.default_rng(0)
    noisy = rng.normal(0.0, 0.01, 500)
    noisy -= noisy.mean()
    standard_error = np.bincount(sentence_of, weights=noisy).std() * np.sqrt(100) / 500
    assert _never_worse(noisy + 0.2 * standard_error, sentence_of, everywhere) is False
    assert _never_worse(noisy + (SHORT_DOCUMENT_Z + 0.2) * standard_error, sentence_of, everywhere)
    first_two = np.arange(500) % 5 < 2
    assert _never_worse(np.where(first_two, 0.0, -1.0), sentence_of, first_two)


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


@pytest.mark.parametrize("settings", [CacheSettings(40, 0.3), CacheSettings(40, 0.3, 8.0)])
def test_the_generic_cached_top_k_equals_the_compiled_one(model, story, settings) -> None:
    ids, lengths = ids_and_lengths(model, story)
    compiled = Document(ids, lengths, model.trained_head, settings, n_words=len(model))
    generic = Document(ids, lengths, Delegate(model.trained_head), settings, n_words=len(model))
    positions = np.arange(1, len(ids), 3)
    found, found_log_probs = generic.top_k_at(positions, 12)
    wanted, wanted_log_probs = compiled.top_k_at(positions, 12)
    np.testing.assert_array_equal(found, wanted)
    np.testing.assert_allclose(found_log_probs, wanted_log_probs, rtol=1e-9)


# -- batches of documents with dropped positions ---------------------------------------------


def batch(model: HSModel, story: list[list[str]], history: np.ndarray | None = None):
    """Three documents (the story's sentences 0-1, an empty one, sentences 2-4) with dropped
    positions (None) among the words, as ``Documents`` with the cache: per position its word,
    id, sentence and document; the documents' lengths and the ``Documents``."""
    plan = [story[0:2], [], story[2:5]]
    words, sentences, documents, sentence_lengths, document_lengths = [], [], [], [], []
    for d, sentences_of_document in enumerate(plan):
        start = len(words)
        for sentence in sentences_of_document:
            tokens = [None] + sentence[:3] + [None, None] + sentence[3:] + [None]
            words += tokens
            sentences += [len(sentence_lengths)] * len(tokens)
            documents += [d] * len(tokens)
            sentence_lengths.append(len(tokens))
        document_lengths.append(len(words) - start)
    ids = np.array([-2 if w is None else model.key_to_index.get(w, -1) for w in words], np.int32)
    stream = Documents(
        ids,
        sentence_lengths,
        model.trained_head,
        CacheSettings.from_value(CACHE),
        n_words=len(model),
        document_lengths=document_lengths,
        history=history,
        dropped=ids == -2,
    )
    return words, ids, sentences, documents, document_lengths, stream


def brute_distribution(model, words, sentences, documents, t, history=()):
    """P(w) at position t by the formula: the head from the known words before t in its
    sentence; the cache of the last N known words before t in its document (after
    ``history`` for the first document)."""
    known = [
        w
        for s, w in enumerate(words[:t])
        if w is not None and w in model.key_to_index and documents[s] == documents[t]
    ]
    in_sentence = [
        w for s, w in enumerate(words[:t]) if w is not None and sentences[s] == sentences[t]
    ]
    head = model.probabilities_next(in_sentence)
    window = ([] if documents[t] else list(history)) + [model.key_to_index[w] for w in known]
    window = window[-CACHE["size"] :]
    if not window:
        return head
    counts = np.bincount(window, minlength=len(model)) / len(window)
    return (1 - CACHE["weight"]) * head + CACHE["weight"] * counts


def test_documents_answer_every_question_as_the_brute_force(model, story) -> None:
    history = np.array([model.key_to_index[w] for w in story[5] if w in model.key_to_index])
    words, ids, sentences, documents, _, stream = batch(model, story, history)
    kept = [t for t, w in enumerate(words) if w is not None]
    wanted = [
        brute_distribution(model, words, sentences, documents, t, history.tolist())
        for t in range(len(words))
    ]
    # log-probabilities: NaN where dropped or unknown (no unknown word given)
    log_probs = stream.log_probs()
    for t, word in enumerate(words):
        if word is None or ids[t] < 0:
            assert np.isnan(log_probs[t])
        else:
            assert log_probs[t] == pytest.approx(np.log(wanted[t][ids[t]]), rel=1e-5)
    # perplexity per document, over its scored tokens
    perplexities = stream.perplexities()
    assert perplexities[1] is None  # the empty document
    for d in (0, 2):
        scored = [log_probs[t] for t in kept if documents[t] == d and not np.isnan(log_probs[t])]
        assert perplexities[d] == pytest.approx(np.exp(-np.mean(scored)), rel=1e-12)
    # the whole distribution and the top-k at each kept position
    positions = np.array(kept)
    np.testing.assert_allclose(
        stream.probabilities_at(positions), np.array([wanted[t] for t in kept]), rtol=1e-5
    )
    top_ids, top_log_probs = stream.top_k_at(positions, 7)
    for row, t in enumerate(kept):
        expected = np.argsort(-wanted[t], kind="stable")[:7]
        assert top_ids[row].tolist() == expected.tolist()
        np.testing.assert_allclose(np.exp(top_log_probs[row]), wanted[t][expected], rtol=1e-5)
    # ranks and entropies against a full sort
    ranks, entropies = stream.ranks_and_entropies(positions, rows_per_chunk=5)
    for row, t in enumerate(kept):
        distribution = wanted[t]
        assert entropies[row] == pytest.approx(-(distribution * np.log2(distribution)).sum())
        if ids[t] >= 0:
            order = np.argsort(-distribution, kind="stable").tolist()
            assert ranks[row] == 1 + sum(distribution > distribution[ids[t]])
            assert order.index(ids[t]) + 1 >= ranks[row]  # ties share the better rank
        else:
            assert ranks[row] == 0
    measured_ranks, measured_entropies = stream.measures()
    assert measured_ranks[positions[ids[positions] >= 0]].tolist() == [
        r for r, t in zip(ranks.tolist(), kept) if ids[t] >= 0
    ]
    assert np.isnan(measured_entropies[ids == -2]).all()


def test_the_top_k_after_each_document_reads_its_last_sentence_and_cache(model, story) -> None:
    words, ids, sentences, documents, document_lengths, stream = batch(model, story)
    top_ids, _ = stream.top_k_after_documents(5)
    ends = np.cumsum(document_lengths)
    for d, end in enumerate(ends.tolist()):
        # an end marker after the document, in its last sentence (a sentence of its own for
        # the empty document)
        marker = words[:end] + ["<end>"]
        marker_sentences = sentences[:end] + [sentences[end - 1] if document_lengths[d] else -1]
        marker_documents = documents[:end] + [d]
        expected = brute_distribution(model, marker, marker_sentences, marker_documents, end)
        assert top_ids[d].tolist() == np.argsort(-expected, kind="stable")[:5].tolist()
    # after a position inside a document: its sentence so far, from a span start if given
    end = 9
    after, _ = stream.top_k_after([end], 5, starts=[3])
    span = words[3:end]
    expected_head = model.probabilities_next([w for w in span if w is not None])
    counts = np.bincount(
        [model.key_to_index[w] for w in words[:end] if w in model.key_to_index],
        minlength=len(model),
    )
    expected = (1 - CACHE["weight"]) * expected_head + CACHE["weight"] * counts / counts.sum()
    assert after[0].tolist() == np.argsort(-expected, kind="stable")[:5].tolist()


def test_the_history_carries_the_cache_across_batches(model, story) -> None:
    """Two halves of one document, the second given the first's ``history_after``, score as
    the whole document."""
    ids, lengths = ids_and_lengths(model, story)
    settings = CacheSettings.from_value(CACHE)
    whole = Documents(ids, lengths, model.trained_head, settings, n_words=len(model))
    cut = int(lengths[:3].sum())
    first = Documents(ids[:cut], lengths[:3], model.trained_head, settings, n_words=len(model))
    second = Documents(
        ids[cut:],
        lengths[3:],
        model.trained_head,
        settings,
        n_words=len(model),
        history=first.history_after(),
    )
    np.testing.assert_array_equal(
        np.concatenate([first.log_probs(), second.log_probs()]), whole.log_probs()
    )
    positions = np.arange(len(ids) - cut)
    np.testing.assert_array_equal(
        second.top_k_at(positions, 5)[0], whole.top_k_at(positions + cut, 5)[0]
    )
    plain = whole.without_cache()
    np.testing.assert_array_equal(plain.log_probs(), model.log_prob_stream(story, cache=None))


def test_without_cache_shares_the_heads_pass(model, story) -> None:
    ids, lengths = ids_and_lengths(model, story)
    cached = Documents(ids, lengths, model.trained_head, CacheSettings(40, 0.3), n_words=len(model))
    plain = cached.without_cache()
    head_log_probs = plain.log_probs()
    assert cached.cache is not None and plain.cache is None
    np.testing.assert_array_equal(head_log_probs, model.log_prob_stream(story, cache=None))
    model_head, cached.head = cached.head, None  # a second pass would fail
    try:
        np.testing.assert_array_equal(
            cached.log_probs(), model.log_prob_stream(story, cache={"size": 40, "weight": 0.3})
        )
    finally:
        cached.head = model_head


def test_query_arguments_are_checked(model: HSModel, story: list[list[str]]) -> None:
    """Out-of-range positions raised IndexError, negative ones wrapped to the end, floats were
    truncated, k=0 raised a raw ValueError: now coded errors, no wrapping."""
    from spacy_hs.errors import ConfigError, WrongTypeError

    ids, lengths = ids_and_lengths(model, story[:2])
    stream = Documents(ids, lengths, model.trained_head, n_words=len(model))
    n = len(stream)
    assert stream.top_k_at([0, n - 1], 3)[0].shape == (2, 3)
    assert stream.top_k_after([0, n], 3, [0, 0])[0].shape == (2, 3)
    for bad in ([n], [-1], [n + 5]):
        with pytest.raises(ConfigError, match=r"\[E045\] positions holds"):
            stream.top_k_at(bad, 3)
        with pytest.raises(ConfigError, match=r"\[E045\] positions"):
            stream.probabilities_at(bad)
    with pytest.raises(ConfigError, match=r"\[E045\] ends holds -1"):
        stream.top_k_after([-1], 3)
    with pytest.raises(ConfigError, match=r"\[E045\] ends holds"):
        stream.top_k_after([n + 1], 3)
    with pytest.raises(ConfigError, match=r"\[E045\] starts holds"):
        stream.top_k_after([3], 3, [-2])
    with pytest.raises(ConfigError, match=r"\[E047\]"):
        stream.top_k_after([3, 4], 3, [0])
    for bad_positions in ([1.5], [True], ["3"]):
        with pytest.raises(WrongTypeError, match=r"\[E044\] positions must be integers"):
            stream.top_k_at(bad_positions, 3)
    with pytest.raises(WrongTypeError, match=r"\[E044\] ends must be integers"):
        stream.top_k_after([2.0], 3)
    for k in (0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match=r"\[E046\]"):
            stream.top_k_at([1], k)
        with pytest.raises(ConfigError, match=r"\[E046\]"):
            stream.top_k_after_documents(k)
    with pytest.raises(WrongTypeError, match=r"\[E044\] sentence_lengths"):
        Documents(ids, lengths.astype(float), model.trained_head, n_words=len(model))
    with pytest.raises(WrongTypeError, match=r"\[E044\] document_lengths"):
        Documents(ids, lengths, model.trained_head, n_words=len(model), document_lengths=[n / 1])


def test_unknown_counts_count_every_unknown_token(model: HSModel, story) -> None:
    """Without an unknown word, an unknown token is left out of the perplexity but counted
    (KenLM's OOVs); before, only unknown tokens scored as the unknown word were."""
    ids, lengths = ids_and_lengths(model, story[2:3])
    unknown = int((ids < 0).sum())
    assert unknown >= 1
    plain = Documents(ids, lengths, model.trained_head, n_words=len(model))
    assert plain.unknown_counts() == [unknown]
    assert np.isnan(plain.log_probs()[ids < 0]).all()
    scored = Documents(ids, lengths, model.trained_head, unknown_id=0, n_words=len(model))
    assert scored.unknown_counts() == [unknown] and not np.isnan(scored.log_probs()[ids < 0]).any()
