"""HSModel's queries: exact hierarchical-softmax probabilities and top-k, checked against
independent computations from gensim's own arrays (``wv.expandos['code']``/``['point']``,
``syn1``)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from conftest import log_sigmoid, random_contexts, train_lee
from gensim.models import Word2Vec

from spacy_hs import HSModel

N_CONTEXTS = 200


@pytest.fixture(scope="module")
def ns_gensim() -> Word2Vec:
    """HS and negative sampling together (gensim's default negative=5)."""
    return train_lee(sg=0, hs=1, negative=5)


def gensim_and_model(request: pytest.FixtureRequest, name: str) -> tuple[Word2Vec, HSModel]:
    gensim_model = request.getfixturevalue(name)
    return gensim_model, HSModel.from_gensim(gensim_model)


def gensim_log_prob(gensim_model: Word2Vec, word: str, context: list[str]) -> float:
    """log P(word | context) straight from gensim's arrays, in float64: the CBOW hidden vector
    (mean or sum of the known context vectors), then the word's Huffman path (code 0 means
    sigmoid(+dot), as in gensim's training)."""
    wv = gensim_model.wv
    rows = [wv.key_to_index[w] for w in context if w in wv.key_to_index]
    hidden = wv.vectors[rows].astype(np.float64).sum(axis=0)
    if gensim_model.cbow_mean:
        hidden /= len(rows)
    index = wv.key_to_index[word]
    points = wv.expandos["point"][index]
    codes = wv.expandos["code"][index].astype(np.float64)
    dots = gensim_model.syn1[points].astype(np.float64) @ hidden
    return float(log_sigmoid((1.0 - 2.0 * codes) * dots).sum())


def assert_exact_top_k(model: HSModel, context: list[str], topn: int) -> None:
    """Our top-k against brute force: the sorted probabilities of every word."""
    probs = model.probabilities(context)
    got = model.predict_output_word(context, topn)
    k = min(topn, len(model))
    ids = np.array([model.key_to_index[word] for word, _ in got])
    got_probs = np.array([p for _, p in got])
    assert len(got) == k and len(set(ids.tolist())) == k
    # The same probabilities rank by rank (so the same words, except that near-ties may swap)...
    np.testing.assert_allclose(got_probs, np.sort(probs)[::-1][:k], rtol=1e-5)
    # ...each reported probability is the word's own...
    np.testing.assert_allclose(got_probs, probs[ids], rtol=1e-5)
    # ...and no word left out beats the last one reported, beyond a near-tie.
    if k < len(model):
        assert np.delete(probs, ids).max() <= got_probs[-1] * (1 + 1e-5)


# -- the distribution -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["cbow_gensim", "sg_gensim", "ns_gensim"])
def test_probabilities_sum_to_one(
    request: pytest.FixtureRequest, name: str, lee_tokens: list[str]
) -> None:
    _, model = gensim_and_model(request, name)
    for context in random_contexts(model, lee_tokens, 20, seed=1):
        probs = model.probabilities(context)
        assert probs.shape == (len(model),)
        assert probs.min() > 0
        assert abs(probs.sum() - 1.0) < 1e-6


@pytest.mark.parametrize("name", ["cbow_gensim", "sg_gensim"])
def test_top_k_equals_brute_force(
    request: pytest.FixtureRequest, name: str, lee_tokens: list[str]
) -> None:
    _, model = gensim_and_model(request, name)
    contexts = random_contexts(model, lee_tokens, N_CONTEXTS, seed=2)
    assert len(contexts) > N_CONTEXTS * 0.9
    for i, context in enumerate(contexts):
        assert_exact_top_k(model, context, topn=(1, 10, 37)[i % 3])


def test_top_k_of_the_whole_vocabulary(hs_model: HSModel) -> None:
    """k = V lists every word once, most probable first; k > V is capped at V."""
    context = ["the", "government", "said"]
    assert_exact_top_k(hs_model, context, topn=len(hs_model))
    everything = hs_model.predict_output_word(context, topn=len(hs_model) + 5)
    assert sorted(word for word, _ in everything) == sorted(hs_model.words)
    probs = [p for _, p in everything]
    assert probs == sorted(probs, reverse=True)
    assert abs(sum(probs) - 1.0) < 1e-6


def test_gensim_predict_output_word_is_not_the_hs_layer(ns_gensim: Word2Vec) -> None:
    """Why this package exists: gensim answers from the negative-sampling layer when it can,
    and refuses when the model has only the HS layer."""
    model = HSModel.from_gensim(ns_gensim)
    context = ["the", "government"]
    gensim_top = ns_gensim.predict_output_word(context, topn=len(model))
    gensim_probs = np.array(
        [p for _, p in sorted(gensim_top, key=lambda x: model.key_to_index[x[0]])]
    )
    assert not np.allclose(gensim_probs, model.probabilities(context), rtol=0.1)
    hs_only = train_lee(sg=0, hs=1, negative=0, epochs=1)
    with pytest.raises(RuntimeError):
        hs_only.predict_output_word(context)


# -- log-probabilities ----------------------------------------------------------------


@pytest.mark.parametrize("cbow_mean", [1, 0])
def test_log_prob_matches_gensim_arrays(
    cbow_gensim: Word2Vec, lee_tokens: list[str], cbow_mean: int
) -> None:
    gensim_model = cbow_gensim if cbow_mean else train_lee(sg=0, hs=1, negative=0, cbow_mean=0)
    model = HSModel.from_gensim(gensim_model)
    rng = np.random.default_rng(3)
    for start in rng.integers(0, len(lee_tokens) - 5, 100):
        context, word = lee_tokens[start : start + 4], lee_tokens[start + 4]
        if word not in model or not model.word_ids(context):
            continue
        expected = gensim_log_prob(gensim_model, word, context)
        assert model.log_prob(word, context) == pytest.approx(expected, rel=1e-5, abs=1e-6)
        probs = model.probabilities(context)
        assert np.log(probs[model.key_to_index[word]]) == pytest.approx(expected, rel=1e-5)


def test_log_prob_of_every_word_matches_probabilities(hs_model: HSModel) -> None:
    context = ["police", "said", "the"]
    probs = hs_model.probabilities(context)
    all_words = hs_model.log_prob_batch(hs_model.words, [context] * len(hs_model))
    np.testing.assert_allclose(np.exp(all_words), probs, rtol=1e-5)


# -- batch forms, unknown words, bad arguments ----------------------------------------


def test_batch_forms_equal_single_forms(hs_model: HSModel, lee_tokens: list[str]) -> None:
    contexts = random_contexts(hs_model, lee_tokens, 40, seed=4)
    contexts += [["zzz-unknown"], [], ["zzz-unknown", "the"]]
    words = [w for w in lee_tokens if w in hs_model][: len(contexts)]
    with pytest.warns(UserWarning):
        singles = [hs_model.predict_output_word(c, topn=7) for c in contexts]
    assert hs_model.predict_output_word_batch(contexts, topn=7) == singles
    batch = hs_model.log_prob_batch(words, contexts)
    with pytest.warns(UserWarning):
        single = [hs_model.log_prob(w, c) for w, c in zip(words, contexts)]
    np.testing.assert_array_equal(batch, single)  # NaN where no context word is known
    assert np.isnan(batch[-2]) and np.isnan(batch[-3]) and not np.isnan(batch[-1])


def test_the_cbow_heads_read_replaced_vectors(hs_model: HSModel) -> None:
    """The CBOW head is built once per model (and context size); after ``set_vectors`` the
    head and the gensim-style queries read the new vectors, as a model loaded with them does."""
    model = HSModel.from_bytes(hs_model.to_bytes())
    context = ["the", "government", "said"]
    before = model.head("cbow")
    old_log_prob = model.log_prob("police", context)
    assert model.head("cbow") is before
    model.set_vectors(model.vectors * 3)
    after = model.head("cbow")
    assert after is not before and after.context.get_param("input_vectors") is model.vectors
    reloaded = HSModel.from_bytes(model.to_bytes())
    assert model.log_prob("police", context) == reloaded.log_prob("police", context)
    assert model.log_prob("police", context) != old_log_prob
    assert model.predict_output_word(context, 5) == reloaded.predict_output_word(context, 5)
    assert model.predict_next(context, 5, head="cbow") == reloaded.predict_next(context, 5, "cbow")


def test_unknown_context_words_are_skipped(hs_model: HSModel) -> None:
    context = ["the", "government", "said"]
    noisy = ["zzz-a", "the", "government", "zzz-b", "said", "zzz-c"]
    assert hs_model.predict_output_word(noisy) == hs_model.predict_output_word(context)
    assert hs_model.log_prob("minister", noisy) == hs_model.log_prob("minister", context)
    np.testing.assert_array_equal(hs_model.probabilities(noisy), hs_model.probabilities(context))
    # Word ids work as context too.
    ids = [hs_model.key_to_index[w] for w in context]
    assert hs_model.predict_output_word(ids) == hs_model.predict_output_word(context)


@pytest.mark.parametrize("context", [["zzz-a", "zzz-b"], []])
def test_all_unknown_context_warns(hs_model: HSModel, context: list[str]) -> None:
    with pytest.warns(UserWarning, match="out of vocabulary"):
        assert hs_model.predict_output_word(context) == []
    with pytest.warns(UserWarning, match="out of vocabulary"):
        assert np.isnan(hs_model.log_prob("the", context))
    with pytest.warns(UserWarning, match="out of vocabulary"):
        assert hs_model.probabilities(context) is None
    with pytest.warns(UserWarning, match="out of vocabulary"):
        assert hs_model.predict_output_word_batch([context], warn=True) == [[]]


@pytest.mark.parametrize("topn", [0, -3, 1.5, "10", True, None])
def test_bad_topn_raises(hs_model: HSModel, topn: object) -> None:
    with pytest.raises(ValueError, match="topn must be a positive integer"):
        hs_model.predict_output_word(["the"], topn=topn)
    with pytest.raises(ValueError, match="topn must be a positive integer"):
        hs_model.predict_output_word_batch([["the"]], topn=topn)


def test_unknown_target_word_raises_key_error(hs_model: HSModel) -> None:
    with pytest.raises(KeyError, match="'zzz-unknown'.*not in the model's vocabulary"):
        hs_model.log_prob("zzz-unknown", ["the"])
    with pytest.raises(KeyError, match="not in the model's vocabulary"):
        hs_model.log_prob(len(hs_model), ["the"])
    # In a batch, an unknown target gives NaN instead (one bad row must not sink the rest).
    values = hs_model.log_prob_batch(["zzz-unknown", "the"], [["the"], ["of"]])
    assert np.isnan(values[0]) and not np.isnan(values[1])


# -- the relation to gensim's score() -------------------------------------------------

EXP_TABLE_SIZE = 1000
MAX_EXP = 6


def gensim_log_table() -> np.ndarray:
    """gensim's LOG_TABLE (word2vec_inner.pyx ``init``), in float32 as there."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float32) / np.float32(EXP_TABLE_SIZE) * 2 - 1) * 6
    e = np.exp(x.astype(np.float64)).astype(np.float32)
    sigmoid = (e / (e + 1)).astype(np.float32)
    return np.log(sigmoid.astype(np.float64)).astype(np.float32)


def score_terms(ids: list[int], sg: bool, window: int) -> list[tuple[int, list[int]]]:
    """(target, context ids) of each term gensim's score_sentence_sg/_cbow adds up, over the
    known words of a sentence, with the full window (score() does not shrink it at random)."""
    terms = []
    for i in range(len(ids)):
        lo, hi = max(0, i - window), min(len(ids), i + window + 1)
        context = [ids[j] for j in range(lo, hi) if j != i]
        if sg:
            terms += [(ids[i], [c]) for c in context]
        elif context:
            terms.append((ids[i], context))
    return terms


@pytest.mark.parametrize("sg", [0, 1])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_relation_to_gensim_score(
    cbow_gensim: Word2Vec, sg_gensim: Word2Vec, lee_tokens: list[str], sg: int, scale: float
) -> None:
    """gensim's ``Word2Vec.score`` versus the exact log-probabilities, on the same model.

    For each sentence, gensim's ``score_sentence_sg``/``score_sentence_cbow``
    (word2vec_inner.pyx) add, over every word and its full window, the HS terms
    log sigmoid(f), f = (1 - 2 code) * h . syn1[point], with h the context word's vector (skip-gram)
    or the mean of the window's vectors (CBOW). It does so approximately:

    * terms with |f| >= 6 are skipped (added as 0);
    * the others come from a 1000-entry table over [-6, 6), at index
      ``int((f + 6) * (1000 / 6 / 2))``, where that scale is computed in C integer division
      (83, not 83.33). The table point lies 0 to 0.012 + 0.004 (f + 6) below f, so each term
      is rounded *down*, by at most 0.025 nats.

    The exact sentence log-probability (our ``log_prob_batch`` over the same terms) therefore
    relates to gensim's score as

        gensim = exact - rounding - skipped,

    with ``rounding`` (>= 0, <= 0.025 nats per path node) the table's rounding and ``skipped``
    the exact value of the skipped terms. Checked here to 0.025 nats per sentence (float32 dot
    products may land one table cell apart, 0.012 at most, in gensim and in numpy):

    * where no |f| >= 6 occurs, gensim and exact agree to that rounding: gensim is lower by
      0 to 0.025 nats per path node, never higher;
    * where some f <= -6 occurs, gensim leaves out that term's log sigmoid(f) <= -6 nats: its
      score is at least 6 nats above exact - rounding, and above the exact log-probability
      itself (which the rounding alone never makes it), so it is no longer a log-probability.
      A skipped f >= 6 term changes the score by under 0.0025 nats.

    The trained test models have all |f| < 6; ``scale=3`` multiplies syn1 by 3 so that about a
    third of the sentences reach beyond (models trained longer on more text get there too).
    """
    gensim_model = copy.deepcopy(sg_gensim if sg else cbow_gensim)
    gensim_model.syn1 *= scale
    model = HSModel.from_gensim(gensim_model)
    wv = gensim_model.wv
    known = [w for w in lee_tokens[:2000] if w in wv.key_to_index]
    sentences = [known[i : i + 5] for i in range(0, len(known) - 5, 5)]
    gensim_scores = gensim_model.score(sentences, total_sentences=len(sentences))
    assert len(gensim_scores) == len(sentences)

    table = gensim_log_table()
    exact, rounding, skipped, n_nodes, has_negative_skip = [], [], [], [], []
    for sentence in sentences:
        terms = score_terms(model.word_ids(sentence), sg, gensim_model.window)
        targets, contexts = [t for t, _ in terms], [c for _, c in terms]
        exact.append(model.log_prob_batch(targets, contexts).sum())
        # The rounding and the skipped part, from gensim's own arrays.
        sentence_rounding = sentence_skipped = 0.0
        nodes = 0
        negative_skip = False
        for target, context in terms:
            hidden = wv.vectors[context].astype(np.float64).mean(axis=0)
            points, codes = wv.expandos["point"][target], wv.expandos["code"][target]
            f = (1.0 - 2.0 * codes) * (gensim_model.syn1[points].astype(np.float64) @ hidden)
            inside = np.abs(f) < MAX_EXP
            looked_up = table[
                ((f[inside] + MAX_EXP) * (EXP_TABLE_SIZE // MAX_EXP // 2)).astype(int)
            ]
            sentence_rounding += float((log_sigmoid(f[inside]) - looked_up).sum())
            sentence_skipped += float(log_sigmoid(f[~inside]).sum())
            negative_skip |= bool((f <= -MAX_EXP).any())
            nodes += len(f)
        rounding.append(sentence_rounding)
        skipped.append(sentence_skipped)
        n_nodes.append(nodes)
        has_negative_skip.append(negative_skip)
    exact, rounding, skipped, n_nodes = map(np.array, (exact, rounding, skipped, n_nodes))
    gensim_scores = gensim_scores.astype(np.float64)
    has_skip = skipped != 0
    has_negative_skip = np.array(has_negative_skip)

    # The table only ever rounds down, by at most 0.025 nats per path node.
    assert (rounding >= -1e-6).all() and (rounding <= 0.025 * n_nodes).all()
    # The relation holds for every sentence.
    np.testing.assert_allclose(gensim_scores, exact - rounding - skipped, rtol=0, atol=0.025)
    # No |f| >= 6: agreement to the table's rounding, gensim never above the exact value.
    clean = ~has_skip
    assert clean.sum() >= len(sentences) // 2
    difference = exact[clean] - gensim_scores[clean]
    assert (difference >= -0.025).all() and (difference <= 0.025 * n_nodes[clean] + 0.025).all()
    if scale == 1.0:
        assert not has_skip.any()
    else:
        # Some f <= -6: gensim's score is above the exact log-probability.
        assert has_negative_skip.sum() >= 20
        above = gensim_scores - (exact - rounding)
        assert (above[has_negative_skip] > 6 - 0.025).all()
        assert (gensim_scores[has_negative_skip] > exact[has_negative_skip] + 1).all()


# -- matrix forms (the pipeline component's fast path) and the path kernel ------------------


def test_an_empty_context_is_not_called_out_of_vocabulary_words(hs_model: HSModel) -> None:
    """gensim's API has one warning for an empty and an all-unknown context, and says which it
    can be; the next-word API says the context is empty, and nothing of out-of-vocabulary."""
    with pytest.warns(UserWarning) as record:
        assert hs_model.predict_output_word([]) == []
    assert len(record) == 1
    assert re.match(r"\[W001\] The context \[\] holds no word .* is empty", str(record[0].message))
    with pytest.warns(UserWarning) as record:
        assert hs_model.predict_next([], head="cbow") == []
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("[W002] The context is empty") and "vocabulary" not in message


def test_repr_says_what_the_model_is(hs_model: HSModel) -> None:
    text = repr(hs_model)
    assert text.startswith("<HSModel: ") and f"{len(hs_model):,} words" in text
    assert f"{hs_model.vector_size} dimensions" in text and "CBOW" in text
    assert "no trained head" in text


def test_log_prob_stream_refuses_a_sentence_given_as_one_string(hs_model: HSModel) -> None:
    """``log_prob_stream(["the president"])`` scored the letters t, h, e, ..."""
    from spacy_hs.errors import WrongTypeError

    with pytest.raises(WrongTypeError, match=r"\[E070\] .*'the president'.*\['the', 'president'\]"):
        hs_model.log_prob_stream(["the president"])
    with pytest.raises(WrongTypeError, match=r"\[E070\]"):
        hs_model.log_prob_stream([["the", "fire"], "the fire"])


def test_log_prob_stream_streams_in_chunks(
    hs_model: HSModel, lee_tokens: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator of sentences is scored in bounded chunks (10M tokens peaked at 1.76 GB,
    about 180 bytes per token): the same values as one pass, the cache carried over."""
    import tracemalloc

    import spacy_hs.hs_model as hs_model_module

    sentences = [lee_tokens[i : i + 9] for i in range(0, 3000, 9)]
    ids = np.array(hs_model.ids_or_unknown([w for s in sentences for w in s]), dtype=np.int32)
    lengths = np.array([len(s) for s in sentences])
    cache = {"size": 40, "weight": 0.3}
    whole = hs_model.document(ids, lengths, cache=cache).log_probs()
    monkeypatch.setattr(hs_model_module, "STREAM_CHUNK_TOKENS", 100)
    np.testing.assert_allclose(hs_model.log_prob_stream(iter(sentences), cache=cache), whole)
    monkeypatch.undo()
    n_tokens = 400_000

    def generated():
        for start in range(0, n_tokens, 10):
            offset = start % (len(lee_tokens) - 10)
            yield lee_tokens[offset : offset + 10]

    tracemalloc.start()
    try:
        result = hs_model.log_prob_stream(generated(), cache=cache)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result) == n_tokens
    # The result (8 bytes per token) and its parts, plus one chunk: not ~180 bytes per token.
    assert peak < 24 * n_tokens + 16_000_000, peak
