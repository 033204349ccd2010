"""The directional next-word head: a hierarchical log-bilinear model on the HS model's tree.

gensim's CBOW predicts a centre word from both sides, so as a next-word predictor it does little
better than word frequency. This head reads only the words before, each through its own
position weights (Mnih & Hinton's log-bilinear model), and scores the next word through the same
Huffman tree as the CBOW head::

    hidden = sum over i = 1..K of C_i * vec(w_{t-i}) + b
    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * (hidden . W[n] + bias[n]))

``w_{t-i}`` is the i-th most recent *known* word (unknown words are skipped, as everywhere in
spacy-hs); before a sentence's first word, positions are filled with a learned padding vector, so
an empty context predicts a sentence's first word. ``W`` starts from gensim's ``syn1`` and the
node biases from 0. The biases are stored as the last column of ``output_weights`` and the hidden
vectors carry a constant 1 in their last column, so top-k and log-probabilities go through the
compiled tree kernels unchanged: exact, and with the same best-first search as the CBOW head.

The thinc layers are in layers.py; ``train_head`` trains them with Adam and early stopping on
held-out perplexity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.api import Model

from .. import _tree_search, registry
from ..errors import ConfigError, Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from .layers import HierarchicalLogBilinear, LogBilinearContext, TreeLogLikelihood

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "directional"
ARCHITECTURE = "spacy_hs.HierarchicalLogBilinear.v1"
# Arrays saved with the model (as head.<name>.npy), all float32, and the thinc params they hold.
ARRAYS = {
    "input_vectors": ("context", "E"),
    "padding_vector": ("context", "pad"),
    "position_weights": ("context", "C"),
    "hidden_bias": ("context", "b"),
    "output_weights": ("tree", "W"),
}


@registry.heads(ARCHITECTURE)
class DirectionalHead:
    """A trained hierarchical log-bilinear head; satisfies ``heads.protocol.Predictor``.

    model: the thinc ``HierarchicalLogBilinear`` model.
    tree: the HS model's Huffman tree, which the head's output weights belong to.
    history: what training recorded (per-epoch loss, held-out perplexity, timings), if known.
    """

    name = NAME
    predicts_sentence_start = True

    def __init__(self, model: Model, tree: HuffmanTree, history: dict[str, Any] | None = None):
        self.model = model
        self.tree = tree
        self.history = dict(history or {})

    @property
    def n_words(self) -> int:
        """Vocabulary size of the HS model (also the padding id of context matrices)."""
        return self.tree.n_words

    @classmethod
    def from_hs_model(
        cls,
        hs_model: HSModel,
        *,
        context_size: int = 5,
        diagonal: bool = True,
        fine_tune_vectors: bool = True,
        dropout: float = 0.5,
    ) -> DirectionalHead:
        """A new, untrained head: input vectors copied from ``hs_model.vectors``, output weights
        from gensim's ``syn1`` with zero node biases (see ``train_head`` for the options)."""
        if not is_positive_int(context_size):
            raise ConfigError(
                Errors.E403.format(
                    option="context_size", value=context_size, expected="a positive integer"
                )
            )
        n_inner = len(hs_model) - 1
        weights = np.zeros((n_inner, hs_model.vector_size + 1), dtype=np.float32)
        weights[:, :-1] = hs_model.inner_node_weights
        tree = hs_model.tree
        model = HierarchicalLogBilinear(
            LogBilinearContext(
                context_size=context_size,
                diagonal=diagonal,
                fine_tune=fine_tune_vectors,
                dropout=dropout,
                vectors=hs_model.vectors,
            ),
            TreeLogLikelihood(tree.path_offsets, tree.path_nodes, tree.path_codes, weights=weights),
        )
        model.initialize()
        return cls(model, tree)

    # -- the Predictor protocol, and scoring ---------------------------------------------

    @property
    def context_size(self) -> int:
        return int(self._context.get_dim("nK"))

    @property
    def diagonal(self) -> bool:
        return bool(self._context.attrs["diagonal"])

    @property
    def output_weights(self) -> np.ndarray:
        """float32 (V - 1, d + 1): per-node weights, with the node biases as the last column."""
        weights = self.model.ops.to_numpy(self._tree.get_param("W"))
        return np.ascontiguousarray(weights, dtype=np.float32)

    def hidden_from_ids(self, id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Hidden vectors (B, d + 1) for contexts of known word ids, oldest first.

        Every context is usable: fewer than ``context_size`` words (none included) means the
        sentence started, and the missing positions are padded. So ``has_context`` is all True.
        """
        return self.hidden(self.context_matrix(id_lists)), np.ones(len(id_lists), dtype=bool)

    def hidden_from_matrix(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``hidden_from_ids`` for an int32 matrix (B, K') of word ids, oldest first, negative
        entries being padding (``Predictor``); every row has a context."""
        contexts = self.from_padded_matrix(context_ids)
        return self.hidden(contexts), np.ones(len(contexts), dtype=bool)

    def log_prob_from_matrix(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """log P(word_ids[b] | context b) for a padded matrix as in ``hidden_from_matrix``; NaN
        where the word id is negative. With diagonal position weights, in one compiled pass
        that never stores the hidden vectors (the same values as ``log_probs``)."""
        contexts = self.from_padded_matrix(context_ids)
        if not self.diagonal:
            return self.log_probs(contexts, word_ids)
        context, ops = self._context, self.model.ops
        tree = self.tree
        return _tree_search.directional_path_log_probs(
            *(ops.to_numpy(context.get_param(name)) for name in ("E", "pad", "C", "b")),
            contexts,
            np.ascontiguousarray(word_ids, dtype=np.int32),
            self.output_weights,
            tree.path_offsets,
            tree.path_nodes,
            tree.path_codes,
        )

    def from_padded_matrix(self, context_ids: np.ndarray) -> np.ndarray:
        """The head's own context matrix (``context_matrix``) of a matrix of word ids, oldest
        first, negative entries being padding: known ids right-aligned, reversed (most recent
        first), padded with the padding id and cut or extended to ``context_size`` columns."""
        context_ids = np.asarray(context_ids)
        if context_ids.ndim != 2:
            raise ConfigError(Errors.E008.format(shape=context_ids.shape))
        is_known = context_ids >= 0
        if (is_known[:, 1:] >= is_known[:, :-1]).all():  # padded on the left (the component's)
            aligned = context_ids[:, ::-1]
        else:  # a stable sort of the known flags moves padding left, keeping the words' order
            order = np.argsort(is_known, axis=1, kind="stable")
            aligned = np.take_along_axis(context_ids, order, axis=1)[:, ::-1]
        size = self.context_size
        contexts = np.full((len(aligned), size), self.n_words, dtype=np.int32)
        width = min(size, aligned.shape[1])
        contexts[:, :width] = np.where(aligned[:, :width] >= 0, aligned[:, :width], self.n_words)
        return contexts

    def hidden(self, contexts: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Hidden vectors, float32 (B, d + 1), for context matrix rows (``context_matrix``)."""
        ops = self.model.ops
        hidden = np.empty((len(contexts), self._context.get_dim("nO")), dtype=np.float32)
        for start in range(0, len(contexts), batch_size):  # bounds the (B, K, d) gather
            rows = ops.asarray2i(contexts[start : start + batch_size])
            hidden[start : start + batch_size] = ops.to_numpy(self._context.predict(rows))
        return hidden

    def log_probs(
        self, contexts: np.ndarray, targets: np.ndarray, batch_size: int = 8192
    ) -> np.ndarray:
        """log P(targets[i] | contexts[i]) for context matrix rows (see ``context_matrix``),
        through the compiled path kernel that ``HSModel.log_prob_next`` uses; NaN where a
        target is negative."""
        out = np.empty(len(targets), dtype=np.float64)
        weights, tree = self.output_weights, self.tree
        for start in range(0, len(targets), batch_size):
            out[start : start + batch_size] = _tree_search.path_log_probs(
                self.hidden(contexts[start : start + batch_size]),
                np.ascontiguousarray(targets[start : start + batch_size], dtype=np.int32),
                weights,
                tree.path_offsets,
                tree.path_nodes,
                tree.path_codes,
            )
        return out

    def context_matrix(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """int32 (B, K): column i - 1 holds the i-th most recent word, or the padding id."""
        size = self.context_size
        ids = np.full((len(id_lists), size), self.n_words, dtype=np.int32)
        for row, context in enumerate(id_lists):
            recent = list(context)[-size:][::-1]
            ids[row, : len(recent)] = recent
        return ids

    # -- serialization (HSModel stores config and arrays as they are) --------------------

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings stored in the model header as ``header["head"]``."""
        return {
            "name": NAME,
            "architecture": ARCHITECTURE,
            "context_size": self.context_size,
            "width": int(self._context.get_dim("nI")),
            "diagonal": self.diagonal,
            "fine_tune_vectors": bool(self._context.attrs["fine_tune"]),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The head's parameters as float32 numpy arrays, by the names in ``ARRAYS``."""
        ops = self.model.ops
        layers = {"context": self._context, "tree": self._tree}
        return {
            name: np.ascontiguousarray(ops.to_numpy(layers[layer].get_param(param)), np.float32)
            for name, (layer, param) in ARRAYS.items()
        }

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> DirectionalHead:
        """Rebuild a saved head for ``hs_model``; ModelFileError if config or arrays do not
        fit."""
        if not isinstance(config, dict) or config.get("architecture") != ARCHITECTURE:
            found = config.get("architecture") if isinstance(config, dict) else config
            raise ModelFileError(Errors.E405.format(found=found, expected=repr(ARCHITECTURE)))
        size, width = config.get("context_size"), config.get("width")
        if not is_positive_int(size) or not is_positive_int(width):
            raise ModelFileError(Errors.E406.format(size=size, width=width))
        n_words, diagonal = len(hs_model), bool(config.get("diagonal"))
        expected = {
            "input_vectors": (n_words, width),
            "padding_vector": (width,),
            "position_weights": (size, width) if diagonal else (width, size * width),
            "hidden_bias": (width,),
            "output_weights": (n_words - 1, width + 1),
        }
        for name, shape in expected.items():
            if name not in arrays:
                raise ModelFileError(Errors.E407.format(name=name))
            if arrays[name].shape != shape or arrays[name].dtype != np.float32:
                raise ModelFileError(
                    Errors.E408.format(
                        name=name,
                        shape=arrays[name].shape,
                        dtype=arrays[name].dtype,
                        expected=shape,
                        dtype_expected="float32",
                    )
                )
        tree = hs_model.tree
        context = LogBilinearContext(
            n_words,
            width,
            size,
            diagonal=diagonal,
            fine_tune=bool(config.get("fine_tune_vectors")),
        )
        model = HierarchicalLogBilinear(
            context,
            TreeLogLikelihood(tree.path_offsets, tree.path_nodes, tree.path_codes, width + 1),
        )
        model.initialize()
        head = cls(model, tree)
        head.set_arrays(arrays)
        return head

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the parameters from arrays by the names in ``ARRAYS`` (copied)."""
        layers = {"context": self._context, "tree": self._tree}
        for name, (layer, param) in ARRAYS.items():
            layers[layer].set_param(param, self.model.ops.asarray(arrays[name].copy()))

    @classmethod
    def max_array_shapes(
        cls, config: dict[str, Any], n_words: int, vector_size: int
    ) -> dict[str, tuple[int, ...]]:
        """The largest shape of each array of a saved head of this ``config``, for a model of
        ``n_words`` words and ``vector_size`` dimensions (here the exact shapes): loading
        compares meta.json with them before it reads any array (``hs_model``). ModelFileError
        if the config does not fit the model (the head's width is the vectors' width)."""
        size, width = config.get("context_size"), config.get("width")
        if not is_positive_int(size) or not is_positive_int(width) or width != vector_size:
            raise ModelFileError(
                Errors.E413.format(size=size, width=width, vector_size=vector_size)
            )
        diagonal = bool(config.get("diagonal"))
        return {
            "input_vectors": (n_words, width),
            "padding_vector": (width,),
            "position_weights": (size, width) if diagonal else (width, size * width),
            "hidden_bias": (width,),
            "output_weights": (n_words - 1, width + 1),
        }

    # -- internals ----------------------------------------------------------------------

    @property
    def _context(self) -> Model:
        return self.model.get_ref("context")

    @property
    def _tree(self) -> Model:
        return self.model.get_ref("tree")
