"""HSModel: exact hierarchical-softmax probabilities and top-k, checked against independent
computations from gensim's own arrays (``wv.expandos['code']``/``['point']``, ``syn1``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import LEE, train_lee
from gensim.models import FastText, Word2Vec

from spacy_hs import HSModel, _tree_search

N_CONTEXTS = 200


@pytest.fixture(scope="module")
def ns_gensim() -> Word2Vec:
    """HS and negative sampling together (gensim's default negative=5)."""
    return train_lee(sg=0, hs=1, negative=5)


@pytest.fixture(scope="module")
def lee_tokens() -> list[str]:
    return LEE.read_text(encoding="utf8").split()


def gensim_and_model(request: pytest.FixtureRequest, name: str) -> tuple[Word2Vec, HSModel]:
    gensim_model = request.getfixturevalue(name)
    return gensim_model, HSModel.from_gensim(gensim_model)


def random_contexts(model: HSModel, tokens: list[str], n: int, seed: int) -> list[list[str]]:
    """Half uniformly random words (1-6 of them), half real 4-word windows of the corpus."""
    rng = np.random.default_rng(seed)
    contexts = []
    for _ in range(n // 2):
        contexts.append([model.words[i] for i in rng.integers(0, len(model), rng.integers(1, 7))])
    for start in rng.integers(0, len(tokens) - 4, n - n // 2):
        context = tokens[start : start + 4]
        if model.word_ids(context):
            contexts.append(context)
    return contexts


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


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


# -- building from gensim -------------------------------------------------------------


def test_from_gensim_copies_without_rebuilding(cbow_gensim: Word2Vec) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    wv = cbow_gensim.wv
    n_words = len(wv)
    assert model.words == wv.index_to_key
    np.testing.assert_array_equal(
        model.counts, [wv.get_vecattr(i, "count") for i in range(n_words)]
    )
    np.testing.assert_array_equal(model.vectors, wv.vectors)
    np.testing.assert_array_equal(model.inner_node_weights, cbow_gensim.syn1[: n_words - 1])
    for i in (0, n_words // 3, n_words - 1):
        nodes, codes = model.tree.path(i)
        np.testing.assert_array_equal(nodes, wv.expandos["point"][i])
        np.testing.assert_array_equal(codes, wv.expandos["code"][i])
    expected = {"sg": 0, "cbow_mean": 1, "window": 4, "vector_size": 32}
    assert {key: model.settings[key] for key in expected} == expected
    assert model.settings["word2vec"]["hs"] == 1
    # A copy: training gensim further does not change the HS model.
    assert not np.shares_memory(model.vectors, wv.vectors)


def test_from_gensim_without_hs_names_the_fix() -> None:
    gensim_model = train_lee(hs=0, negative=5, epochs=1)
    with pytest.raises(ValueError, match=r"hs=1, negative=0"):
        HSModel.from_gensim(gensim_model)


def test_from_gensim_untrained_model_raises() -> None:
    gensim_model = Word2Vec(vector_size=8, hs=1, negative=0, min_count=1)
    gensim_model.build_vocab([["a", "b", "c"], ["a", "b"]])
    with pytest.raises(ValueError, match="never trained"):
        HSModel.from_gensim(gensim_model)


def test_from_gensim_rejects_other_types(cbow_gensim: Word2Vec) -> None:
    fasttext = FastText(
        corpus_file=str(LEE), vector_size=8, min_count=5, epochs=1, hs=1, negative=0, workers=1
    )
    for wrong in (fasttext, cbow_gensim.wv, "model.bin", None):
        with pytest.raises(TypeError, match="Expected a gensim Word2Vec model"):
            HSModel.from_gensim(wrong)


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


def test_search_does_not_score_the_vocabulary(hs_model: HSModel, lee_tokens: list[str]) -> None:
    """The best-first search expands far fewer inner nodes than the tree has."""
    contexts = [lee_tokens[i : i + 4] for i in range(0, 40_000, 200)]
    hidden, has_context = hs_model.hidden_batch(contexts)
    _, _, expanded = _tree_search.top_k(
        hidden[has_context],
        hs_model.inner_node_weights,
        hs_model.tree.children,
        hs_model.tree.root,
        10,
    )
    assert expanded.min() >= 10 - 1
    assert expanded.mean() < hs_model.tree.n_inner / 5


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


def test_log_prob_hidden_rejects_out_of_range_ids(hs_model: HSModel) -> None:
    hidden = hs_model.hidden(["the"])[None, :]
    with pytest.raises(IndexError, match="out of range"):
        hs_model.log_prob_hidden(hidden, np.array([len(hs_model)]))
    assert np.isnan(hs_model.log_prob_hidden(hidden, np.array([-1]))[0])


# -- batch forms, unknown words, bad arguments ----------------------------------------


def test_batch_forms_equal_single_forms(hs_model: HSModel, lee_tokens: list[str]) -> None:
    contexts = random_contexts(hs_model, lee_tokens, 40, seed=4)
    contexts += [["zzz-unknown"], [], ["zzz-unknown", "the"]]
    words = [w for w in lee_tokens if w in hs_model][: len(contexts)]
    with pytest.warns(UserWarning):
        singles = [hs_model.predict_output_word(c, topn=7) for c in contexts]
    assert hs_model.predict_output_word_batch(contexts, topn=7) == singles
    hidden, has_context = hs_model.hidden_batch(contexts)
    for row, context in enumerate(contexts):
        one = hs_model.hidden(context)
        assert has_context[row] == (one is not None)
        if one is not None:
            np.testing.assert_array_equal(hidden[row], one)
    batch = hs_model.log_prob_batch(words, contexts)
    with pytest.warns(UserWarning):
        single = [hs_model.log_prob(w, c) for w, c in zip(words, contexts)]
    np.testing.assert_array_equal(batch, single)  # NaN where no context word is known
    assert np.isnan(batch[-2]) and np.isnan(batch[-3]) and not np.isnan(batch[-1])


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


def context_matrix(id_lists: list[list[int]], width: int) -> np.ndarray:
    """Contexts as the component passes them: oldest first, right-aligned, -1 padding."""
    matrix = np.full((len(id_lists), width), -1, dtype=np.int32)
    for row, ids in enumerate(id_lists):
        if ids:
            matrix[row, width - len(ids) :] = ids
    return matrix


@pytest.mark.parametrize("cbow_mean", [1, 0])
def test_matrix_forms_equal_list_forms(hs_model: HSModel, cbow_mean: int) -> None:
    """hidden_from_matrix and log_prob_from_matrix give, bit for bit, what hidden_from_ids and
    log_prob_hidden give for the same contexts (NaN in the same places)."""
    model = copy.copy(hs_model)
    model.settings = {**hs_model.settings, "cbow_mean": cbow_mean}
    rng = np.random.default_rng(5)
    id_lists = [rng.integers(0, len(model), rng.integers(0, 7)).tolist() for _ in range(300)]
    matrix = context_matrix(id_lists, 6)
    expected, expected_has_context = model.hidden_from_ids(id_lists)
    assert not expected_has_context.all()  # some contexts are empty
    hidden, has_context = model.hidden_from_matrix(matrix)
    np.testing.assert_array_equal(hidden, expected)
    np.testing.assert_array_equal(has_context, expected_has_context)
    # Padding anywhere in a row is skipped, not only on the left.
    spread = np.full((len(id_lists), 12), -1, dtype=np.int32)
    spread[:, 1::2] = matrix
    np.testing.assert_array_equal(model.hidden_from_matrix(spread)[0], expected)
    words = rng.integers(-1, len(model), len(id_lists))
    got = model.log_prob_from_matrix(matrix, words)
    reference = model.log_prob_hidden(expected, np.where(expected_has_context, words, -1))
    np.testing.assert_array_equal(got, reference)
    unscorable = (words < 0) | ~expected_has_context
    assert np.isnan(got[unscorable]).all() and not np.isnan(got[~unscorable]).any()


def test_matrix_forms_reject_bad_input(hs_model: HSModel) -> None:
    too_large = np.array([[0, len(hs_model)]], dtype=np.int32)
    with pytest.raises(IndexError, match="out of range"):
        hs_model.hidden_from_matrix(too_large)
    with pytest.raises(IndexError, match="out of range"):
        hs_model.log_prob_from_matrix(too_large, np.array([0]))
    with pytest.raises(IndexError, match="out of range"):
        hs_model.log_prob_from_matrix(np.array([[0]]), np.array([len(hs_model)]))
    with pytest.raises(ValueError, match=r"\(B, K\) matrix"):
        hs_model.hidden_from_matrix(np.array([0, 1]))
    empty = np.zeros((0, 4), dtype=np.int32)
    assert hs_model.hidden_from_matrix(empty)[0].shape == (0, hs_model.vector_size)
    assert hs_model.log_prob_from_matrix(empty, np.zeros(0, dtype=np.int32)).shape == (0,)


def test_path_kernel_equals_node_by_node_sum(hs_model: HSModel, lee_tokens: list[str]) -> None:
    """The path kernel sums the log-sigmoids of a path as one log1p of a product; node by node
    in float64 from the same float32 hidden vector and weights gives the same values."""
    contexts = random_contexts(hs_model, lee_tokens, 60, seed=6)
    hidden, _ = hs_model.hidden_batch(contexts)
    words = np.random.default_rng(6).integers(0, len(hs_model), len(contexts))
    got = hs_model.log_prob_hidden(hidden, words)
    for row, word in enumerate(words.tolist()):
        nodes, codes = hs_model.tree.path(word)
        dots = hs_model.inner_node_weights[nodes].astype(np.float64) @ hidden[row]
        expected = log_sigmoid((1.0 - 2.0 * codes) * dots).sum()
        assert got[row] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_very_deep_word_does_not_overflow() -> None:
    """A chain-shaped tree, 1499 nodes deep: the running product of the path's log1p terms
    (2 per node when every dot product is 0) is flushed before it overflows a double."""
    from spacy_hs.tree import HuffmanTree

    n_words = 1500
    points = [list(range(min(w, n_words - 2) + 1)) for w in range(n_words)]
    codes = [[1] * w + [0] if w < n_words - 1 else [1] * (n_words - 1) for w in range(n_words)]
    tree = HuffmanTree.from_paths(points, codes)
    model = HSModel(
        [f"w{i}" for i in range(n_words)],
        np.ones(n_words, dtype=np.int64),
        np.zeros((n_words, 4), dtype=np.float32),
        tree,
        np.zeros((n_words - 1, 4), dtype=np.float32),
    )
    hidden = np.zeros((2, 4), dtype=np.float32)
    deepest = model.log_prob_hidden(hidden, np.array([n_words - 1, 3]))
    np.testing.assert_allclose(deepest, [-(n_words - 1) * np.log(2), -4 * np.log(2)], rtol=1e-12)
    got = model.log_prob_from_matrix(np.array([[0, 1]], dtype=np.int32), np.array([n_words - 1]))
    np.testing.assert_array_equal(got, deepest[:1])
    ids, log_probs = model.top_k_hidden(hidden[:1], 3)
    assert ids.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(log_probs, [[-np.log(2), -2 * np.log(2), -3 * np.log(2)]])


def test_an_empty_context_is_not_called_out_of_vocabulary_words(hs_model: HSModel) -> None:
    with pytest.warns(UserWarning, match=r"\[W001\] The context \[\] holds no word .* is empty"):
        assert hs_model.predict_output_word([]) is None or not hs_model.predict_output_word([])


def test_repr_says_what_the_model_is(hs_model: HSModel) -> None:
    text = repr(hs_model)
    assert text.startswith("<HSModel: ") and f"{len(hs_model):,} words" in text
    assert f"{hs_model.vector_size} dimensions" in text and "CBOW" in text
    assert "no trained head" in text
