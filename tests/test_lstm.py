"""The recurrent head's LSTM (heads/lstm.py) and its thinc layer (heads/context_layer.py): the
step against a float64 oracle written from the equations, its gradients against finite
differences, the state carried across calls, and the thinc layer's forward/backprop."""

from __future__ import annotations

import numpy as np

from spacy_hs import registry
from spacy_hs.heads.context_layer import LAYER
from spacy_hs.heads.lstm import initial_state, lstm_backward, lstm_forward

WIDTH, UNITS = 5, 4


def params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "lstm_input_weights": rng.normal(0, 0.5, (WIDTH, 4 * UNITS)).astype(np.float32),
        "lstm_hidden_weights": rng.normal(0, 0.5, (UNITS, 4 * UNITS)).astype(np.float32),
        "lstm_bias": rng.normal(0, 0.5, 4 * UNITS).astype(np.float32),
    }


def oracle(p: dict[str, np.ndarray], inputs: np.ndarray, h: np.ndarray, c: np.ndarray):
    """The LSTM equations, one step and one stream at a time, in float64."""
    w_x, w_h, b = (
        p[k].astype(np.float64) for k in ("lstm_input_weights", "lstm_hidden_weights", "lstm_bias")
    )
    outputs = np.zeros(inputs.shape[:2] + (UNITS,))
    for s in range(inputs.shape[1]):
        hs, cs = h[s].astype(np.float64), c[s].astype(np.float64)
        for t in range(inputs.shape[0]):
            z = inputs[t, s] @ w_x + hs @ w_h + b
            f, i, o = (1 / (1 + np.exp(-z[k * UNITS : (k + 1) * UNITS])) for k in range(3))
            g = np.tanh(z[3 * UNITS :])
            cs = f * cs + i * g
            hs = o * np.tanh(cs)
            outputs[t, s] = hs
    return outputs


def test_forward_is_the_equations() -> None:
    rng = np.random.default_rng(1)
    inputs = rng.normal(0, 1, (7, 3, WIDTH)).astype(np.float32)
    h = rng.normal(0, 0.5, (3, UNITS)).astype(np.float32)
    c = rng.normal(0, 0.5, (3, UNITS)).astype(np.float32)
    outputs, _, _ = lstm_forward(params(), inputs, (h, c))
    np.testing.assert_allclose(outputs, oracle(params(), inputs, h, c), atol=1e-5)


def test_state_carries_across_calls() -> None:
    rng = np.random.default_rng(2)
    inputs = rng.normal(0, 1, (8, 2, WIDTH)).astype(np.float32)
    whole, _, _ = lstm_forward(params(), inputs, initial_state(2, UNITS))
    first, cells, _ = lstm_forward(params(), inputs[:3], initial_state(2, UNITS))
    second, _, _ = lstm_forward(params(), inputs[3:], (first[-1], cells[-1]))
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_mask_holds_the_state() -> None:
    rng = np.random.default_rng(3)
    inputs = rng.normal(0, 1, (4, 2, WIDTH)).astype(np.float32)
    mask = np.array([[False, True], [True, True], [False, True], [True, True]])
    outputs, _, _ = lstm_forward(params(), inputs, initial_state(2, UNITS), mask)
    skipped, _, _ = lstm_forward(params(), inputs[[1, 3], :1], initial_state(1, UNITS))
    np.testing.assert_array_equal(outputs[-1, 0], skipped[-1, 0])
    np.testing.assert_array_equal(outputs[0, 0], 0.0)  # not stepped: the initial state


def test_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(4)
    inputs = rng.normal(0, 1, (5, 2, WIDTH)).astype(np.float32)
    state = (rng.normal(0, 0.5, (2, UNITS)).astype("f"), rng.normal(0, 0.5, (2, UNITS)).astype("f"))
    weights = rng.normal(0, 1, (5, 2, UNITS))
    p = params()

    def loss(q: dict[str, np.ndarray], x: np.ndarray) -> float:
        return float((oracle(q, x, *state) * weights).sum())

    forward_pass = lstm_forward(p, inputs, state)
    d_inputs, grads = lstm_backward(p, weights.astype(np.float32), inputs, forward_pass, state)
    eps = 1e-3
    for name, grad in grads.items():
        for index in [(0, 0), (2, 5), (3, 13)] if grad.ndim == 2 else [(1,), (9,)]:
            up, down = (
                {k: v.astype(np.float64) for k, v in p.items()},
                {k: v.astype(np.float64) for k, v in p.items()},
            )
            up[name][index] += eps
            down[name][index] -= eps
            numeric = (loss(up, inputs) - loss(down, inputs)) / (2 * eps)
            assert abs(numeric - grad[index]) < 1e-3 * max(1, abs(numeric)), name
    x_up, x_down = inputs.astype(np.float64), inputs.astype(np.float64)
    x_up[2, 1, 3] += eps
    x_down[2, 1, 3] -= eps
    numeric = (loss(p, x_up) - loss(p, x_down)) / (2 * eps)
    assert abs(numeric - d_inputs[2, 1, 3]) < 1e-3 * max(1, abs(numeric))


def test_layer_is_registered_and_trains() -> None:
    layer = registry.architectures.get(LAYER)
    model = layer(n_words=11, width=WIDTH, hidden_width=UNITS, dropout=0)
    model.initialize()
    ids = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int32)
    (outputs, final), backprop = model.begin_update((ids, initial_state(2, UNITS)))
    assert outputs.shape == (3, 2, UNITS)
    np.testing.assert_array_equal(final[0], outputs[-1])
    backprop(np.ones_like(outputs))
    d_embeddings = model.get_grad("embeddings")
    assert np.abs(d_embeddings[1:7]).sum() > 0
    assert not d_embeddings[[0, 7, 8, 9, 10]].any()  # only the rows read
