"""The tree heads: the directional head and the n-gram head; training, exact queries against
brute force and numpy oracles, the n-gram hash, serialization."""

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
from spacy_hs.heads.ngram import NgramHead
from spacy_hs.training.head import attach_head, read_sentences, train_head

HEAD_TRAINING = dict(epochs=2, seed=0, workers=1, progress=False)
NGRAM = dict(ngram_orders=3, table_size=1 << 21, optimizer="sgd", learn_rate=0.02)


@pytest.fixture(scope="module")
def headed(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    """An HS model of the Lee corpus with a directional head trained briefly on it."""
    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(model, lee_path, None, context_size=3, ngram_orders=0, **HEAD_TRAINING)
    attach_head(model, head)
    assert head is model.trained_head and head.name == "directional"
    return model


@pytest.fixture(scope="module")
def ngram_headed(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    """The same with an n-gram head (orders 1-3, a small table)."""
    model = HSModel.from_gensim(cbow_gensim)
    attach_head(model, train_head(model, lee_path, None, context_size=3, **HEAD_TRAINING, **NGRAM))
    assert isinstance(model.trained_head, NgramHead) and model.trained_head.name == "ngram"
    return model


@pytest.fixture(scope="module", params=["directional", "ngram"])
def any_headed(request: pytest.FixtureRequest) -> HSModel:
    return request.getfixturevalue("headed" if request.param == "directional" else "ngram_headed")


# -- numpy oracles ------------------------------------------------------------------------------

MASK = (1 << 64) - 1


def mix64(z: int) -> int:
    """MurmurHash3's 64-bit finaliser, in Python integers (the documented hash, version 1)."""
    z ^= z >> 33
    z = (z * 0xFF51AFD7ED558CCD) & MASK
    z ^= z >> 33
    z = (z * 0xC4CEB9FE1A85EC53) & MASK
    return z ^ (z >> 33)


def ngram_offsets(recent: list[int], orders: int, padding: int, modulus: int) -> list[int]:
    """The n-gram features' table offsets of a context (most recent first), independently of
    the C code: hash version 1 as documented in _hs_kernels.h."""
    offsets, valid = [], True
    for k in range(orders):
        valid = valid and recent[k] != padding
        if not valid:
            offsets.append(-1)
            continue
        h = mix64(((k + 1) * 0x9E3779B97F4A7C15) & MASK)
        for word in recent[: k + 1]:
            h = mix64(h ^ ((word * 0xD6E8FEB86659FD93) & MASK))
        offsets.append(h % modulus)
    return offsets


def oracle_logits(model: HSModel, context: list[str]) -> np.ndarray:
    """Every inner node's logit for a context, in float64 numpy from the head's arrays."""
    head = model.trained_head
    arrays = {k: v.astype(np.float64) for k, v in head.arrays.items()}
    ids = model.word_ids(context)[-head.context_size :][::-1]  # most recent first
    recent = ids + [len(model)] * (head.context_size - len(ids))
    rows = [
        arrays["input_vectors"][i] if i < len(model) else arrays["padding_vector"] for i in recent
    ]
    hidden = arrays["hidden_bias"] + sum(c * x for c, x in zip(arrays["position_weights"], rows))
    logits = arrays["output_weights"] @ np.append(hidden, 1.0)
    if isinstance(head, NgramHead):
        for offset in ngram_offsets(recent, head.orders, len(model), head.modulus):
            if offset >= 0:
                logits += head.table[offset : offset + len(model) - 1]
    return logits


def brute_force(model: HSModel, logits: np.ndarray) -> np.ndarray:
    """log P(w) of every word by summing each word's path of log-sigmoids."""
    tree = model.tree
    margins = (1.0 - 2.0 * tree.path_codes) * logits[tree.path_nodes]
    steps = np.minimum(margins, 0) - np.log1p(np.exp(-np.abs(margins)))
    return np.add.reduceat(steps, tree.path_offsets[:-1])


CONTEXTS = [["the"], ["said", "the"], ["prime", "minister", "john"], [], ["zzqx"], ["in", "zzqx"]]


@pytest.mark.parametrize("context", CONTEXTS)
def test_queries_are_exact(any_headed: HSModel, context: list[str]) -> None:
    """log_prob, top_k and the whole distribution against brute force over the vocabulary."""
    model = any_headed
    brute = brute_force(model, oracle_logits(model, context))
    distribution = model.probabilities_next(context)
    assert distribution.sum() == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(np.log(distribution), brute, rtol=1e-5, atol=1e-5)
    expected = np.argsort(-brute, kind="stable")[:25]
    found = model.predict_next(context, top_k=25)
    assert [w for w, _ in found] == [model.words[i] for i in expected]
    np.testing.assert_allclose([p for _, p in found], np.exp(brute[expected]), rtol=1e-5)
    for word in (found[0][0], found[7][0], model.words[-1]):
        assert model.log_prob_next(word, context) == pytest.approx(
            brute[model.key_to_index[word]], rel=1e-5, abs=1e-6
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
    assert head.config["hash_version"] == 1


def test_ngram_features_help(headed: HSModel, ngram_headed: HSModel) -> None:
    assert (
        ngram_headed.meta["head"]["best_heldout_perplexity"]
        < headed.meta["head"]["best_heldout_perplexity"]
    )


def test_log_prob_stream_is_the_batch_api(any_headed: HSModel, lee_path: Path) -> None:
    lines = [line.split() for line in lee_path.read_text(encoding="utf8").splitlines()[:30]]
    lines = [[*line[:12], "zzqx", *line[12:20]] for line in lines if line]
    stream = any_headed.log_prob_stream(lines, cache=None)
    contexts = [line[:t] for line in lines for t in range(len(line))]
    words = [w for line in lines for w in line]
    np.testing.assert_array_equal(stream, any_headed.log_prob_next_batch(words, contexts))
    assert np.isnan(stream[[w == "zzqx" for w in words]]).all()  # no <unk> in Lee
    cbow = any_headed.log_prob_stream(lines, head="cbow", cache=None)
    assert np.isnan(cbow[0]) and np.isfinite(cbow[1])  # no sentence start for CBOW


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
    assert model.trained_head is None


def test_only_the_last_k_known_words_count(headed: HSModel) -> None:
    short = headed.predict_next(["the", "prime", "minister"], top_k=5)
    long = headed.predict_next(["storm", "zzqx", "the", "zzqx", "prime", "minister"], top_k=5)
    assert short == long
    assert headed.predict_next(["prime", "minister"], top_k=5) != short  # padded: a new sentence


def test_predictor_without_head_errors(hs_model: HSModel) -> None:
    assert hs_model.trained_head is None
    with pytest.raises(ValueError, match="no 'directional' next-word head.*auto, cbow"):
        hs_model.head("directional")
    with pytest.raises(ValueError, match="no 'ngram' next-word head"):
        hs_model.predict_next(["the"], head="ngram")
    with pytest.raises(ValueError, match="Unknown head 'bogus'"):
        hs_model.predict_next(["the"], head="bogus")
    assert hs_model.head("auto").name == "cbow"


# -- serialization ------------------------------------------------------------------------------


def assert_same_predictions(a: HSModel, b: HSModel) -> None:
    assert b.trained_head is not None and b.trained_head.config == a.trained_head.config
    for name, array in a.trained_head.to_arrays().items():
        np.testing.assert_array_equal(b.trained_head.to_arrays()[name], array)
    assert b.predict_next_batch(CONTEXTS, top_k=10) == a.predict_next_batch(CONTEXTS, top_k=10)
    words = ["the", "minister", "said", "the", "a", "of"]
    np.testing.assert_array_equal(
        b.log_prob_next_batch(words, CONTEXTS), a.log_prob_next_batch(words, CONTEXTS)
    )
    assert b.meta["head"].keys() == a.meta["head"].keys()
    assert b.meta["head"]["best_epoch"] == a.meta["head"]["best_epoch"]


def test_round_trip_disk(any_headed: HSModel, tmp_path: Path) -> None:
    any_headed.to_disk(tmp_path / "model")
    assert (tmp_path / "model" / "head.output_weights.npy").exists()
    assert srsly.read_json(tmp_path / "model" / "meta.json")["head"]["context_size"] == 3
    assert_same_predictions(any_headed, HSModel.from_disk(tmp_path / "model"))


def test_round_trip_bytes(any_headed: HSModel) -> None:
    assert_same_predictions(any_headed, HSModel.from_bytes(any_headed.to_bytes()))


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
    header["head"].update(change)
    srsly.write_json(tmp_path / "model" / "meta.json", header)
    with pytest.raises(ModelFileError, match=match):
        HSModel.from_disk(tmp_path / "model")


def test_ngram_slots_are_checked(ngram_headed: HSModel) -> None:
    msg = srsly.msgpack_loads(ngram_headed.to_bytes())
    header = msg["header"]
    slots = np.load(__import__("io").BytesIO(msg["arrays"]["head.ngram_slots"]))
    slots[-1] = ngram_headed.trained_head.config["table_size"]  # one past the table
    import io
    import zlib

    buffer = io.BytesIO()
    np.save(buffer, slots, allow_pickle=False)
    msg["arrays"]["head.ngram_slots"] = buffer.getvalue()
    header["arrays"]["head.ngram_slots"]["crc32"] = zlib.crc32(slots.data)
    with pytest.raises(ModelFileError, match="slots increasing and below the table size"):
        HSModel.from_bytes(srsly.msgpack_dumps(msg))


def test_model_without_head_stores_no_head_files(hs_model: HSModel, tmp_path: Path) -> None:
    hs_model.to_disk(tmp_path / "model")
    assert not list((tmp_path / "model").glob("head.*"))
    assert HSModel.from_disk(tmp_path / "model").trained_head is None


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
        DirectionalHead.from_arrays(
            headed.trained_head.config, headed.trained_head.to_arrays(), smaller
        )


def test_ngram_settings_are_checked(cbow_gensim: Word2Vec, lee_path: Path) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    with pytest.raises(ValueError, match="ngram_orders = 4 needs context_size >= 4"):
        train_head(model, lee_path, None, context_size=3, ngram_orders=4, progress=False)
    with pytest.raises(ValueError, match="table_size = 10 must be at least the vocabulary"):
        train_head(model, lee_path, None, ngram_orders=2, table_size=10, progress=False)


def _tree_of(n_words: int) -> HuffmanTree:
    """A left-leaning binary tree (a path per word) over n_words words."""
    points, codes = [], []
    for word in range(n_words):
        depth = min(word + 1, n_words - 1)
        points.append(list(range(depth)))
        codes.append([1] * (depth - 1) + [0 if word < n_words - 1 else 1])
    return HuffmanTree.from_paths(points, codes)


def test_matrix_forms_equal_the_list_form(any_headed: HSModel) -> None:
    """A context matrix gives what the list form gives for the same words, whether padding is
    on the left (the component's) or anywhere in the row."""
    model, head = any_headed, any_headed.trained_head
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(model), (40, 6)).astype(np.int32)
    rows[rng.random(rows.shape) < 0.3] = -1
    lists = [[i for i in row if i >= 0] for row in rows.tolist()]
    targets = rng.integers(0, len(model), 40).astype(np.int32)
    expected = model.log_prob_next_batch(targets.tolist(), lists)
    np.testing.assert_array_equal(head.log_prob(rows, targets), expected)
    ids, _ = head.top_k(rows, 5)
    assert ids.tolist() == [
        [model.key_to_index[w] for w, _ in r] for r in model.predict_next_batch(lists, 5)
    ]
    targets[::2] = -1
    assert np.isnan(head.log_prob(rows, targets)[::2]).all()


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
