"""gensim's own CBOW-style head: the hidden vector gensim trains its inner-node weights against.

``hidden = mean (cbow_mean=1) or sum (cbow_mean=0) of the last `window` known context vectors``,
scored with gensim's ``syn1``. It has no parameters of its own: it reads the HS model's vectors
and inner-node weights, so it is never stored, and every HS model has one. It cannot predict a
sentence's first word (an empty context has no mean).

The head is a thinc Model, ``chain(context, output)`` (``spacy_hs.CBOWHead.v1``):
``spacy_hs.CBOWContext.v1`` (the hidden vector, with its numpy backprop), whose
``input_vectors`` are the HS model's ``vectors``, and ``spacy_hs.TreeOutput.v1`` tied to its
``inner_node_weights`` (``base.bind``). The queries call the compiled kernels with those params.

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
from thinc.layers.chain import chain
from thinc.model import Model
from thinc.types import Floats2d, Ints2d

from .. import _tree_search, registry, validation
from ..errors import ConfigError, Errors
from ..util import is_positive_int
from .base import BLOCK, TreeHead, bind, last_known
from .output import TreeOutput

if TYPE_CHECKING:
    from ..hs_vocab import HSVocab
    from ..tree import HuffmanTree

ARCHITECTURE = "spacy_hs.CBOWHead.v1"  # the head, in spacy_hs.registry.heads
CONTEXT_ARCHITECTURE = "spacy_hs.CBOWContext.v1"
# The head's thinc Model, under the same name in spaCy's architectures registry.
MODEL_ARCHITECTURE = "spacy_hs.CBOWHead.v1"


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


def cbow_arguments(model: Model, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The arguments of the compiled kernels (``context_hidden_matrix``, ``fused_log_probs``)
    for a context layer and a context matrix: its vectors, each row's last ``context_size``
    known ids (checked against the vocabulary), and whether to take the mean."""
    vectors = model.get_param("input_vectors")
    recent = validation.word_id_array(
        last_known(context_ids, model.attrs["context_size"]), len(vectors), "context_ids"
    )
    return vectors, recent, model.attrs["mean"]


def cbow_hidden(model: Model, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden vectors float32 (B, d) and has_context bool (B,): rows with no known word have a
    zero hidden vector and no context."""
    return _tree_search.context_hidden_matrix(*cbow_arguments(model, context_ids))


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


@registry.architectures(MODEL_ARCHITECTURE)
def CBOWHeadModel(context: Model[Ints2d, Floats2d]) -> Model[Ints2d, Floats2d]:
    """Node logits (B, V - 1) of a context matrix: ``chain(context, output)``, the output
    layer (``spacy_hs.TreeOutput.v1``) tied to the HS model's ``inner_node_weights`` (gensim's
    ``syn1``); refs "context", "output". Registered as ``spacy_hs.CBOWHead.v1``."""
    output = TreeOutput(nI=context.maybe_get_dim("nO"), tied=True)
    model = chain(context, output)
    model.set_ref("context", context)
    model.set_ref("output", output)
    return model


@registry.heads(ARCHITECTURE)
class CBOWHead(TreeHead):
    """The CBOW-style head of an ``HSModel``, the thinc Model ``chain(CBOWContext,
    TreeOutput)`` (``spacy_hs.CBOWHead.v1``).

    Its layers' params are the HS model's vectors and inner-node weights (``bind``: read, not
    copied, never saved). A head keeps the arrays it was built with; ``HSModel.head("cbow")``
    builds a new one after ``set_vectors``.

    hs_model: the HS model (its vectors, inner-node weights, tree and ``cbow_mean``).
    context_size: how many of the last known context words are averaged; None: the model's
        ``window`` (what ``HSModel.head("cbow")`` answers with).
    """

    name = "cbow"
    architecture = ARCHITECTURE
    predicts_sentence_start = False

    def __init__(self, hs_model: HSVocab, context_size: int | None = None):
        window = hs_model.settings["window"] if context_size is None else context_size
        mean = bool(hs_model.settings["cbow_mean"])
        # The functions the model section names, called directly: resolving it costs
        # milliseconds, and HSModel builds a head for each context length of its gensim-style
        # queries.
        model = CBOWHeadModel(CBOWContext(window, mean))
        bind(model, hs_model)
        model.initialize()
        context = {"@architectures": CONTEXT_ARCHITECTURE, "window": int(window), "mean": mean}
        super().__init__(
            hs_model.tree, model, {"@architectures": MODEL_ARCHITECTURE, "context": context}
        )
        self.hs_model = hs_model
        self._context_size = context_size

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSVocab
    ) -> CBOWHead:
        """The head of ``hs_model`` with the config's ``context_size`` (None: its window); it
        has no arrays of its own."""
        return cls(hs_model, config.get("context_size"))

    @property
    def config(self) -> dict[str, Any]:
        config = super().config
        if self._context_size is not None:
            config["context_size"] = int(self._context_size)
        return config

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The context layer's hidden vectors without its backprop closure: the mean (or sum)
        of the last ``context_size`` known vectors; has_context False for none."""
        return cbow_hidden(self.context, context_ids)

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """``TreeHead.log_prob`` in one compiled pass per block that never stores the hidden
        vectors (``fused_log_probs``): the same values."""
        context_ids = np.asarray(context_ids)
        word_ids = np.asarray(word_ids)
        if context_ids.ndim != 2:
            raise ConfigError(Errors.E008.format(shape=context_ids.shape))
        if len(word_ids) != len(context_ids):
            raise ConfigError(Errors.E022.format(n=len(context_ids), n_words=len(word_ids)))
        context, output_weights = self.context, self.output_weights
        out = np.empty(len(word_ids))
        for start in range(0, len(word_ids), BLOCK):
            rows = slice(start, start + BLOCK)
            out[rows] = fused_log_probs(
                *cbow_arguments(context, context_ids[rows]),
                word_ids[rows],
                output_weights,
                self.tree,
            )
        return out

    def top_k_of_ids(self, ids: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k (ids int32 (k,), log-probabilities float64 (k,)) after one context
        of known word ids, all of them read: the kernel forms the hidden vector itself, so a
        single query allocates no intermediate arrays (at its latency that cost dominates)."""
        context = self.context
        word_ids, log_probs, _ = _tree_search.top_k_context(
            context.get_param("input_vectors"),
            ids,
            context.attrs["mean"],
            self.output_weights,
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
    return fused_log_probs(
        model.vectors,
        validation.word_id_array(context_ids, len(model.words), "context_ids"),
        bool(model.settings["cbow_mean"]),
        word_ids,
        model.inner_node_weights,
        model.tree,
    )


def fused_log_probs(
    vectors: np.ndarray,
    context_ids: np.ndarray,
    mean: bool,
    word_ids: np.ndarray,
    output_weights: np.ndarray,
    tree: HuffmanTree,
) -> np.ndarray:
    """log P(word_ids[b] | context b), float64 (B,), for a checked context matrix of known
    ids (negative: padding): each row's CBOW hidden vector formed in a buffer and scored along
    the word's path in one compiled pass, never stored. NaN where the word id is negative or
    the row has no known word."""
    return _tree_search.context_path_log_probs(
        vectors,
        context_ids,
        mean,
        validation.word_id_array(word_ids, len(vectors)),
        output_weights,
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
    )
