"""The recurrent head's LSTM, its state a value: the step's math, forward and backward, in NumPy.

The recurrent head's hidden vector (``heads/recurrent.py``). For each step t, with x_t the
embedding of the word read at t and (h, c) the state before it::

    gates = x_t . input_weights + h . hidden_weights + bias       (4 H values: f, i, o, g)
    f, i, o = sigmoid(gates[f, i, o]);  g = tanh(gates[g])
    c' = f * c + i * g;  h' = o * tanh(c')

thinc's gate order (forget, input, output, candidate). ``lstm_forward`` reads a batch of B
streams of T steps (embeddings (T, B, d)) from an explicit state per stream (h, c: (B, H)) and
returns the outputs, cells and gate activations; the caller carries the last step's (h, c) on,
as thinc's recurrent layers take their initial states as inputs and keep none between calls.
So a stream is carried across training batches (truncated back-propagation through time) and a
document is read one step per token, with the same code: ``lstm_forward`` is the one
definition of the step, used by training (the thinc layer ``heads/context_layer.py``) and by
inference (``heads/recurrent.py``). No thinc here: a model loads and scores without it.
"""

from __future__ import annotations

import numpy as np

GATES = 4
PARAMS = ("embeddings", "lstm_input_weights", "lstm_hidden_weights", "lstm_bias")

State = tuple[np.ndarray, np.ndarray]  # (h, c), float32 (B, H) each


def initial_state(batch: int, units: int) -> State:
    """The state before a stream's first word: zeros."""
    return np.zeros((batch, units), np.float32), np.zeros((batch, units), np.float32)


def lstm_forward(
    params: dict[str, np.ndarray],
    inputs: np.ndarray,
    state: State,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LSTM over ``inputs`` float32 (T, B, width) from ``state``: outputs h (T, B, H), cells
    c (T, B, H) and the gate activations (T, B, 4 H), kept for the backward pass. ``mask``
    (T, B) bool: where False, the stream does not step (its state is carried unchanged)."""
    w_x, w_h = params["lstm_input_weights"], params["lstm_hidden_weights"]
    n_steps, batch = inputs.shape[:2]
    units = w_h.shape[0]
    gates_x = (inputs.reshape(-1, inputs.shape[2]) @ w_x).reshape(n_steps, batch, GATES * units)
    gates_x += params["lstm_bias"]
    outputs = np.empty((n_steps, batch, units), np.float32)
    cells = np.empty((n_steps, batch, units), np.float32)
    acts = np.empty((n_steps, batch, GATES * units), np.float32)
    h, c = state
    for t in range(n_steps):
        a = acts[t]
        np.matmul(h, w_h, out=a)
        a += gates_x[t]
        sigmoids, candidate = a[:, : 3 * units], a[:, 3 * units :]
        sigmoids *= 0.5  # sigmoid(x) = (1 + tanh(x / 2)) / 2: no overflow for any x
        np.tanh(sigmoids, out=sigmoids)
        sigmoids += 1.0
        sigmoids *= 0.5
        np.tanh(candidate, out=candidate)
        c_new, h_new = cells[t], outputs[t]
        np.multiply(a[:, :units], c, out=c_new)
        c_new += a[:, units : 2 * units] * candidate
        np.tanh(c_new, out=h_new)
        h_new *= a[:, 2 * units : 3 * units]
        if mask is not None:
            keep = ~mask[t]
            c_new[keep], h_new[keep] = c[keep], h[keep]
        h, c = h_new, c_new
    return outputs, cells, acts


def lstm_backward(
    params: dict[str, np.ndarray],
    d_outputs: np.ndarray,
    inputs: np.ndarray,
    forward_pass: tuple[np.ndarray, np.ndarray, np.ndarray],
    state: State,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Back-propagation through the T steps of ``lstm_forward`` (no mask) given d outputs
    (T, B, H); the initial state gets no gradient (truncated BPTT). Returns d inputs and the
    weights' gradients."""
    outputs, cells, acts = forward_pass
    w_x, w_h = params["lstm_input_weights"], params["lstm_hidden_weights"]
    n_steps, batch, units = outputs.shape
    d_gates = np.empty_like(acts)
    d_h = np.zeros((batch, units), np.float32)
    d_c = np.zeros((batch, units), np.float32)
    for t in range(n_steps - 1, -1, -1):
        a = acts[t]
        f, i, o, g = (a[:, k * units : (k + 1) * units] for k in range(GATES))
        tanh_c = np.tanh(cells[t])
        d_ht = d_outputs[t] + d_h
        d_c = d_c + d_ht * o * (1.0 - tanh_c * tanh_c)
        c_before = cells[t - 1] if t else state[1]
        dg = d_gates[t]
        dg[:, :units] = d_c * c_before * f * (1.0 - f)
        dg[:, units : 2 * units] = d_c * g * i * (1.0 - i)
        dg[:, 2 * units : 3 * units] = d_ht * tanh_c * o * (1.0 - o)
        dg[:, 3 * units :] = d_c * i * (1.0 - g * g)
        d_c = d_c * f
        d_h = dg @ w_h.T
    flat = d_gates.reshape(-1, GATES * units)
    h_before = np.concatenate([state[0][None], outputs[:-1]]).reshape(-1, units)
    grads = {
        "lstm_input_weights": inputs.reshape(-1, inputs.shape[2]).T @ flat,
        "lstm_hidden_weights": h_before.T @ flat,
        "lstm_bias": flat.sum(axis=0),
    }
    return (flat @ w_x.T).reshape(inputs.shape), grads
