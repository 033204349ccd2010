"""gensim's CBOW-style head (``heads/cbow.py``): its hidden vector in every form (lists of ids,
a matrix, one context), the fused log-probability pass, and the path scores, checked against
each other bit for bit and against node-by-node sums in float64."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import log_sigmoid, random_contexts
from head_oracles import brute_force, check_gradients
from thinc.model import Model

from spacy_hs import HSModel, _tree_search
from spacy_hs.heads.base import TreeHead, bind, build_model, context_matrix
from spacy_hs.heads.cbow import (
    CBOWContext,
    CBOWHead,
    hidden_from_ids,
    hidden_from_matrix,
    log_prob_from_matrix,
)
from spacy_hs.heads.output import TreeOutput
from spacy_hs.tree import HuffmanTree


def path_log_probs(model: HSModel, hidden: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
    """The compiled path scores of given hidden vectors, with the model's inner-node weights."""
    tree = model.tree
    return _tree_search.path_log_probs(
        np.ascontiguousarray(hidden, dtype=np.float32),
        np.ascontiguousarray(word_ids, dtype=np.int32),
        model.inner_node_weights,
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
    )


def test_the_head_reads_the_last_window_known_words(hs_model: HSModel) -> None:
    head = hs_model.head("cbow")
    assert isinstance(head, CBOWHead) and head.context_size == hs_model.settings["window"]
    ids = hs_model.word_ids(["the", "government", "said", "on", "police", "fire"])
    matrix = context_matrix([ids], len(ids))
    recent = context_matrix([ids[-head.context_size :]], head.context_size)
    np.testing.assert_array_equal(head.hidden(matrix)[0], hidden_from_matrix(hs_model, recent)[0])
    wide = CBOWHead(hs_model, context_size=len(ids))
    np.testing.assert_array_equal(wide.hidden(matrix)[0], hidden_from_ids(hs_model, [ids])[0])
    assert not np.array_equal(wide.hidden(matrix)[0], head.hidden(matrix)[0])


@pytest.mark.parametrize("cbow_mean", [1, 0])
def test_the_head_is_a_thinc_chain_whose_forward_gives_its_log_probs(
    hs_model: HSModel, cbow_mean: int
) -> None:
    """The head holds ``chain(CBOWContext, TreeOutput)`` (``spacy_hs.CBOWHead.v1``), its parts
    reached by ``get_ref``, their params the HS model's arrays (nothing of its own to save); the
    node logits of its forward give, along each word's path, the head's log-probabilities, and
    its config's model section builds the same Model."""
    model = copy.copy(hs_model)
    model.settings = {**hs_model.settings, "cbow_mean": cbow_mean}
    head = CBOWHead(model, context_size=4)
    chained = head.model
    assert isinstance(chained, Model) and set(chained.ref_names) == {"context", "output"}
    context, output = chained.get_ref("context"), chained.get_ref("output")
    assert chained.layers == [context, output] and head.context is context
    assert context.name == CBOWContext(window=1).name and output.name == TreeOutput().name
    assert context.attrs["context_size"] == head.context_size == 4
    assert context.attrs["mean"] is bool(cbow_mean)
    assert context.get_param("input_vectors") is model.vectors
    assert output.get_param("output_weights") is model.inner_node_weights is head.output_weights
    assert output.get_dim("nI") == model.vector_size and output.get_dim("nO") == len(model) - 1
    assert head.to_arrays() == {}
    rng = np.random.default_rng(7)
    contexts = rng.integers(-1, len(model), (30, 6)).astype(np.int32)
    contexts[0] = -1  # no context: the head scores NaN
    logits = chained.predict(contexts)
    assert logits.shape == (30, len(model) - 1)
    hidden, has_context = head.hidden(contexts)
    np.testing.assert_array_equal(context.predict(contexts), hidden)
    assert has_context.tolist() == [False] + [True] * 29
    expected = np.array([brute_force(model, row.astype(np.float64)) for row in logits])
    log_probs = head.log_probabilities(contexts)
    assert np.isnan(log_probs[0]).all()
    np.testing.assert_allclose(log_probs[1:], expected[1:], rtol=1e-5, atol=1e-5)
    words = rng.integers(0, len(model), 30)
    np.testing.assert_allclose(
        head.log_prob(contexts, words)[1:], expected[np.arange(30), words][1:], rtol=1e-5
    )
    built = build_model(head.config["model"])
    bind(built, model)
    built.initialize()
    np.testing.assert_array_equal(built.predict(contexts), logits)
    assert CBOWHead.from_arrays(head.config, {}, model).config == head.config


def test_batch_and_single_hidden_vectors_are_equal(
    hs_model: HSModel, lee_tokens: list[str]
) -> None:
    contexts = random_contexts(hs_model, lee_tokens, 40, seed=4) + [["zzz-unknown"], []]
    id_lists = [hs_model.word_ids(context) for context in contexts]
    hidden, has_context = hidden_from_ids(hs_model, id_lists)
    for row, ids in enumerate(id_lists):
        one, one_has_context = hidden_from_ids(hs_model, [ids])
        assert has_context[row] == one_has_context[0] == bool(ids)
        np.testing.assert_array_equal(hidden[row], one[0])
    assert not hidden[-1].any() and not hidden[-2].any()


@pytest.mark.parametrize("cbow_mean", [1, 0])
def test_matrix_forms_equal_list_forms(hs_model: HSModel, cbow_mean: int) -> None:
    """hidden_from_matrix, log_prob_from_matrix and the head's fused log_prob give, bit for
    bit, what hidden_from_ids and the path scores give for the same contexts (NaN in the same
    places)."""
    model = copy.copy(hs_model)
    model.settings = {**hs_model.settings, "cbow_mean": cbow_mean}
    rng = np.random.default_rng(5)
    id_lists = [rng.integers(0, len(model), rng.integers(0, 7)).tolist() for _ in range(300)]
    matrix = context_matrix(id_lists, 6)
    expected, expected_has_context = hidden_from_ids(model, id_lists)
    assert not expected_has_context.all()  # some contexts are empty
    hidden, has_context = hidden_from_matrix(model, matrix)
    np.testing.assert_array_equal(hidden, expected)
    np.testing.assert_array_equal(has_context, expected_has_context)
    # Padding anywhere in a row is skipped, not only on the left.
    spread = np.full((len(id_lists), 12), -1, dtype=np.int32)
    spread[:, 1::2] = matrix
    np.testing.assert_array_equal(hidden_from_matrix(model, spread)[0], expected)
    words = rng.integers(-1, len(model), len(id_lists))
    got = log_prob_from_matrix(model, matrix, words)
    reference = path_log_probs(model, expected, np.where(expected_has_context, words, -1))
    np.testing.assert_array_equal(got, reference)
    unscorable = (words < 0) | ~expected_has_context
    assert np.isnan(got[unscorable]).all() and not np.isnan(got[~unscorable]).any()
    # The head's fused log_prob is the generic TreeHead.log_prob (hidden, then path scores).
    head = CBOWHead(model, context_size=6)
    np.testing.assert_array_equal(head.log_prob(matrix, words), got)
    np.testing.assert_array_equal(TreeHead.log_prob(head, matrix, words), got)


def test_matrix_forms_reject_bad_input(hs_model: HSModel) -> None:
    too_large = np.array([[0, len(hs_model)]], dtype=np.int32)
    with pytest.raises(IndexError, match="out of range"):
        hidden_from_matrix(hs_model, too_large)
    with pytest.raises(IndexError, match="out of range"):
        log_prob_from_matrix(hs_model, too_large, np.array([0]))
    with pytest.raises(IndexError, match="out of range"):
        log_prob_from_matrix(hs_model, np.array([[0]]), np.array([len(hs_model)]))
    with pytest.raises(IndexError, match="out of range"):
        hs_model.head("cbow").log_prob(np.array([[0]]), np.array([len(hs_model)]))
    with pytest.raises(ValueError, match=r"\(B, K\) matrix"):
        hidden_from_matrix(hs_model, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[E022\]"):
        hs_model.head("cbow").log_prob(np.array([[0]]), np.array([0, 1]))
    empty = np.zeros((0, 4), dtype=np.int32)
    assert hidden_from_matrix(hs_model, empty)[0].shape == (0, hs_model.vector_size)
    assert log_prob_from_matrix(hs_model, empty, np.zeros(0, dtype=np.int32)).shape == (0,)
    assert np.isnan(hs_model.head("cbow").log_prob(np.array([[0]]), np.array([-1]))[0])


def test_path_kernel_equals_node_by_node_sum(hs_model: HSModel, lee_tokens: list[str]) -> None:
    """The path kernel sums the log-sigmoids of a path as one log1p of a product; node by node
    in float64 from the same float32 hidden vector and weights gives the same values."""
    contexts = random_contexts(hs_model, lee_tokens, 60, seed=6)
    id_lists = [hs_model.word_ids(context) for context in contexts]
    hidden, _ = hidden_from_ids(hs_model, id_lists)
    words = np.random.default_rng(6).integers(0, len(hs_model), len(contexts))
    head = CBOWHead(hs_model, context_size=max(map(len, id_lists)))
    got = head.log_prob(context_matrix(id_lists, head.context_size), words)
    for row, word in enumerate(words.tolist()):
        nodes, codes = hs_model.tree.path(word)
        dots = hs_model.inner_node_weights[nodes].astype(np.float64) @ hidden[row]
        expected = log_sigmoid((1.0 - 2.0 * codes) * dots).sum()
        assert got[row] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_search_does_not_score_the_vocabulary(hs_model: HSModel, lee_tokens: list[str]) -> None:
    """The best-first search expands far fewer inner nodes than the tree has."""
    contexts = [lee_tokens[i : i + 4] for i in range(0, 40_000, 200)]
    hidden, has_context = hidden_from_ids(hs_model, [hs_model.word_ids(c) for c in contexts])
    _, _, expanded = _tree_search.top_k(
        hidden[has_context],
        hs_model.inner_node_weights,
        hs_model.tree.children,
        hs_model.tree.root,
        10,
    )
    assert expanded.min() >= 10 - 1
    assert expanded.mean() < hs_model.tree.n_inner / 5


def test_one_context_top_k_equals_the_batch_search(hs_model: HSModel) -> None:
    ids = hs_model.word_ids(["the", "government", "said"])
    head = CBOWHead(hs_model, context_size=len(ids))
    one_ids, one_log_probs = head.top_k_of_ids(ids, 12)
    batch_ids, batch_log_probs = head.top_k(context_matrix([ids], len(ids)), 12)
    np.testing.assert_array_equal(one_ids, batch_ids[0])
    np.testing.assert_array_equal(one_log_probs, batch_log_probs[0])


def test_very_deep_word_does_not_overflow() -> None:
    """A chain-shaped tree, 1499 nodes deep: the running product of the path's log1p terms
    (2 per node when every dot product is 0) is flushed before it overflows a double."""
    n_words = 1500
    points = [list(range(min(w, n_words - 2) + 1)) for w in range(n_words)]
    codes = [[1] * w + [0] if w < n_words - 1 else [1] * (n_words - 1) for w in range(n_words)]
    tree = HuffmanTree.from_paths(points, codes)
    model = HSModel(
        [f"w{i}" for i in range(n_words)],
        np.ones(n_words, dtype=np.int64),
        np.zeros((n_words, 4), dtype=np.float32),  # every hidden vector is 0
        tree,
        np.zeros((n_words - 1, 4), dtype=np.float32),
    )
    head = CBOWHead(model, context_size=2)
    contexts = np.array([[0, 1], [0, 1]], dtype=np.int32)
    deepest = head.log_prob(contexts, np.array([n_words - 1, 3]))
    np.testing.assert_allclose(deepest, [-(n_words - 1) * np.log(2), -4 * np.log(2)], rtol=1e-12)
    hidden = np.zeros((1, 4), dtype=np.float32)
    np.testing.assert_array_equal(
        path_log_probs(model, hidden, np.array([n_words - 1])), deepest[:1]
    )
    ids, log_probs = head.top_k(contexts[:1], 3)
    assert ids.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(log_probs, [[-np.log(2), -2 * np.log(2), -3 * np.log(2)]])


@pytest.mark.parametrize("mean", [True, False])
def test_context_layer_backprop_is_the_gradient(mean: bool) -> None:
    layer = CBOWContext(window=2, mean=mean)
    rng = np.random.default_rng(3)
    layer.set_param("input_vectors", rng.normal(size=(6, 3)).astype(np.float32))
    layer.initialize()
    contexts = np.array([[1, 1, 2], [-1, -1, 4], [-1, -1, -1], [0, -1, 5]], dtype=np.int32)
    hidden = layer.predict(contexts)
    vectors = layer.get_param("input_vectors")
    expected = (vectors[1] + vectors[2]) / (2 if mean else 1)  # the last two known words
    np.testing.assert_allclose(hidden[0], expected, rtol=1e-6)
    assert not hidden[2].any()  # no known word
    check_gradients(layer, contexts, ["input_vectors"])
