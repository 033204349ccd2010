"""thinc layers of the directional next-word head: a hierarchical log-bilinear model
(Mnih & Hinton, 2009) scored through the Huffman tree of a hierarchical softmax.

Three layers, written the way thinc's own are (``forward`` returns the output and a
``backprop`` closure; params and dims are declared; arrays go through ``model.ops``):

* ``LogBilinearContext``: context word ids (B, K) -> hidden vectors (B, d + 1)::

      hidden = sum over i = 1..K of C_i * vec(w_{t-i}) + b,  then a constant 1 is appended

  Column ``i - 1`` of the ids holds ``w_{t-i}``, the i-th most recent known word; the id
  ``n_words`` is the padding before a sentence's first word (a learned vector). ``C_i`` is
  diagonal (a (K, d) table, one scale per position and dimension) or full (a (d, K * d)
  matrix). The constant column lets the tree's per-node biases live in the last column of its
  output weights, so hidden vectors and weights drop into the compiled tree kernels unchanged.
  In training, entries of the gathered context vectors can be dropped out.
* ``TreeLogLikelihood``: (hidden (B, w), targets (B,)) -> log P(target | hidden) (B,), with
  the same math as ``HSModel``: the sum over the target's path of
  ``log_sigmoid((1 - 2 * code) * hidden . W[node])`` (code 0 means ``sigmoid(+dot)``, as in
  gensim). Paths are padded to the batch's deepest target and masked.
* ``HierarchicalLogBilinear``: both chained, from (context ids, targets) to log-likelihoods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from thinc.api import Model, registry
from thinc.types import Floats1d, Floats2d, Ints1d, Ints2d

ContextIn = Ints2d
TreeIn = tuple[Floats2d, Ints1d]
HeadIn = tuple[Ints2d, Ints1d]


# -- context: ids -> hidden vectors ---------------------------------------------------------


@registry.layers("spacy_hs.LogBilinearContext.v1")
def LogBilinearContext(
    n_words: int | None = None,
    width: int | None = None,
    context_size: int = 3,
    *,
    diagonal: bool = True,
    fine_tune: bool = True,
    dropout: float = 0.0,
    vectors: Floats2d | None = None,
) -> Model[ContextIn, Floats2d]:
    """Position-weighted sum of the last ``context_size`` word vectors, plus a bias.

    vectors: initial input vectors (n_words, width), e.g. gensim's ``wv.vectors``; copied.
    fine_tune: whether the input vectors are trained (the padding vector always is).
    dropout: rate at which context vector entries are zeroed in training (inverted dropout).
    """
    if vectors is not None:
        n_words, width = vectors.shape
    return Model(
        "log_bilinear_context",
        _context_forward,
        init=_context_init,
        dims={
            "nV": n_words,
            "nI": width,
            "nK": context_size,
            "nO": None if width is None else width + 1,
        },
        params={"E": None, "pad": None, "C": None, "b": None},
        attrs={
            "diagonal": diagonal,
            "fine_tune": fine_tune,
            "dropout_rate": dropout,
            "init_vectors": vectors,
        },
    )


def _context_init(
    model: Model[ContextIn, Floats2d], X: ContextIn | None = None, Y: Floats2d | None = None
) -> None:
    n_words, width, size = model.get_dim("nV"), model.get_dim("nI"), model.get_dim("nK")
    ops = model.ops
    vectors = model.attrs.pop("init_vectors", None)
    if vectors is None:
        vectors = np.random.default_rng(0).uniform(-0.5 / width, 0.5 / width, (n_words, width))
    model.set_param("E", ops.asarray2f(np.array(vectors, dtype=np.float32)))
    model.attrs["init_vectors"] = None
    model.set_param("pad", ops.alloc1f(width))
    # Start as the mean of the context vectors: the hidden vector gensim's CBOW output weights
    # were trained against.
    if model.attrs["diagonal"]:
        model.set_param("C", ops.alloc2f(size, width) + 1.0 / size)
    else:
        eye = np.eye(width, dtype=np.float32) / size
        model.set_param("C", ops.asarray2f(np.concatenate([eye] * size, axis=1)))
    model.set_param("b", ops.alloc1f(width))


def _context_forward(
    model: Model[ContextIn, Floats2d], X: ContextIn, is_train: bool
) -> tuple[Floats2d, Callable]:
    ops, xp = model.ops, model.ops.xp
    E = cast(Floats2d, model.get_param("E"))
    C = model.get_param("C")
    b = cast(Floats1d, model.get_param("b"))
    n_words, width = E.shape
    n_rows, size = X.shape
    is_pad = X >= n_words
    if not is_train and model.attrs["diagonal"]:
        return _diagonal_hidden(model, X, is_pad), _no_backprop
    gathered = E[xp.where(is_pad, 0, X)]  # (B, K, d)
    gathered[is_pad] = model.get_param("pad")
    drop_mask = None
    if is_train and model.attrs["dropout_rate"]:
        drop_mask = _dropout_mask(ops, gathered.shape, model.attrs["dropout_rate"])
        gathered *= drop_mask
    if model.attrs["diagonal"]:
        hidden = (gathered * C[None]).sum(axis=1)
    else:
        hidden = gathered.reshape(n_rows, size * width) @ C.T
    hidden += b
    output = ops.alloc((n_rows, width + 1), dtype=E.dtype, zeros=False)
    output[:, :width] = hidden
    output[:, width] = 1.0

    def backprop(d_output: Floats2d) -> ContextIn:
        d_hidden = ops.as_contig(d_output[:, :width])
        model.inc_grad("b", d_hidden.sum(axis=0))
        if model.attrs["diagonal"]:
            model.inc_grad("C", (gathered * d_hidden[:, None, :]).sum(axis=0))
            d_gathered = d_hidden[:, None, :] * C[None]
        else:
            flat = gathered.reshape(n_rows, size * width)
            model.inc_grad("C", d_hidden.T @ flat)
            d_gathered = (d_hidden @ C).reshape(n_rows, size, width)
        if drop_mask is not None:
            d_gathered *= drop_mask
        model.inc_grad("pad", d_gathered[is_pad].sum(axis=0))
        if model.attrs["fine_tune"]:
            d_gathered[is_pad] = 0.0
            d_E = ops.alloc((n_words, width), dtype=E.dtype)
            ops.scatter_add(
                d_E,
                ops.as_contig(xp.where(is_pad, 0, X).reshape(-1).astype("int32")),
                ops.as_contig(d_gathered.reshape(-1, width)),
            )
            model.inc_grad("E", d_E)
        return ops.alloc2i(n_rows, size)

    return output, backprop


def _diagonal_hidden(model: Model[ContextIn, Floats2d], X: ContextIn, is_pad) -> Floats2d:
    """The diagonal forward pass for prediction: the same sums, in the same order, as the
    training pass (bit for bit), one position at a time, without the (B, K, d) gather."""
    ops, xp = model.ops, model.ops.xp
    E, C, pad = model.get_param("E"), model.get_param("C"), model.get_param("pad")
    width = E.shape[1]
    ids = xp.where(is_pad, 0, X)
    hidden = ops.alloc((X.shape[0], width), dtype=E.dtype)  # contiguous: faster to add into
    for i in range(X.shape[1]):
        column = E[ids[:, i]]
        column[is_pad[:, i]] = pad
        column *= C[i]
        hidden += column
    hidden += model.get_param("b")
    output = ops.alloc((X.shape[0], width + 1), dtype=E.dtype, zeros=False)
    output[:, :width] = hidden
    output[:, width] = 1.0
    return output


def _no_backprop(d_output: Floats2d) -> ContextIn:
    raise ValueError("the prediction pass has no backward pass; call the layer with is_train")


def _dropout_mask(ops, shape: tuple[int, ...], rate: float) -> Floats2d:
    """Inverted-dropout mask, as ``ops.get_dropout_mask`` but drawn in float32 (that one draws
    float64 and dominated a training step)."""
    xp = ops.xp
    if xp is np:  # seeded by thinc's fix_random_seed, like ops.get_dropout_mask
        draws = np.random.default_rng(np.random.randint(2**31)).random(shape, dtype=np.float32)
    else:
        draws = xp.random.random(shape, dtype="float32")
    return (draws >= rate).astype("float32") * (1.0 / (1.0 - rate))


# -- tree: hidden vectors and targets -> log-likelihoods ------------------------------------


@registry.layers("spacy_hs.TreeLogLikelihood.v1")
def TreeLogLikelihood(
    path_offsets: np.ndarray,
    path_nodes: np.ndarray,
    path_codes: np.ndarray,
    width: int | None = None,
    *,
    weights: Floats2d | None = None,
) -> Model[TreeIn, Floats1d]:
    """log P(target | hidden) through a binary tree given as flat word paths (see tree.py).

    weights: initial output weights (n_inner, width), e.g. gensim's ``syn1`` with a zero bias
        column appended; copied. Default: zeros, as gensim initialises ``syn1``.
    """
    if weights is not None:
        width = weights.shape[1]
    depths = np.diff(path_offsets)
    steps = np.arange(depths.max())
    # (V, max depth) tables: each word's path, padded with node 0 and sign 0 (masked).
    inside = steps[None, :] < depths[:, None]
    flat = path_offsets[:-1, None] + np.minimum(steps[None, :], depths[:, None] - 1)
    nodes = np.where(inside, path_nodes[flat], 0).astype(np.int32)
    signs = np.where(inside, 1.0 - 2.0 * path_codes[flat], 0.0).astype(np.float32)
    return Model(
        "tree_log_likelihood",
        _tree_forward,
        init=_tree_init,
        dims={"nI": width, "nN": len(path_offsets) - 2},
        params={"W": None},
        attrs={
            "path_nodes": nodes,
            "path_signs": signs,
            "depths": depths.astype(np.int32),
            "init_weights": weights,
        },
    )


def _tree_init(model: Model[TreeIn, Floats1d], X: TreeIn | None = None, Y=None) -> None:
    ops = model.ops
    for name in ("path_nodes", "path_signs", "depths"):
        model.attrs[name] = ops.asarray(model.attrs[name])
    weights = model.attrs.pop("init_weights", None)
    model.attrs["init_weights"] = None
    if weights is None:
        weights = ops.alloc2f(model.get_dim("nN"), model.get_dim("nI"))
    model.set_param("W", ops.asarray2f(np.array(weights, dtype=np.float32)))


def _log_sigmoid(xp, x):
    return xp.minimum(x, 0.0) - xp.log1p(xp.exp(-xp.abs(x)))


def _tree_forward(
    model: Model[TreeIn, Floats1d], X: TreeIn, is_train: bool
) -> tuple[Floats1d, Callable]:
    ops, xp = model.ops, model.ops.xp
    hidden, targets = X
    W = cast(Floats2d, model.get_param("W"))
    depth = int(model.attrs["depths"][targets].max()) if len(targets) else 0
    nodes = model.attrs["path_nodes"][targets, :depth]  # (B, D)
    signs = model.attrs["path_signs"][targets, :depth]  # (B, D), 0 past the path's end
    rows = W[nodes]  # (B, D, w)
    dots = (rows @ hidden[:, :, None])[:, :, 0]  # (B, D)
    margins = signs * dots
    log_probs = (_log_sigmoid(xp, margins) * (signs != 0)).sum(axis=1)

    def backprop(d_log_probs: Floats1d) -> Floats2d:
        # d log_sigmoid(s * dot) / d dot = s * sigmoid(-s * dot); padded steps have s = 0.
        d_dots = d_log_probs[:, None] * signs * ops.sigmoid(-margins)
        d_hidden = (d_dots[:, None, :] @ rows)[:, 0, :]
        # Only the real path steps (about half of the padded ones) reach the output weights.
        row_ids, step_ids = xp.nonzero(signs)
        d_W = ops.alloc(W.shape, dtype=W.dtype)
        ops.scatter_add(
            d_W,
            ops.as_contig(nodes[row_ids, step_ids].astype("int32")),
            ops.as_contig(d_dots[row_ids, step_ids][:, None] * hidden[row_ids]),
        )
        model.inc_grad("W", d_W)
        return d_hidden

    return log_probs, backprop


# -- the whole head --------------------------------------------------------------------------


@registry.layers("spacy_hs.HierarchicalLogBilinear.v1")
def HierarchicalLogBilinear(
    context: Model[ContextIn, Floats2d], tree: Model[TreeIn, Floats1d]
) -> Model[HeadIn, Floats1d]:
    """(context ids (B, K), targets (B,)) -> log P(target | context) (B,)."""
    return Model(
        "hierarchical_log_bilinear",
        _head_forward,
        init=_head_init,
        layers=[context, tree],
        refs={"context": context, "tree": tree},
    )


def _head_init(model: Model[HeadIn, Floats1d], X: HeadIn | None = None, Y=None) -> None:
    for layer in model.layers:
        layer.initialize()


def _head_forward(
    model: Model[HeadIn, Floats1d], X: HeadIn, is_train: bool
) -> tuple[Floats1d, Callable]:
    context, tree = model.get_ref("context"), model.get_ref("tree")
    ids, targets = X
    hidden, backprop_context = context(ids, is_train)
    log_probs, backprop_tree = tree((hidden, targets), is_train)

    def backprop(d_log_probs: Floats1d) -> HeadIn:
        backprop_context(backprop_tree(d_log_probs))
        return ids, targets

    return log_probs, backprop
