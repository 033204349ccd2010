"""gensim's own CBOW-style head: the hidden vector gensim trains its inner-node weights against.

``hidden = mean (cbow_mean=1) or sum (cbow_mean=0) of the last `window` known context vectors``,
scored with gensim's ``syn1``. It has no parameters of its own: it reads the HS model's vectors
and inner-node weights, so it is never stored, and every HS model has one. It cannot predict a
sentence's first word (an empty context has no mean).

The hidden vector is summed in order in float32, as gensim does (``np.add.reduceat`` would
reorder the additions), by one compiled kernel for every form of context (lists of ids, a
matrix, one context), so batch and single results are equal bit for bit. gensim's
``predict_output_word`` reads every known context word, not the last ``window``: the head of
``HSModel``'s gensim-compatible methods is this one with ``context_size`` the longest context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.model import Model
from thinc.types import Floats2d, Ints2d

from .. import _tree_search, registry, validation
from ..errors import ConfigError, Errors
from ..util import is_positive_int
from .base import BLOCK, TreeHead, last_known

if TYPE_CHECKING:
    from ..hs_vocab import HSVocab

ARCHITECTURE = "spacy_hs.CBOWHead.v1"
CONTEXT_ARCHITECTURE = "spacy_hs.CBOWContext.v1"


@registry.architectures(CONTEXT_ARCHITECTURE)
def CBOWContext(window: int, mean: bool = True) -> Model[Ints2d, Floats2d]:
    """The CBOW hidden vectors (B, d) of a context matrix (B, K') of word ids, oldest first,
    negative entries padding: the mean (or sum) of the last ``window`` known ids' vectors, a
    zero row for none. Its param ``input_vectors`` is the HS model's ``vectors``."""
    if not is_positive_int(window):
        raise ValueError(f"window {window!r} must be a positive integer")
    return Model(
        "cbow_context",
        cbow_forward,
        init=cbow_init,
        dims={"nV": None, "nO": None},
        params={"input_vectors": None},
        attrs={
            "context_size": window,
            "mean": bool(mean),
            "hs_model_params": {"input_vectors": "vectors"},
        },
    )


def cbow_hidden(model: Model, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden vectors float32 (B, d) and has_context bool (B,): rows with no known word have a
    zero hidden vector and no context."""
    vectors = model.get_param("input_vectors")
    recent = validation.word_id_array(
        last_known(context_ids, model.attrs["context_size"]), len(vectors), "context_ids"
    )
    return _tree_search.context_hidden_matrix(vectors, recent, model.attrs["mean"])


def cbow_forward(
    model: Model[Ints2d, Floats2d], X: Ints2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Ints2d]]:
    Y, _ = cbow_hidden(model, X)

    def backprop(dY: Floats2d) -> Ints2d:
        """Each known id of a row gets the row's gradient, divided by their number for the
        mean; word ids have no gradient (zeros)."""
        recent = last_known(X, model.attrs["context_size"])
        known = recent >= 0
        scale = 1.0 / np.maximum(known.sum(axis=1), 1) if model.attrs["mean"] else 1.0
        rows = np.asarray(dY, dtype=np.float32) * np.reshape(scale, (-1, 1))
        d_vectors = np.zeros_like(model.get_param("input_vectors"))
        np.add.at(d_vectors, recent[known], np.repeat(rows, known.sum(axis=1), axis=0))
        model.inc_grad("input_vectors", d_vectors)
        return model.ops.alloc2i(*X.shape)

    return Y, backprop


def cbow_init(model: Model, X: Ints2d | None = None, Y: Floats2d | None = None) -> None:
    """The dims of the vectors ``bind`` set."""
    model.set_dim("nO", model.get_param("input_vectors").shape[1])


@registry.heads(ARCHITECTURE)
class CBOWHead(TreeHead):
    """The CBOW-style head of an ``HSModel``.

    model: the HS model (its vectors, inner-node weights, tree and settings are read, not
        copied).
    context_size: how many of the last known context words are averaged; None: the model's
        ``window`` (what ``HSModel.head("cbow")`` answers with).
    """

    name = "cbow"
    predicts_sentence_start = False

    def __init__(self, model: HSVocab, context_size: int | None = None):
        super().__init__(model.tree)
        self.model = model
        self._context_size = context_size

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], model: HSVocab
    ) -> CBOWHead:
        return cls(model, config.get("context_size"))

    @property
    def context_size(self) -> int:
        if self._context_size is not None:
            return int(self._context_size)
        return int(self.model.settings["window"])

    @property
    def output_weights(self) -> np.ndarray:
        return self.model.inner_node_weights

    @property
    def config(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE}

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean (or sum) of the context's known vectors; has_context False for none."""
        return hidden_from_matrix(self.model, last_known(context_ids, self.context_size))

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """``TreeHead.log_prob`` in one compiled pass per block that never stores the hidden
        vectors (``log_prob_from_matrix``): the same values."""
        context_ids = np.asarray(context_ids)
        word_ids = np.asarray(word_ids)
        if context_ids.ndim != 2:
            raise ConfigError(Errors.E008.format(shape=context_ids.shape))
        if len(word_ids) != len(context_ids):
            raise ConfigError(Errors.E022.format(n=len(context_ids), n_words=len(word_ids)))
        out = np.empty(len(word_ids))
        for start in range(0, len(word_ids), BLOCK):
            rows = slice(start, start + BLOCK)
            recent = last_known(context_ids[rows], self.context_size)
            out[rows] = log_prob_from_matrix(self.model, recent, word_ids[rows])
        return out

    def top_k_of_ids(self, ids: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k (ids int32 (k,), log-probabilities float64 (k,)) after one context
        of known word ids, all of them read: the kernel forms the hidden vector itself, so a
        single query allocates no intermediate arrays (at its latency that cost dominates)."""
        model = self.model
        word_ids, log_probs, _ = _tree_search.top_k_context(
            model.vectors,
            ids,
            bool(model.settings["cbow_mean"]),
            model.inner_node_weights,
            self.tree.children,
            self.tree.root,
            min(int(k), self.n_words),
        )
        return word_ids, log_probs


def hidden_from_ids(
    model: HSVocab, id_lists: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """CBOW hidden vectors of contexts given as lists of known word ids: float32 (B, d) and
    has_context bool (B,); an empty list gets a zero row and has_context False."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    offsets = np.zeros(len(id_lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=offsets[-1])
    hidden = _tree_search.context_hidden(
        model.vectors, flat, offsets, bool(model.settings["cbow_mean"])
    )
    return hidden, lengths > 0


def hidden_from_matrix(model: HSVocab, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hidden_from_ids`` for contexts given as rows of an int matrix (B, K): word ids,
    oldest first; negative entries (padding) are skipped. Equal to ``hidden_from_ids`` of each
    row's non-negative ids, without a Python object per context."""
    context_ids = np.asarray(context_ids)
    if context_ids.ndim != 2:
        raise ConfigError(Errors.E008.format(shape=context_ids.shape))
    return _tree_search.context_hidden_matrix(
        model.vectors,
        validation.word_id_array(context_ids, len(model.words), "context_ids"),
        bool(model.settings["cbow_mean"]),
    )


def log_prob_from_matrix(
    model: HSVocab, context_ids: np.ndarray, word_ids: np.ndarray
) -> np.ndarray:
    """log P(word_ids[b] | context b) for contexts given as in ``hidden_from_matrix``; NaN
    where the word id is negative or the context has no word. The values of the hidden vectors
    of ``hidden_from_matrix`` scored along each word's path, in one compiled pass."""
    context_ids = np.asarray(context_ids)
    if context_ids.ndim != 2:
        raise ConfigError(Errors.E008.format(shape=context_ids.shape))
    tree = model.tree
    return _tree_search.context_path_log_probs(
        model.vectors,
        validation.word_id_array(context_ids, len(model.words), "context_ids"),
        bool(model.settings["cbow_mean"]),
        validation.word_id_array(word_ids, len(model.words)),
        model.inner_node_weights,
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
    )
