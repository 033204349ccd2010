"""Test oracles of the tree heads (``spacy_hs/heads/``), shared by their test modules: numpy
logits and log-probabilities computed independently of the compiled kernels, the documented
n-gram hash in Python integers, and a finite-difference check of a layer's backprop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from thinc.model import Model

from spacy_hs import HSModel
from spacy_hs.heads.ngram import NgramHead

HEAD_TRAINING = dict(epochs=2, seed=0, workers=1, progress=False)
NGRAM = dict(ngram_orders=3, table_size=1 << 21, optimizer="sgd", learn_rate=0.02)
CONTEXTS = [["the"], ["said", "the"], ["prime", "minister", "john"], [], ["zzqx"], ["in", "zzqx"]]
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


def check_gradients(
    model: Model, X: np.ndarray, params: Sequence[str], seed: int = 0, eps: float = 1e-2
) -> None:
    """Compare the gradients ``model``'s backprop gives for the loss sum(Y * R), R random, with
    central finite differences of that loss in float64, for every element of each of
    ``params`` (the layer's params are float32; the loss is linear in each of them, so the
    differences are exact up to rounding)."""
    Y, backprop = model.begin_update(X)
    weights = np.random.default_rng(seed).normal(size=Y.shape).astype(np.float32)
    for name in params:
        model.set_grad(name, np.zeros_like(model.get_param(name)))
    backprop(weights)

    def loss() -> float:
        return float((model.predict(X).astype(np.float64) * weights).sum())

    for name in params:
        param = model.get_param(name)
        numeric = np.zeros(param.shape)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + eps
            up = loss()
            param[index] = saved - eps
            down = loss()
            param[index] = saved
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(
            model.get_grad(name), numeric, rtol=1e-3, atol=1e-3, err_msg=name
        )
