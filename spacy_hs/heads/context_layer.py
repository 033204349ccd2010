"""``RecurrentContext``: word embeddings, then the LSTM of ``heads/lstm.py``, as a thinc layer.

Registered as ``spacy_hs.RecurrentContext.v1`` in spaCy's ``architectures`` registry
(``spacy_hs.registry.architectures``), here and through the ``spacy_architectures`` entry
point; the head's inference (``heads/recurrent.py``, ``heads/lstm.py``) does not need it. The
layer reads word ids (T, B) and an explicit initial state per stream, and returns the outputs
(T, B, H) and the final state: a value the caller carries into the next batch. The recurrent
head's training builds it (``training/recurrent.py``); a trained head's arrays are the layer's
params by name (``PARAMS``).

Why not ``thinc.api.LSTM``: its initial state is one learned vector shared by every row of a
batch (the ``HC0`` param), so it cannot carry each stream's own state into the next batch; and
its NumPy backward pass measured 5.4k tokens/s here against 15.6k for a step-by-step one that
spends its time in BLAS matrix products (batch 64 x 35 steps, 200 units, 2 shared cores).

Dropout (training only) zeroes entries of the embeddings and of the outputs (not the recurrent
connections, as Zaremba et al. 2014 do); the carried state is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from thinc.model import Model
from thinc.types import Floats2d, Floats3d, Ints2d

from .. import registry
from .lstm import GATES, PARAMS, State, lstm_backward, lstm_forward

LAYER = "spacy_hs.RecurrentContext.v1"


@registry.architectures(LAYER)
def RecurrentContext(
    n_words: int, width: int, hidden_width: int, dropout: float
) -> Model[tuple[Ints2d, State], tuple[Floats3d, State]]:
    """Embeddings (n_words, width), then an LSTM of ``hidden_width`` units; ``dropout`` on the
    embeddings and the outputs while training."""
    return Model(
        "recurrent_context",
        forward,
        init=init,
        dims={"nV": n_words, "nI": width, "nO": hidden_width},
        params={name: None for name in PARAMS},
        attrs={"dropout_rate": float(dropout)},
    )


def init(model: Model, X: object = None, Y: object = None) -> None:
    """Embeddings N(0, 0.1) (or copied in by the caller), LSTM weights uniform in
    +-1/sqrt(H), the forget gates' bias 1."""
    n_words, width, units = (model.get_dim(d) for d in ("nV", "nI", "nO"))
    rng = np.random.default_rng(int(model.attrs.get("seed", 0)))
    bound = 1.0 / np.sqrt(units)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    bias = np.zeros(GATES * units, dtype=np.float32)
    bias[:units] = 1.0
    model.set_param("embeddings", (rng.standard_normal((n_words, width)) * 0.1).astype("f"))
    model.set_param("lstm_input_weights", uniform(width, GATES * units))
    model.set_param("lstm_hidden_weights", uniform(units, GATES * units))
    model.set_param("lstm_bias", bias)


def forward(
    model: Model, X: tuple[Ints2d, State], is_train: bool
) -> tuple[tuple[Floats3d, State], Callable]:
    """Outputs (T, B, H) (with output dropout while training) and the final state."""
    ids, state = X
    params = {name: model.get_param(name) for name in PARAMS}
    rate = model.attrs["dropout_rate"] if is_train else 0.0
    inputs = params["embeddings"][ids]
    in_mask = _dropout_mask(model, inputs.shape, rate)
    if in_mask is not None:
        inputs = inputs * in_mask
    forward_pass = lstm_forward(params, inputs, state)
    outputs = forward_pass[0]
    final = (outputs[-1].copy(), forward_pass[1][-1].copy()) if len(outputs) else state
    out_mask = _dropout_mask(model, outputs.shape, rate)
    dropped = outputs * out_mask if out_mask is not None else outputs

    def backprop(d_outputs: Floats3d) -> None:
        if out_mask is not None:
            d_outputs = d_outputs * out_mask
        d_inputs, grads = lstm_backward(params, d_outputs, inputs, forward_pass, state)
        if in_mask is not None:
            d_inputs = d_inputs * in_mask
        d_embeddings = np.zeros_like(params["embeddings"])
        np.add.at(d_embeddings, ids.reshape(-1), d_inputs.reshape(-1, d_inputs.shape[2]))
        model.inc_grad("embeddings", d_embeddings)
        for name, grad in grads.items():
            model.inc_grad(name, grad)

    return (dropped, final), backprop


def _dropout_mask(model: Model, shape: tuple[int, ...], rate: float) -> Floats2d | None:
    if rate <= 0:
        return None
    return model.ops.get_dropout_mask(shape, rate)
