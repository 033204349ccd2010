"""The compiled training engine of the tree heads: gradient (n-gram table included), streaming,
L2 on touched rows, threads, memory."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from isolated import run_python

from spacy_hs import HSModel, HuffmanTree, _tree_search
from spacy_hs.training.config import HeadSettings, head_settings
from spacy_hs.training.head import attach_head, train_head
from spacy_hs.training.head_engine import (
    HeadEngine,
    HeadTrainer,
    ScratchDirectory,
    encode_sentences,
    head_arrays,
    new_trainer,
    resolve_workers,
    token_lines,
    train_head_arrays,
)


def directional(**options) -> HeadSettings:
    """Settings of the directional head (no n-gram features), validated as a config is."""
    return head_settings(ngram_orders=0, **options)


def tiny_trainer(diagonal: bool, rng: np.random.Generator, **options) -> HeadTrainer:
    """5 words, 4 inner nodes: root 0 -> (1, 2); 1 -> (w0, w1); 2 -> (3, w2); 3 -> (w3, w4);
    random parameters, d = 3, K = 2."""
    points = [[0, 1], [0, 1], [0, 2], [0, 2, 3], [0, 2, 3]]
    codes = [[0, 0], [0, 1], [1, 1], [1, 0, 0], [1, 0, 1]]
    tree = HuffmanTree.from_paths(points, codes)
    n_words, width, size = 5, 3, 2
    positions = size * width if diagonal else size * width * width
    return HeadTrainer(
        rng.normal(size=(n_words + 1, width)).astype(np.float32),
        rng.normal(size=positions).astype(np.float32),
        rng.normal(size=width).astype(np.float32),
        rng.normal(size=(n_words - 1, width + 1)).astype(np.float32),
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
        context_size=size,
        diagonal=diagonal,
        fine_tune=True,
        optimizer="sgd",
        dropout=0.0,
        seed=0,
        l2=0.0,
        table_l2=0.0,
        dense_optimizer="adam",
        **options,
    )


CONTEXTS = np.array([[0, 5], [5, 5], [3, 1], [4, 4], [2, 0], [1, 3]], dtype=np.int32)  # 5 = pad
TARGETS = np.array([3, 0, 4, 2, 1, 3], dtype=np.int32)


@pytest.mark.parametrize("diagonal, orders", [(True, 0), (False, 0), (True, 2), (False, 1)])
def test_gradient_matches_finite_differences(diagonal: bool, orders: int) -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=12).astype(np.float32) if orders else None  # 9 offsets + 3 nodes
    trainer = tiny_trainer(diagonal, rng, table=table, n_orders=orders)
    log_probs, *gradients = trainer.gradient(CONTEXTS, TARGETS)
    # The training forward pass is the held-out score (the inference kernel), bit for bit.
    np.testing.assert_array_equal(log_probs, trainer.log_probs(CONTEXTS, TARGETS))
    arrays = [trainer.inputs, trainer.positions, trainer.bias, trainer.outputs, trainer.table]
    assert (gradients[-1] is None) == (orders == 0)
    step = 1e-2  # the parameters are float32: a larger step than float64 would need
    names = ["inputs", "C", "b", "W", "table"][: 5 if orders else 4]
    for name, array, gradient in zip(names, arrays, gradients):
        numeric = np.zeros(array.shape)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + step
            above = trainer.log_probs(CONTEXTS, TARGETS).sum()
            array[index] = old - step
            below = trainer.log_probs(CONTEXTS, TARGETS).sum()
            array[index] = old
            numeric[index] = (above - below) / (2 * step)
        assert np.abs(gradient).max() > 0.1
        np.testing.assert_allclose(
            gradient, numeric, atol=1e-3 * np.abs(numeric).max(), err_msg=name
        )


@pytest.mark.parametrize("orders", [0, 2])
def test_scores_are_the_inference_kernels(hs_model: HSModel, orders: int) -> None:
    """The trainer's log P equals that of _tree_search.path_log_probs on the same hidden
    vectors (and n-gram offsets), which the heads use for prediction."""
    settings = head_settings(context_size=3, dropout=0.0, ngram_orders=orders, table_size=1 << 16)
    trainer = new_trainer(hs_model, settings)
    if orders:
        trainer.table[:] = np.random.default_rng(2).normal(size=1 << 16)
    rng = np.random.default_rng(1)
    n_words = len(hs_model)
    contexts = rng.integers(0, n_words + 1, size=(50, 3)).astype(np.int32)
    targets = rng.integers(0, n_words, size=50).astype(np.int32)
    C = trainer.positions.reshape(3, -1)
    hidden = (trainer.inputs[contexts] * C[None]).sum(axis=1) + trainer.bias
    hidden = np.concatenate([hidden, np.ones((50, 1), np.float32)], axis=1)
    tree = hs_model.tree
    node_term = {}
    if orders:
        offsets = _tree_search.ngram_bases_matrix(
            contexts, orders, n_words, (1 << 16) - n_words + 1
        )
        node_term = {"table": trainer.table, "bases": offsets}
    expected = _tree_search.path_log_probs(
        hidden,
        targets,
        trainer.outputs,
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
        **node_term,
    )
    np.testing.assert_allclose(trainer.log_probs(contexts, targets), expected, rtol=1e-6)


def test_encoding(hs_model: HSModel, tmp_path: Path) -> None:
    sentences = [["the", "zzqx", "minister"], [], ["zzqx"], ["said"]] * 50
    train, heldout, n_unknown = encode_sentences(
        sentences, hs_model.key_to_index, tmp_path, eos_id=5, heldout_fraction=0.3, seed=1
    )
    ids = np.fromfile(train.path, dtype=np.int32)
    held = np.fromfile(heldout.path, dtype=np.int32)
    assert len(ids) == train.n_ids and len(held) == heldout.n_ids
    # Unknown words skipped, <eos> (id 5) after every non-empty line, -1 after each sentence.
    k = hs_model.key_to_index
    assert {tuple(s) for s in _split(ids)} <= {(k["the"], k["minister"], 5), (5,), (k["said"], 5)}
    assert train.n_sentences + heldout.n_sentences == 150
    assert 0.15 < heldout.n_sentences / 150 < 0.45
    assert n_unknown == sum(len(s) == 3 for s in _split(ids)) + sum(s == [5] for s in _split(ids))
    again = encode_sentences(sentences, k, tmp_path, eos_id=5, heldout_fraction=0.3, seed=1)
    np.testing.assert_array_equal(np.fromfile(again[1].path, dtype=np.int32), held)


def _split(ids: np.ndarray) -> list[list[int]]:
    sentences, current = [], []
    for i in ids.tolist():
        if i == -1:
            sentences.append(current)
            current = []
        else:
            current.append(i)
    return sentences


@pytest.fixture(scope="module")
def lee_encoded(hs_model: HSModel, lee_path: Path):
    with ScratchDirectory() as scratch:
        train, _, _ = encode_sentences(
            token_lines(lee_path), hs_model.key_to_index, scratch, heldout_fraction=0.0, seed=0
        )
        yield train


def test_every_prediction_is_scored_once_whatever_the_chunks(hs_model, lee_encoded) -> None:
    trainer = new_trainer(hs_model, directional(context_size=4, dropout=0.0))
    worker, path = trainer.worker(0), os.fsencode(lee_encoded.path)
    whole = trainer.score_chunk(worker, path, 0, lee_encoded.n_ids)
    assert whole[1] == lee_encoded.n_tokens
    rng = np.random.default_rng(0)
    for n_chunks in (2, 7, 100):
        bounds = np.r_[0, np.sort(rng.choice(lee_encoded.n_ids, n_chunks - 1)), lee_encoded.n_ids]
        parts = [trainer.score_chunk(worker, path, a, b) for a, b in zip(bounds, bounds[1:])]
        assert sum(p[1] for p in parts) == whole[1]
        assert sum(p[0] for p in parts) == pytest.approx(whole[0], rel=1e-9)


@pytest.mark.parametrize("optimizer", ["adagrad", "sgd"])
def test_both_optimisers_train(hs_model, lee_encoded, optimizer: str) -> None:
    rate = 0.1 if optimizer == "adagrad" else 0.02
    settings = directional(
        optimizer=optimizer, dropout=0.3, learn_rate=rate, dense_learn_rate=0.004, workers=1
    )
    engine = HeadEngine(new_trainer(hs_model, settings), settings, progress=False)
    before = engine.perplexity(lee_encoded)
    engine.train_epoch(lee_encoded, lambda done: rate, np.random.default_rng(0))
    assert engine.perplexity(lee_encoded) < 0.7 * before


def test_l2_decays_only_the_rows_touched(hs_model: HSModel, tmp_path: Path) -> None:
    """One prediction with SGD: each touched row becomes row * (1 - rate * l2) + rate *
    gradient; rows not touched keep their values (no decay of rows a prediction never sees)."""
    k, n_words, rate, l2 = hs_model.key_to_index, len(hs_model), 0.1, 0.5
    # "the" from the sentence start
    corpus, _, _ = encode_sentences([["the"]], k, tmp_path, heldout_fraction=0.0, seed=0)
    settings = directional(
        context_size=1, dropout=0.0, optimizer="sgd", l2=l2, learn_rate=rate, workers=1
    )
    trainer = new_trainer(hs_model, settings)
    before = trainer.inputs.copy(), trainer.outputs.copy()
    contexts = np.array([[n_words]], dtype=np.int32)
    _, d_inputs, _, _, d_outputs, _ = trainer.gradient(contexts, np.array([k["the"]], np.int32))
    engine = HeadEngine(trainer, settings, progress=False)
    engine.train_epoch(corpus, lambda done: rate, np.random.default_rng(0))
    gradients = (d_inputs, d_outputs)
    for after, old, gradient in zip((trainer.inputs, trainer.outputs), before, gradients):
        touched = np.abs(gradient).sum(axis=1) > 0
        assert 0 < touched.sum() < len(touched) - 100
        np.testing.assert_array_equal(after[~touched], old[~touched])
        expected = old[touched] * np.float32(1 - rate * l2) + rate * gradient[touched]
        np.testing.assert_allclose(after[touched], expected, rtol=1e-5, atol=1e-7)


def test_threads_share_the_arrays(hs_model, lee_encoded) -> None:
    assert resolve_workers(0) == len(os.sched_getaffinity(0))
    results = {}
    for workers in (1, 2):
        settings = directional(dropout=0.3, workers=workers)
        engine = HeadEngine(new_trainer(hs_model, settings), settings, progress=False)
        assert len(engine.workers) == workers
        loss, count = engine.train_epoch(lee_encoded, lambda done: 0.1, np.random.default_rng(0))
        assert count == lee_encoded.n_tokens
        results[workers] = engine.perplexity(lee_encoded)
    # Hogwild changes the order of updates, not what is learnt.
    assert results[2] == pytest.approx(results[1], rel=0.05)


def test_memory_does_not_grow_with_the_corpus(hs_model: HSModel, lee_path: Path, tmp_path) -> None:
    """Peak Python-side allocation (numpy arrays included) of a training run on the Lee corpus
    and on 16 copies of it: the same, up to a few buffers."""
    lines = lee_path.read_text(encoding="utf8")
    peaks = []
    for copies in (1, 16):
        corpus = tmp_path / f"lee{copies}.txt"
        corpus.write_text(lines * copies, encoding="utf8")
        settings = directional(epochs=1, workers=2)
        tracemalloc.start()
        train_head_arrays(
            hs_model,
            lambda c=corpus: token_lines(c),
            lambda: token_lines(lee_path),
            settings,
            progress=False,
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.1 * peaks[0], peaks


TRAIN_IN_A_PROCESS = """
import sys
from spacy_hs import HSModel
from spacy_hs.training.config import head_settings
from spacy_hs.training.head_engine import token_lines, train_head_arrays
model = HSModel.from_disk(sys.argv[1])
settings = head_settings(epochs=1, workers=2, ngram_orders=0)
_, history, _ = train_head_arrays(
    model, lambda: token_lines(sys.argv[2]), None, settings, progress=False
)
print(history["n_train_tokens"])
"""


def test_peak_rss_of_the_process_does_not_grow_with_the_corpus(
    hs_model: HSModel, lee_path: Path, tmp_path: Path
) -> None:
    """The whole process, not only Python's allocations: peak RSS of head training in a fresh
    process on the Lee corpus and on 40 copies of it (2.3M tokens), within 10%, with at most
    12 MB between them (the issue's 32 bytes a token would be 70 MB)."""
    model_dir = tmp_path / "model"
    hs_model.to_disk(model_dir)
    runs = []
    for copies in (1, 40):
        corpus = tmp_path / f"lee{copies}.txt"
        corpus.write_bytes(lee_path.read_bytes() * copies)
        run = run_python(TRAIN_IN_A_PROCESS, str(model_dir), str(corpus), timeout=300)
        assert run.returncode == 0, run.stderr
        runs.append((int(run.stdout), run.max_rss))
        corpus.unlink()
    (tokens_1, peak_1), (tokens_40, peak_40) = runs
    assert tokens_40 > 35 * tokens_1
    assert peak_40 <= 1.1 * peak_1 and peak_40 - peak_1 < 12 << 20, runs


def test_train_head_returns_the_trained_head(hs_model: HSModel, lee_path: Path) -> None:
    model = HSModel(
        hs_model.words,
        hs_model.counts,
        hs_model.vectors,
        hs_model.tree,
        hs_model.inner_node_weights,
    )
    head = train_head(model, lee_path, None, epochs=3, workers=2, progress=False)
    attach_head(model, head, export_fine_tuned_vectors=False)
    history = model.meta["head"]
    assert head is model.trained_head and history["workers"] == 2
    assert history["best_heldout_perplexity"] < 0.8 * history["initial_heldout_perplexity"]
    assert history["tokens_per_second"] > 0 and len(history["heldout_perplexity"]) <= 3


def test_head_arrays_round_trip(hs_model: HSModel) -> None:
    trainer = new_trainer(hs_model, directional(context_size=2, diagonal=False))
    arrays = head_arrays(trainer, 2, False)
    width = hs_model.vector_size
    assert arrays["position_weights"].shape == (width, 2 * width)
    assert "table" not in arrays
    np.testing.assert_array_equal(arrays["input_vectors"], hs_model.vectors)
    np.testing.assert_array_equal(arrays["output_weights"][:, :width], hs_model.inner_node_weights)


@pytest.mark.parametrize("option", ["learn_rate", "table_learn_rate"])
def test_a_diverging_run_stops_with_the_setting_to_lower(hs_model, lee_encoded, option) -> None:
    """Steps far past the range the config accepts (built unchecked here) made the weights
    overflow: an OverflowError from the perplexity, or NaN in meta.json, after all the epochs.
    The run stops at the first diverging epoch and names the setting."""
    settings = HeadSettings(ngram_orders=1, context_size=2, table_size=1 << 16, epochs=3, workers=1)
    settings = HeadSettings(**{**settings.__dict__, option: 1e30, "dropout": 0.0})
    engine = HeadEngine(new_trainer(hs_model, settings), settings, progress=False)
    with pytest.raises(ValueError, match=rf"E416.*diverged.*{option}") as caught:
        engine.fit(lee_encoded, lee_encoded)
    assert "epoch 1" in str(caught.value)


def test_the_next_run_removes_the_scratch_of_a_killed_one(tmp_path: Path, monkeypatch) -> None:
    """A SIGKILL during head training left TMPDIR/spacy_hs_head.* behind (4 bytes per token)."""
    import signal
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = "import time; from spacy_hs.training.head_engine import "
    code += "ScratchDirectory\nwith ScratchDirectory() as d:\n (d / 'ids').write_bytes(b'x')\n"
    code += " print(d, flush=True); time.sleep(60)"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    killed = Path(child.stdout.readline().decode().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert killed.exists() and killed.parent == tmp_path
    with ScratchDirectory() as mine:
        assert not killed.exists() and mine.exists()
        with ScratchDirectory() as nested:  # a running process's scratch is kept
            assert mine.exists() and nested.exists()
    assert list(tmp_path.iterdir()) == []
