"""The directional next-word head: thinc layers, training, exact queries, serialization."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import srsly
from gensim.models import Word2Vec

from spacy_hs import HSModel, HuffmanTree
from spacy_hs.errors import InputError, MissingModelFileError, ModelFileError
from spacy_hs.heads.directional import DirectionalHead
from spacy_hs.heads.layers import HierarchicalLogBilinear, LogBilinearContext, TreeLogLikelihood
from spacy_hs.training.head import attach_head, read_sentences, train_head

HEAD_TRAINING = dict(epochs=2, seed=0, workers=1, progress=False)


@pytest.fixture(scope="module")
def headed(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    """An HS model of the Lee corpus with a directional head trained briefly on it."""
    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(model, lee_path, None, context_size=3, **HEAD_TRAINING)
    attach_head(model, head)
    assert head is model.head
    return model


# -- the thinc model ----------------------------------------------------------------------------


def tiny_tree() -> HuffmanTree:
    """5 words, 4 inner nodes: root 0 -> (1, 2); 1 -> (w0, w1); 2 -> (3, w2); 3 -> (w3, w4)."""
    points = [[0, 1], [0, 1], [0, 2], [0, 2, 3], [0, 2, 3]]
    codes = [[0, 0], [0, 1], [1, 1], [1, 0, 0], [1, 0, 1]]
    return HuffmanTree.from_paths(points, codes)


@pytest.mark.parametrize("diagonal", [True, False])
def test_gradients_match_finite_differences(diagonal: bool) -> None:
    tree, size = tiny_tree(), 2
    rng = np.random.default_rng(0)
    model = HierarchicalLogBilinear(
        LogBilinearContext(context_size=size, diagonal=diagonal, vectors=rng.normal(size=(5, 3))),
        TreeLogLikelihood(
            tree.path_offsets, tree.path_nodes, tree.path_codes, weights=rng.normal(size=(4, 4))
        ),
    )
    model.initialize()
    for node in model.walk():  # float64 and away from the symmetric initial values
        for name in node.param_names:
            param = node.get_param(name)
            node.set_param(name, param + rng.normal(0, 0.5, param.shape))
    contexts = np.array([[0, 5], [5, 5], [3, 1], [4, 4], [2, 0], [1, 3]])  # 5 = padding
    targets = np.array([3, 0, 4, 2, 1, 3])
    d_log_probs = rng.normal(size=len(targets))
    log_probs, backprop = model((contexts, targets), is_train=True)
    backprop(d_log_probs)

    def objective() -> float:
        return float(model.predict((contexts, targets)) @ d_log_probs)

    for node in model.walk():
        for name in node.param_names:
            param, grad = node.get_param(name), node.get_grad(name)
            numeric = np.zeros_like(param)
            for index in np.ndindex(param.shape):
                old = param[index]
                param[index] = old + 1e-6
                above = objective()
                param[index] = old - 1e-6
                below = objective()
                param[index] = old
                numeric[index] = (above - below) / 2e-6
            np.testing.assert_allclose(grad, numeric, atol=1e-7, err_msg=f"{node.name}.{name}")


def test_tree_log_likelihood_is_the_hs_model_math(headed: HSModel) -> None:
    head = headed.head
    contexts = [["the"], ["in", "the"], [], ["said", "the", "prime"]]
    words = ["government", "minister", "the", "minister"]
    ids = [headed.word_ids(c)[-head.context_size :] for c in contexts]
    targets = np.array(headed.word_ids(words))
    thinc_log_probs = head.model.predict((head.context_matrix(ids), targets))
    expected = headed.log_prob_next_batch(words, contexts, head="directional")
    np.testing.assert_allclose(thinc_log_probs, expected, rtol=1e-5)


# -- training -----------------------------------------------------------------------------------


def test_training_lowers_heldout_perplexity(headed: HSModel) -> None:
    history = headed.meta["head"]
    assert history["best_heldout_perplexity"] < 0.8 * history["initial_heldout_perplexity"]
    assert len(history["loss_history"]) == len(history["heldout_perplexity"]) >= 1
    assert history["n_heldout_tokens"] > 0 and history["tokens_per_second"] > 0


def test_directional_head_beats_cbow_head_on_next_words(headed: HSModel, lee_path: Path) -> None:
    sentences, _ = read_sentences(lee_path, headed.key_to_index)
    contexts, words = [], []
    for ids in sentences[:40]:
        for t in range(1, len(ids)):
            contexts.append(ids[max(0, t - 5) : t].tolist())
            words.append(int(ids[t]))
    directional = headed.log_prob_next_batch(words, contexts, head="directional").mean()
    cbow = headed.log_prob_next_batch(words, contexts, head="cbow").mean()
    assert directional > cbow


def test_vectors_exported_to_spacy_stay_gensims(cbow_gensim: Word2Vec, lee_path: Path) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    attach_head(model, train_head(model, lee_path, None, **{**HEAD_TRAINING, "epochs": 1}))
    np.testing.assert_array_equal(model.vectors, cbow_gensim.wv.vectors)
    tuned = model.head.to_arrays()["input_vectors"]
    assert not np.array_equal(tuned, model.vectors)
    exported = HSModel.from_gensim(cbow_gensim)
    head = train_head(exported, lee_path, None, **HEAD_TRAINING)
    with pytest.warns(UserWarning, match=r"\[W021\] .*CBOW-style head"):
        attach_head(exported, head, export_fine_tuned_vectors=True)
    np.testing.assert_array_equal(exported.vectors, exported.head.to_arrays()["input_vectors"])


def test_replaced_vectors_are_checked(hs_model: HSModel) -> None:
    """attach_head(export_fine_tuned_vectors=True) assigned model.vectors directly, past the
    constructor's checks; set_vectors checks shape and values."""
    model = HSModel.from_bytes(hs_model.to_bytes())
    with pytest.raises(InputError, match=r"\[E006\] vectors has shape \(3, 4\)"):
        model.set_vectors(np.zeros((3, 4), dtype=np.float32))
    bad = model.vectors.copy()
    bad[5, 1] = np.nan
    with pytest.raises(InputError, match=r"\[E073\] .* 1 NaN"):
        model.set_vectors(bad)
    model.set_vectors(model.vectors.astype(np.float64) * 2)
    assert model.vectors.dtype == np.float32
    np.testing.assert_array_equal(model.vectors, hs_model.vectors * 2)


def test_training_errors(cbow_gensim: Word2Vec, lee_path: Path, tmp_path: Path) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    with pytest.raises(ValueError, match="eos_token '<eos>' is not in the model's vocabulary"):
        train_head(model, lee_path, None, eos_token="<eos>", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_head(model, tmp_path / "missing.txt", None, progress=False)
    with pytest.raises(ValueError, match="head.context_size must be a positive integer, got 0"):
        train_head(model, lee_path, None, context_size=0, progress=False)
    with pytest.raises(ValueError, match=r"head.lr_decay must be a number in \(0, 1\], got 2"):
        train_head(model, lee_path, None, lr_decay=2, progress=False)
    with pytest.raises(ValueError, match="head.optimizer must be 'adagrad' or 'sgd', got 'adam'"):
        train_head(model, lee_path, None, optimizer="adam", progress=False)
    with pytest.raises(ValueError, match="head.workers must be an integer >= 0, got -1"):
        train_head(model, lee_path, None, workers=-1, progress=False)
    with pytest.raises(ValueError, match=r"head.l2 must be a number >= 0, got -1"):
        train_head(model, lee_path, None, l2=-1, progress=False)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("zzqx qqzx\n", encoding="utf8")
    with pytest.raises(ValueError, match="Not enough text to train the directional head"):
        train_head(model, unknown, None, progress=False)
    assert train_head(model, lee_path, None, enabled=False) is None
    assert model.head is None


# -- exact queries ------------------------------------------------------------------------------


CONTEXTS = [["the"], ["said", "the"], ["prime", "minister", "john"], [], ["zzqx"], ["in", "zzqx"]]


def test_probabilities_sum_to_one(headed: HSModel) -> None:
    head = headed.head
    hidden, has_context = head.hidden_from_ids([headed.word_ids(c) for c in CONTEXTS])
    assert has_context.all()  # an empty context is a sentence start, not a missing one
    log_probs = headed.log_probabilities_hidden(hidden, head.output_weights)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-6)


def brute_force_log_probs(model: HSModel, hidden: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log P(w | hidden) of every word by summing each word's path in float64 numpy."""
    dots = hidden.astype(np.float64) @ weights.astype(np.float64).T  # (B, n_inner)
    tree = model.tree
    margins = (1.0 - 2.0 * tree.path_codes) * dots[:, tree.path_nodes]
    steps = np.minimum(margins, 0) - np.log1p(np.exp(-np.abs(margins)))
    return np.add.reduceat(steps, tree.path_offsets[:-1], axis=1)


@pytest.mark.parametrize("context", CONTEXTS)
def test_top_k_is_exact(headed: HSModel, context: list[str]) -> None:
    head = headed.head
    hidden, _ = head.hidden_from_ids([headed.word_ids(context)[-head.context_size :]])
    brute = brute_force_log_probs(headed, hidden, head.output_weights)[0]
    np.testing.assert_allclose(
        brute, headed.log_probabilities_hidden(hidden, head.output_weights)[0], atol=1e-5
    )
    expected = np.argsort(-brute, kind="stable")[:25]
    found = headed.predict_next(context, topn=25, head="directional")
    assert [w for w, _ in found] == [headed.words[i] for i in expected]
    # The kernels sum float32 products (relative error ~1e-7, see _tree_search.pyx).
    np.testing.assert_allclose([p for _, p in found], np.exp(brute[expected]), rtol=1e-6)
    assert headed.predict_next(context, topn=25) == found  # "auto" picks the head
    word = found[3][0]
    log_prob = headed.log_prob_next(word, context)
    assert log_prob == pytest.approx(brute[headed.key_to_index[word]], rel=1e-6)


def test_only_the_last_k_known_words_count(headed: HSModel) -> None:
    short = headed.predict_next(["the", "prime", "minister"], topn=5)
    long = headed.predict_next(["storm", "zzqx", "the", "zzqx", "prime", "minister"], topn=5)
    assert short == long
    assert headed.predict_next(["prime", "minister"], topn=5) != short  # padded: a new sentence


def test_predictor_without_head_errors(hs_model: HSModel) -> None:
    assert hs_model.head is None
    with pytest.raises(ValueError, match="no directional next-word head"):
        hs_model.predictor("directional")
    with pytest.raises(ValueError, match="no directional next-word head"):
        hs_model.predict_next(["the"], head="directional")
    assert hs_model.predictor("auto").name == "cbow"


# -- serialization ------------------------------------------------------------------------------


def assert_same_predictions(a: HSModel, b: HSModel) -> None:
    assert b.head is not None and b.head.config == a.head.config
    for name, array in a.head.to_arrays().items():
        np.testing.assert_array_equal(b.head.to_arrays()[name], array)
    assert b.predict_next_batch(CONTEXTS, topn=10) == a.predict_next_batch(CONTEXTS, topn=10)
    words = ["the", "minister", "said", "the", "a", "of"]
    np.testing.assert_array_equal(
        b.log_prob_next_batch(words, CONTEXTS), a.log_prob_next_batch(words, CONTEXTS)
    )
    assert b.meta["head"].keys() == a.meta["head"].keys()
    assert b.meta["head"]["best_epoch"] == a.meta["head"]["best_epoch"]


def test_round_trip_disk(headed: HSModel, tmp_path: Path) -> None:
    headed.to_disk(tmp_path / "model")
    assert (tmp_path / "model" / "head.output_weights.npy").exists()
    assert srsly.read_json(tmp_path / "model" / "meta.json")["head"]["context_size"] == 3
    assert_same_predictions(headed, HSModel.from_disk(tmp_path / "model"))


def test_round_trip_bytes(headed: HSModel) -> None:
    assert_same_predictions(headed, HSModel.from_bytes(headed.to_bytes()))


def test_model_without_head_stores_no_head_files(hs_model: HSModel, tmp_path: Path) -> None:
    hs_model.to_disk(tmp_path / "model")
    assert not list((tmp_path / "model").glob("head.*"))
    assert HSModel.from_disk(tmp_path / "model").head is None


@pytest.fixture
def saved(headed: HSModel, tmp_path: Path) -> Path:
    headed.to_disk(tmp_path / "model")
    return tmp_path / "model"


def test_missing_head_file_errors(saved: Path) -> None:
    (saved / "head.position_weights.npy").unlink()
    with pytest.raises(MissingModelFileError, match=r"Missing model file .*head\.position_weights"):
        HSModel.from_disk(saved)


def test_corrupt_head_file_errors(saved: Path) -> None:
    file = saved / "head.output_weights.npy"
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"head\.output_weights"):
        HSModel.from_disk(saved)


def test_head_config_mismatch_errors(saved: Path, tmp_path: Path) -> None:
    header = srsly.read_json(saved / "meta.json")
    header["head"]["context_size"] = 4  # the position weights are (3, d)
    srsly.write_json(saved / "meta.json", header)
    with pytest.raises(ModelFileError, match="directional head that cannot be loaded"):
        HSModel.from_disk(saved)
    other = tmp_path / "other"
    shutil.copytree(saved, other)
    header["head"] = {**header["head"], "context_size": 3, "architecture": "Other.v9"}
    srsly.write_json(other / "meta.json", header)
    with pytest.raises(ModelFileError, match="unknown head architecture 'Other.v9'"):
        HSModel.from_disk(other)


def test_corrupt_head_bytes_error(headed: HSModel) -> None:
    msg = srsly.msgpack_loads(headed.to_bytes())
    del msg["arrays"]["head.hidden_bias"]
    with pytest.raises(ModelFileError, match=r"head\.hidden_bias"):
        HSModel.from_bytes(srsly.msgpack_dumps(msg))


def test_head_from_arrays_rejects_other_models(headed: HSModel) -> None:
    n = 50
    smaller = HSModel(
        headed.words[:n],
        headed.counts[:n],
        headed.vectors[:n],
        _tree_of(n),
        headed.inner_node_weights[: n - 1],
    )
    with pytest.raises(ValueError, match="head array input_vectors has shape"):
        DirectionalHead.from_arrays(headed.head.config, headed.head.to_arrays(), smaller)


def _tree_of(n_words: int) -> HuffmanTree:
    """A left-leaning binary tree (a path per word) over n_words words."""
    points, codes = [], []
    for word in range(n_words):
        depth = min(word + 1, n_words - 1)
        points.append(list(range(depth)))
        codes.append([1] * (depth - 1) + [0 if word < n_words - 1 else 1])
    return HuffmanTree.from_paths(points, codes)


def test_matrix_forms_equal_the_list_form(headed: HSModel) -> None:
    """The protocol's matrix methods (the component's vectorised path) give what the list form
    gives for the same words, whether padding is on the left or anywhere in the row."""
    head = headed.head
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(headed), (40, 6)).astype(np.int32)
    rows[rng.random(rows.shape) < 0.3] = -1
    left = np.full_like(rows, -1)  # the same words, right-aligned
    lists = [[i for i in row if i >= 0] for row in rows.tolist()]
    for b, words in enumerate(lists):
        if words:
            left[b, -len(words) :] = words
    expected, _ = head.hidden_from_ids(lists)
    targets = rng.integers(0, len(headed), 40).astype(np.int32)
    for matrix in (rows, left):
        hidden, has_context = head.hidden_from_matrix(matrix)
        np.testing.assert_array_equal(hidden, expected)
        assert has_context.all()
        # The fused kernel builds each hidden vector as the numpy pass does: equal values.
        np.testing.assert_array_equal(
            head.log_prob_from_matrix(matrix, targets),
            headed.log_prob_hidden(expected, targets, head.output_weights),
        )
    targets[::2] = -1
    assert np.isnan(head.log_prob_from_matrix(rows, targets)[::2]).all()
