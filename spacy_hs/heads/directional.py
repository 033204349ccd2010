"""The directional next-word head: a hierarchical log-bilinear model on the HS model's tree.

gensim's CBOW predicts a centre word from both sides, so as a next-word predictor it does little
better than word frequency. This head reads only the words before, each through its own
position weights (Mnih & Hinton's log-bilinear model), and scores the next word through the same
Huffman tree as the CBOW head::

    hidden = sum over i = 1..K of C_i * vec(w_{t-i}) + b, then a constant 1
    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * (hidden . W[n] + bias[n]))

``w_{t-i}`` is the i-th most recent *known* word (unknown words are skipped, as everywhere in
spacy-hs); before a sentence's first word, positions are filled with a learned padding vector, so
an empty context predicts a sentence's first word. The node biases are the last column of
``output_weights``, matched by the hidden vector's constant 1. The hidden vector is computed by
``hs_lbl_hidden`` in _hs_kernels.h, the code the training engine (_head_train.pyx) uses; the
queries are ``TreeHead``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _tree_search, registry
from ..errors import ConfigError, Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from .base import BLOCK, TreeHead, last_known

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "directional"
ARCHITECTURE = "spacy_hs.HierarchicalLogBilinear.v1"
# Arrays saved with the model (as head.<name>.npy), all float32.
ARRAY_NAMES = (
    "input_vectors",
    "padding_vector",
    "position_weights",
    "hidden_bias",
    "output_weights",
)


@registry.heads(ARCHITECTURE)
class DirectionalHead(TreeHead):
    """A trained hierarchical log-bilinear head.

    arrays: the parameters by the names in ``ARRAY_NAMES`` (float32; copied): input vectors
        (V, d), padding vector (d,), position weights (K, d) if diagonal else (d, K * d),
        hidden bias (d,), output weights (V - 1, d + 1) with the node biases last.
    tree: the HS model's Huffman tree, which the output weights belong to.
    history: what training recorded (per-epoch loss, held-out perplexity, timings), if known.
    """

    name = NAME
    architecture = ARCHITECTURE
    predicts_sentence_start = True

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        tree: HuffmanTree,
        *,
        diagonal: bool = True,
        fine_tune_vectors: bool = True,
        history: dict[str, Any] | None = None,
    ):
        super().__init__(tree)
        self.arrays = {
            name: np.ascontiguousarray(arrays[name], dtype=np.float32).copy()
            for name in ARRAY_NAMES
        }
        self.diagonal = bool(diagonal)
        self.fine_tune_vectors = bool(fine_tune_vectors)
        self.history = dict(history or {})
        positions = self.arrays["position_weights"]
        width = self.arrays["input_vectors"].shape[1]
        self._context_size = positions.shape[0] if diagonal else positions.shape[1] // width

    @classmethod
    def from_hs_model(
        cls, hs_model: HSModel, *, context_size: int = 5, diagonal: bool = True, **options: Any
    ) -> DirectionalHead:
        """A new, untrained head: input vectors copied from ``hs_model.vectors``, output weights
        from gensim's ``syn1`` with zero node biases, C the mean of the context vectors."""
        if not is_positive_int(context_size):
            raise ConfigError(
                Errors.E403.format(
                    option="context_size", value=context_size, expected="a positive integer"
                )
            )
        return cls(
            initial_arrays(hs_model, context_size, diagonal),
            hs_model.tree,
            diagonal=diagonal,
            **options,
        )

    # -- TreeHead ----------------------------------------------------------------------

    @property
    def context_size(self) -> int:
        return int(self._context_size)

    @property
    def output_weights(self) -> np.ndarray:
        """float32 (V - 1, d + 1): per-node weights, with the node biases as the last column."""
        return self.arrays["output_weights"]

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden vectors (B, d + 1) of a context matrix; every row has a context (fewer words
        than ``context_size``, none included, means the sentence started: padding)."""
        arrays = self.arrays
        hidden = _tree_search.lbl_hidden_matrix(
            arrays["input_vectors"],
            arrays["padding_vector"],
            arrays["position_weights"].reshape(-1),
            arrays["hidden_bias"],
            self.recent_first(context_ids),
            self.diagonal,
        )
        return hidden, np.ones(len(hidden), dtype=bool)

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """``TreeHead.log_prob``, in one compiled pass per block (``lbl_path_log_probs``: each
        row's hidden vector, n-gram offsets and path formed in buffers, never stored): the same
        values."""
        context_ids = np.asarray(context_ids)
        word_ids = np.ascontiguousarray(word_ids, dtype=np.int32)
        if len(word_ids) != len(context_ids):
            raise ConfigError(Errors.E022.format(n=len(context_ids), n_words=len(word_ids)))
        arrays, tree = self.arrays, self.tree
        out = np.empty(len(word_ids))
        for start in range(0, len(word_ids), BLOCK):
            rows = slice(start, start + BLOCK)
            out[rows] = _tree_search.lbl_path_log_probs(
                arrays["input_vectors"],
                arrays["padding_vector"],
                arrays["position_weights"].reshape(-1),
                arrays["hidden_bias"],
                self.recent_first(context_ids[rows]),
                self.diagonal,
                word_ids[rows],
                self.output_weights,
                tree.path_offsets,
                tree.path_nodes,
                tree.path_codes,
                **self._fused_node_term(),
            )
        return out

    def _fused_node_term(self) -> dict[str, Any]:
        """The node term's arguments of ``lbl_path_log_probs``: none for this head."""
        return {}

    def recent_first(self, context_ids: np.ndarray) -> np.ndarray:
        """The head's own context matrix (B, K) of a matrix of word ids, oldest first, negative
        entries being padding: known ids right-aligned, reversed (most recent first), padded
        with the padding id V and cut or extended to ``context_size`` columns (the layout of
        the training engine's context buffer)."""
        recent = last_known(context_ids, self.context_size)[:, ::-1]
        if recent.size and int(recent.max()) >= self.n_words:
            raise IndexError(f"word id {int(recent.max())} is out of range [0, {self.n_words})")
        return np.ascontiguousarray(np.where(recent >= 0, recent, self.n_words), dtype=np.int32)

    # -- serialization (HSModel stores config and arrays as they are) --------------------

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings stored in the model header as ``header["head"]``."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "context_size": self.context_size,
            "width": int(self.arrays["input_vectors"].shape[1]),
            "diagonal": self.diagonal,
            "fine_tune_vectors": self.fine_tune_vectors,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The parameters, by the names in ``ARRAY_NAMES``."""
        return dict(self.arrays)

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> DirectionalHead:
        """Rebuild a saved head for ``hs_model``; ModelFileError if config or arrays do not
        fit."""
        check_arrays(cls.architecture, config, arrays, len(hs_model))
        return cls(
            arrays,
            hs_model.tree,
            diagonal=bool(config.get("diagonal")),
            fine_tune_vectors=bool(config.get("fine_tune_vectors")),
        )

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
                Errors.E415.format(size=size, width=width, vector_size=vector_size)
            )
        return expected_shapes(config, n_words)


def expected_shapes(config: dict[str, Any], n_words: int) -> dict[str, tuple[int, ...]]:
    """The shapes of the directional head's arrays that ``config`` implies for a vocabulary of
    ``n_words`` (checked before any array is used)."""
    size, width = config.get("context_size"), config.get("width")
    if not is_positive_int(size) or not is_positive_int(width):
        raise ModelFileError(Errors.E406.format(size=size, width=width))
    diagonal = bool(config.get("diagonal"))
    return {
        "input_vectors": (n_words, width),
        "padding_vector": (width,),
        "position_weights": (size, width) if diagonal else (width, size * width),
        "hidden_bias": (width,),
        "output_weights": (n_words - 1, width + 1),
    }


def check_arrays(
    architecture: str, config: Any, arrays: dict[str, np.ndarray], n_words: int
) -> None:
    """ModelFileError unless ``config`` names ``architecture`` and the directional arrays have
    the shapes and dtype it implies."""
    check_shapes(architecture, config, arrays, expected_shapes(config, n_words))


def check_shapes(
    architecture: str,
    config: Any,
    arrays: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
) -> None:
    """ModelFileError unless ``config`` names ``architecture`` and each of ``shapes``' float32
    arrays is there with its shape."""
    if not isinstance(config, dict) or config.get("architecture") != architecture:
        found = config.get("architecture") if isinstance(config, dict) else config
        raise ModelFileError(Errors.E405.format(found=found, expected=repr(architecture)))
    for name, shape in shapes.items():
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


def initial_arrays(hs_model: HSModel, context_size: int, diagonal: bool) -> dict[str, np.ndarray]:
    """A new head's parameters: input vectors copied from ``hs_model.vectors``, the padding
    vector 0, C the mean of the context vectors (the hidden vector gensim's CBOW output weights
    were trained against), b = 0, output weights gensim's ``syn1`` with zero node biases."""
    n_words, width = hs_model.vectors.shape
    if diagonal:
        positions = np.full((context_size, width), 1.0 / context_size, dtype=np.float32)
    else:
        eye = np.eye(width, dtype=np.float32) / context_size
        positions = np.concatenate([eye] * context_size, axis=1)
    outputs = np.zeros((n_words - 1, width + 1), dtype=np.float32)
    outputs[:, :width] = hs_model.inner_node_weights
    return {
        "input_vectors": hs_model.vectors.copy(),
        "padding_vector": np.zeros(width, dtype=np.float32),
        "position_weights": positions,
        "hidden_bias": np.zeros(width, dtype=np.float32),
        "output_weights": outputs,
    }
