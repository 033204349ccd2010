"""``spacy_hs/heads/ngram.py``: the hashed n-gram layer (the documented hash, its backprop
against finite differences), the n-gram head trained on the Lee corpus, its sparse table and
the checks of its saved config (version 2, and version 1 still read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import srsly
from gensim.models import Word2Vec
from head_oracles import CONTEXTS, check_gradients, ngram_offsets

from spacy_hs import HSModel
from spacy_hs.errors import ModelFileError
from spacy_hs.heads.ngram import HashedNgram
from spacy_hs.training.head import train_head


def test_layer_adds_the_table_terms_and_backprop_is_the_gradient() -> None:
    """On a tiny model (V = 6, a table of 40, orders 1-2): the logits are the table's slices
    at the documented offsets, and the table's gradient matches finite differences."""
    layer = HashedNgram(orders=2, table_size=40)
    layer.set_dim("nV", 6)
    layer.initialize()
    table = np.random.default_rng(2).normal(size=40).astype(np.float32)
    layer.set_param("ngram_table", table)
    contexts = np.array([[1, 2, 3], [-1, -1, 4], [-1, -1, -1], [4, 4, 4]], dtype=np.int32)
    logits = layer.predict(contexts)
    for row, context in enumerate(contexts.tolist()):
        recent = [w for w in context if w >= 0][::-1] + [6] * 2
        expected = np.zeros(5)
        for offset in ngram_offsets(recent, 2, 6, 40 - 5):
            if offset >= 0:
                expected += table[offset : offset + 5]
        np.testing.assert_allclose(logits[row], expected, rtol=1e-6)
    check_gradients(layer, contexts, ["ngram_table"])
    with pytest.raises(ValueError, match="hash version 2"):
        HashedNgram(orders=2, table_size=40, hash_version=2)


def test_the_layer_offsets_are_the_heads(ngram_headed: HSModel) -> None:
    head, rng = ngram_headed.trained_head, np.random.default_rng(4)
    rows = rng.integers(-1, len(ngram_headed), (200, 5)).astype(np.int32)
    expected = head.node_offsets(rows)
    recent = head.recent_first(rows)
    np.testing.assert_array_equal(
        expected,
        [ngram_offsets(r, head.orders, len(ngram_headed), head.modulus) for r in recent.tolist()],
    )


def test_a_version_1_config_loads_the_same_head(ngram_headed: HSModel, tmp_path: Path) -> None:
    """The flat config that spacy-hs wrote before heads were thinc Models."""
    ngram_headed.to_disk(tmp_path / "model")
    header = srsly.read_json(tmp_path / "model" / "meta.json")
    model = header["head"].pop("model")
    flat = {**model["context"], **model["ngram"]}
    del flat["@architectures"]
    header["head"].update(architecture="spacy_hs.HashedNgramLogBilinear.v1", **flat)
    srsly.write_json(tmp_path / "model" / "meta.json", header)
    loaded = HSModel.from_disk(tmp_path / "model")
    assert loaded.trained_head.config == ngram_headed.trained_head.config
    words = ["the", "minister", "said", "the", "a", "of"]
    np.testing.assert_array_equal(
        loaded.log_prob_next_batch(words, CONTEXTS),
        ngram_headed.log_prob_next_batch(words, CONTEXTS),
    )


def test_ngram_hash_is_the_documented_function(ngram_headed: HSModel) -> None:
    head = ngram_headed.trained_head
    rng = np.random.default_rng(0)
    padding = len(ngram_headed)
    recent = rng.integers(0, padding, (50, head.context_size)).astype(np.int32)
    recent[rng.random(recent.shape) < 0.2] = padding
    from spacy_hs import _tree_search

    found = _tree_search.ngram_bases_matrix(recent, head.orders, padding, head.modulus)
    expected = [ngram_offsets(row, head.orders, padding, head.modulus) for row in recent.tolist()]
    np.testing.assert_array_equal(found, expected)
    assert head.config["model"]["ngram"]["hash_version"] == 1


def test_ngram_features_help(headed: HSModel, ngram_headed: HSModel) -> None:
    assert (
        ngram_headed.meta["head"]["best_heldout_perplexity"]
        < headed.meta["head"]["best_heldout_perplexity"]
    )


def test_ngram_table_is_saved_sparse(ngram_headed: HSModel, tmp_path: Path) -> None:
    ngram_headed.to_disk(tmp_path / "model")
    slots = np.load(tmp_path / "model" / "head.ngram_slots.npy")
    values = np.load(tmp_path / "model" / "head.ngram_values.npy")
    table = ngram_headed.trained_head.table
    assert slots.dtype == np.int32 and values.dtype == np.float16
    assert 0 < len(slots) == np.count_nonzero(table) < len(table) // 2
    np.testing.assert_array_equal(values.astype(np.float32), table[slots])
    assert not (tmp_path / "model" / "head.table.npy").exists()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"hash_version": 2}, "hash version 2"),
        ({"table_size": 1 << 40}, "table size"),
        ({"orders": 9}, "orders 9"),
    ],
)
def test_ngram_config_is_checked(ngram_headed: HSModel, tmp_path: Path, change, match) -> None:
    ngram_headed.to_disk(tmp_path / "model")
    header = srsly.read_json(tmp_path / "model" / "meta.json")
    header["head"]["model"]["ngram"].update(change)
    srsly.write_json(tmp_path / "model" / "meta.json", header)
    with pytest.raises(ModelFileError, match=match):
        HSModel.from_disk(tmp_path / "model")


def test_ngram_slots_are_checked(ngram_headed: HSModel) -> None:
    msg = srsly.msgpack_loads(ngram_headed.to_bytes())
    header = msg["header"]
    slots = np.load(__import__("io").BytesIO(msg["arrays"]["head.ngram_slots"]))
    slots[-1] = len(ngram_headed.trained_head.table)  # one past the table
    import io
    import zlib

    buffer = io.BytesIO()
    np.save(buffer, slots, allow_pickle=False)
    msg["arrays"]["head.ngram_slots"] = buffer.getvalue()
    header["arrays"]["head.ngram_slots"]["crc32"] = zlib.crc32(slots.data)
    with pytest.raises(ModelFileError, match="slots increasing and below the table size"):
        HSModel.from_bytes(srsly.msgpack_dumps(msg))


def test_ngram_settings_are_checked(cbow_gensim: Word2Vec, lee_path: Path) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    with pytest.raises(ValueError, match="ngram_orders = 4 needs context_size >= 4"):
        train_head(model, lee_path, None, context_size=3, ngram_orders=4, progress=False)
    with pytest.raises(ValueError, match="table_size = 10 must be at least the vocabulary"):
        train_head(model, lee_path, None, ngram_orders=2, table_size=10, progress=False)
