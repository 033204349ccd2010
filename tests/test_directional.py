"""``spacy_hs/heads/directional.py``: the log-bilinear context layer (its backprop against finite
differences), the directional head trained on the Lee corpus, its fused scoring pass, and its
saved config (version 2, and version 1 still read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import srsly
from gensim.models import Word2Vec
from head_oracles import CONTEXTS, HEAD_TRAINING, check_gradients

from spacy_hs import HSModel, HuffmanTree
from spacy_hs.errors import InputError
from spacy_hs.heads.directional import DirectionalHead, LogBilinearContext
from spacy_hs.training.head import attach_head, read_sentences, train_head


@pytest.mark.parametrize("diagonal", [True, False])
def test_context_layer_backprop_is_the_gradient(diagonal: bool) -> None:
    """On a tiny model (V = 7, d = 3, K = 2): every param's gradient against finite
    differences; repeated words and sentence starts (padding) included."""
    layer = LogBilinearContext(context_size=2, width=3, diagonal=diagonal)
    layer.set_dim("nV", 7)
    layer.initialize()
    rng = np.random.default_rng(1)
    for name in layer.param_names:
        shape = layer.get_param(name).shape
        layer.set_param(name, rng.normal(size=shape).astype(np.float32))
    contexts = np.array([[3, 3], [-1, 5], [-1, -1], [6, 0], [2, -1]], dtype=np.int32)
    assert layer.predict(contexts).shape == (5, 4) and (layer.predict(contexts)[:, 3] == 1).all()
    check_gradients(layer, contexts, layer.param_names)


def test_the_model_holds_the_heads_arrays(headed: HSModel) -> None:
    head = headed.trained_head
    assert head.arrays["position_weights"] is head.context.get_param("position_weights")
    assert set(head.to_arrays()) == set(head.arrays)
    assert head.context.get_dim("nE") == headed.vector_size
    assert head.context.get_dim("nO") == headed.vector_size + 1


def test_saved_config_names_the_architectures(headed: HSModel) -> None:
    config = headed.trained_head.config
    assert config["architecture"] == "spacy_hs.HierarchicalLogBilinear.v2"
    assert config["model"] == {
        "@architectures": "spacy_hs.LogBilinearHead.v1",
        "context": {
            "@architectures": "spacy_hs.LogBilinearContext.v1",
            "context_size": 3,
            "width": headed.vector_size,
            "diagonal": True,
        },
    }


def test_a_version_1_config_loads_the_same_head(headed: HSModel, tmp_path: Path) -> None:
    """The flat config that spacy-hs wrote before heads were thinc Models."""
    headed.to_disk(tmp_path / "model")
    header = srsly.read_json(tmp_path / "model" / "meta.json")
    context = header["head"].pop("model")["context"]
    del context["@architectures"]
    header["head"].update(architecture="spacy_hs.HierarchicalLogBilinear.v1", **context)
    srsly.write_json(tmp_path / "model" / "meta.json", header)
    loaded = HSModel.from_disk(tmp_path / "model")
    assert loaded.trained_head.config == headed.trained_head.config  # saved again as version 2
    words = ["the", "minister", "said", "the", "a", "of"]
    np.testing.assert_array_equal(
        loaded.log_prob_next_batch(words, CONTEXTS), headed.log_prob_next_batch(words, CONTEXTS)
    )


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
    head = train_head(model, lee_path, None, **{**HEAD_TRAINING, "epochs": 1})
    attach_head(model, head, export_fine_tuned_vectors=False)
    np.testing.assert_array_equal(model.vectors, cbow_gensim.wv.vectors)
    tuned = model.trained_head.arrays["input_vectors"]
    assert not np.array_equal(tuned, model.vectors)
    exported = HSModel.from_gensim(cbow_gensim)
    head = train_head(exported, lee_path, None, **HEAD_TRAINING)
    with pytest.warns(UserWarning, match=r"\[W021\] .*CBOW-style head"):
        attach_head(exported, head, export_fine_tuned_vectors=True)
    np.testing.assert_array_equal(exported.vectors, exported.trained_head.arrays["input_vectors"])


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
    with pytest.raises(ValueError, match="head.context_size must be an integer from 1 to 256, got"):
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
    assert model.trained_head is None


def test_only_the_last_k_known_words_count(headed: HSModel) -> None:
    short = headed.predict_next(["the", "prime", "minister"], top_k=5)
    long = headed.predict_next(["storm", "zzqx", "the", "zzqx", "prime", "minister"], top_k=5)
    assert short == long
    assert headed.predict_next(["prime", "minister"], top_k=5) != short  # padded: a new sentence


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
        DirectionalHead.from_arrays(
            headed.trained_head.config, headed.trained_head.to_arrays(), smaller
        )


def _tree_of(n_words: int) -> HuffmanTree:
    """A left-leaning binary tree (a path per word) over n_words words."""
    points, codes = [], []
    for word in range(n_words):
        depth = min(word + 1, n_words - 1)
        points.append(list(range(depth)))
        codes.append([1] * (depth - 1) + [0 if word < n_words - 1 else 1])
    return HuffmanTree.from_paths(points, codes)


def test_the_fused_pass_is_the_stored_hidden_pass(any_headed: HSModel) -> None:
    """``log_prob``'s one compiled pass gives, bit for bit, what the hidden vectors, n-gram
    offsets and path kernel give when stored (``TreeHead.log_prob``)."""
    from spacy_hs.heads.base import TreeHead

    head, rng = any_headed.trained_head, np.random.default_rng(5)
    rows = rng.integers(-1, len(any_headed), (300, 4)).astype(np.int32)
    targets = rng.integers(-1, len(any_headed), 300).astype(np.int32)
    np.testing.assert_array_equal(
        head.log_prob(rows, targets), TreeHead.log_prob(head, rows, targets)
    )
