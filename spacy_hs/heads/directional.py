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

The head is a thinc Model, ``chain(context, output)``: ``spacy_hs.LogBilinearContext.v1``
(the hidden vector, with its numpy backprop) and ``spacy_hs.TreeOutput.v1`` (its own output
weights). A saved head's config names both (``spacy_hs.HierarchicalLogBilinear.v2``); the flat
config of version 1 (context_size, width, diagonal) stays readable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.layers.chain import chain
from thinc.model import Model
from thinc.types import Floats2d, Ints2d

from .. import _tree_search, registry
from ..errors import ConfigError, Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from ..validation import CONTEXT_SIZE_RULE, is_context_size
from .base import BLOCK, TreeHead, build_model, recent_first
from .output import TreeOutput

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "directional"
ARCHITECTURE = "spacy_hs.HierarchicalLogBilinear.v2"
ARCHITECTURE_V1 = "spacy_hs.HierarchicalLogBilinear.v1"  # the flat config, still read
CONTEXT_ARCHITECTURE = "spacy_hs.LogBilinearContext.v1"
MODEL_ARCHITECTURE = "spacy_hs.LogBilinearHead.v1"
# Arrays saved with the model (as head.<name>.npy), all float32.
ARRAY_NAMES = (
    "input_vectors",
    "padding_vector",
    "position_weights",
    "hidden_bias",
    "output_weights",
)
CONTEXT_PARAMS = ARRAY_NAMES[:-1]


@registry.architectures(CONTEXT_ARCHITECTURE)
def LogBilinearContext(context_size: int, width: int, diagonal: bool) -> Model[Ints2d, Floats2d]:
    """The log-bilinear hidden vectors (B, width + 1) of a context matrix (B, K') of word ids,
    oldest first, negative entries padding (the module docstring). Dims: nV (the vocabulary,
    set when bound to an HS model), nE = width, nO = width + 1."""
    if not is_context_size(context_size) or not is_positive_int(width):
        raise ValueError(
            f"context_size {context_size!r} must be {CONTEXT_SIZE_RULE} and width {width!r} "
            "positive"
        )
    return Model(
        "log_bilinear_context",
        lbl_forward,
        init=lbl_init,
        dims={"nV": None, "nE": width, "nO": width + 1},
        params=dict.fromkeys(CONTEXT_PARAMS),
        attrs={
            "context_size": context_size,
            "diagonal": bool(diagonal),
            "predicts_sentence_start": True,
        },
    )


@registry.architectures(MODEL_ARCHITECTURE)
def LogBilinearHead(context: Model[Ints2d, Floats2d]) -> Model[Ints2d, Floats2d]:
    """Node logits (B, V - 1) of a context matrix: ``chain(context, output)``, the output
    layer (``spacy_hs.TreeOutput.v1``) with weights of its own; refs "context", "output"."""
    output = TreeOutput(nI=context.get_dim("nO"))
    model = chain(context, output)
    model.set_ref("context", context)
    model.set_ref("output", output)
    return model


def lbl_arguments(model: Model, context_ids: np.ndarray) -> tuple[Any, ...]:
    """The arguments of the compiled kernels (``lbl_hidden_matrix``, ``lbl_path_log_probs``)
    for a context layer and a context matrix: params, recent-first contexts, diagonal."""
    return (
        model.get_param("input_vectors"),
        model.get_param("padding_vector"),
        model.get_param("position_weights").reshape(-1),
        model.get_param("hidden_bias"),
        recent_first(context_ids, model.attrs["context_size"], model.get_dim("nV")),
        model.attrs["diagonal"],
    )


def lbl_forward(
    model: Model[Ints2d, Floats2d], X: Ints2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Ints2d]]:
    arguments = lbl_arguments(model, X)
    Y = _tree_search.lbl_hidden_matrix(*arguments)  # the hs_lbl_hidden of training

    def backprop(dY: Floats2d) -> Ints2d:
        """Gradients of the four params (the constant last column has none); word ids have
        no gradient (zeros)."""
        vectors, padding, positions, _, contexts, diagonal = arguments
        n_words, width = vectors.shape
        d_hidden = np.ascontiguousarray(dY[:, :width], dtype=np.float32)
        is_padding = contexts == n_words
        gathered = vectors[np.minimum(contexts, n_words - 1)]  # (B, K, d)
        gathered[is_padding] = padding
        if diagonal:
            positions = positions.reshape(-1, width)
            d_positions = np.einsum("bd,bkd->kd", d_hidden, gathered)
            d_gathered = d_hidden[:, None, :] * positions[None, :, :]
        else:
            positions = positions.reshape(width, -1)
            d_positions = d_hidden.T @ gathered.reshape(len(gathered), -1)
            d_gathered = (d_hidden @ positions).reshape(gathered.shape)
        d_vectors = np.zeros_like(vectors)
        np.add.at(d_vectors, contexts[~is_padding], d_gathered[~is_padding])
        model.inc_grad("input_vectors", d_vectors)
        model.inc_grad("padding_vector", d_gathered[is_padding].sum(axis=0))
        shape = model.get_param("position_weights").shape
        model.inc_grad("position_weights", d_positions.reshape(shape))
        model.inc_grad("hidden_bias", d_hidden.sum(axis=0))
        return model.ops.alloc2i(*X.shape)

    return Y, backprop


def lbl_init(model: Model, X: Ints2d | None = None, Y: Floats2d | None = None) -> None:
    """Params not yet set: input vectors small random (an HS model's vectors, when a head is
    made from one: ``initial_arrays``), padding and bias 0, C the mean of the context."""
    n_words, width = model.get_dim("nV"), model.get_dim("nE")
    size, diagonal = model.attrs["context_size"], model.attrs["diagonal"]
    initial = {
        "input_vectors": lambda: model.ops.asarray2f(
            np.random.default_rng(0).uniform(-0.5 / width, 0.5 / width, (n_words, width))
        ),
        "padding_vector": lambda: model.ops.alloc1f(width),
        "position_weights": lambda: mean_positions(size, width, diagonal),
        "hidden_bias": lambda: model.ops.alloc1f(width),
    }
    for name, make in initial.items():
        if not model.has_param(name):
            model.set_param(name, np.ascontiguousarray(make(), dtype=np.float32))


def mean_positions(size: int, width: int, diagonal: bool) -> np.ndarray:
    """Position weights that make the hidden vector the mean of the K context vectors."""
    if diagonal:
        return np.full((size, width), 1.0 / size, dtype=np.float32)
    return np.concatenate([np.eye(width, dtype=np.float32) / size] * size, axis=1)


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """The context settings (context_size, width, diagonal) of a head config of version 2 (its
    model section) or 1 (flat); ModelFileError E405 if it names other architectures."""
    model = config.get("model")
    if config.get("architecture") == ARCHITECTURE_V1 or model is None:
        return {key: config.get(key) for key in ("context_size", "width", "diagonal")}
    context = model.get("context") if isinstance(model, dict) else None
    if not isinstance(context, dict) or context.get("@architectures") != CONTEXT_ARCHITECTURE:
        found = context.get("@architectures") if isinstance(context, dict) else context
        raise ModelFileError(Errors.E405.format(found=found, expected=CONTEXT_ARCHITECTURE))
    return {key: context.get(key) for key in ("context_size", "width", "diagonal")}


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
    # predicts_sentence_start: the context layer says so (its padding stands for the words
    # before a sentence start).

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        tree: HuffmanTree,
        *,
        diagonal: bool,
        fine_tune_vectors: bool,
        history: dict[str, Any] | None = None,
    ):
        width = arrays["input_vectors"].shape[1]
        positions = arrays["position_weights"]
        context = {
            "@architectures": CONTEXT_ARCHITECTURE,
            "context_size": positions.shape[0] if diagonal else positions.shape[1] // width,
            "width": int(width),
            "diagonal": bool(diagonal),
        }
        model_config = self.model_config_of(context)
        model = build_model(model_config)
        for layer in model.walk():
            if layer.has_dim("nV") is None:
                layer.set_dim("nV", tree.n_words)
        self.set_params(model, arrays)
        model.initialize()  # the dims; every param is set
        super().__init__(tree, model, model_config)
        self.fine_tune_vectors = bool(fine_tune_vectors)
        self.history = dict(history or {})

    def set_params(self, model: Model, arrays: dict[str, np.ndarray]) -> None:
        """Set the model's params from ``arrays`` (copied)."""
        for name in ARRAY_NAMES:
            layer = model.get_ref("output" if name == "output_weights" else "context")
            layer.set_param(name, np.ascontiguousarray(arrays[name], dtype=np.float32).copy())

    def model_config_of(self, context: dict[str, Any]) -> dict[str, Any]:
        """The model section of this head's config, for its context layer's section."""
        return {"@architectures": MODEL_ARCHITECTURE, "context": context}

    @classmethod
    def from_hs_model(
        cls, hs_model: HSModel, *, context_size: int, diagonal: bool, **options: Any
    ) -> DirectionalHead:
        """A new, untrained head: input vectors copied from ``hs_model.vectors``, output weights
        from gensim's ``syn1`` with zero node biases, C the mean of the context vectors."""
        if not is_context_size(context_size):
            raise ConfigError(
                Errors.E403.format(
                    option="context_size", value=context_size, expected=CONTEXT_SIZE_RULE
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
    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters by the names in ``ARRAY_NAMES`` (the model's, not copies)."""
        context, output = self.context, self.model.get_ref("output")
        return {
            name: (output if name == "output_weights" else context).get_param(name)
            for name in ARRAY_NAMES
        }

    @property
    def diagonal(self) -> bool:
        return bool(self.context.attrs["diagonal"])

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The context layer's forward without its backprop closure (per query); every row
        has a context (the padding stands for the words before a sentence start)."""
        hidden = _tree_search.lbl_hidden_matrix(*lbl_arguments(self.context, context_ids))
        return hidden, np.ones(len(hidden), dtype=bool)

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """``TreeHead.log_prob``, in one compiled pass per block (``lbl_path_log_probs``: each
        row's hidden vector, n-gram offsets and path formed in buffers, never stored): the same
        values."""
        context_ids = np.asarray(context_ids)
        word_ids = np.ascontiguousarray(word_ids, dtype=np.int32)
        if len(word_ids) != len(context_ids):
            raise ConfigError(Errors.E022.format(n=len(context_ids), n_words=len(word_ids)))
        tree, context, output_weights = self.tree, self.context, self.output_weights
        out = np.empty(len(word_ids))
        for start in range(0, len(word_ids), BLOCK):
            rows = slice(start, start + BLOCK)
            out[rows] = _tree_search.lbl_path_log_probs(
                *lbl_arguments(context, context_ids[rows]),
                word_ids[rows],
                output_weights,
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
        """``base.recent_first`` for this head's context size and vocabulary."""
        return recent_first(context_ids, self.context_size, self.n_words)

    # -- serialization (HSModel stores config and arrays as they are) --------------------

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings stored in the model header as ``header["head"]``."""
        return {**super().config, "fine_tune_vectors": self.fine_tune_vectors}

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
            diagonal=bool(settings_of(config).get("diagonal")),
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
        settings = settings_of(config)
        size, width = settings["context_size"], settings["width"]
        if not is_positive_int(size) or not is_positive_int(width) or width != vector_size:
            raise ModelFileError(
                Errors.E415.format(size=size, width=width, vector_size=vector_size)
            )
        return expected_shapes(config, n_words)


def expected_shapes(config: dict[str, Any], n_words: int) -> dict[str, tuple[int, ...]]:
    """The shapes of the directional head's arrays that ``config`` implies for a vocabulary of
    ``n_words`` (checked before any array is used)."""
    settings = settings_of(config)
    size, width = settings["context_size"], settings["width"]
    if not is_positive_int(size) or not is_positive_int(width):
        raise ModelFileError(Errors.E406.format(size=size, width=width))
    diagonal = bool(settings["diagonal"])
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
    """ModelFileError unless ``config`` names ``architecture`` (or its version 1) and the
    directional arrays have the shapes and dtype it implies."""
    check_shapes(architecture, config, arrays, expected_shapes(config, n_words))


def check_shapes(
    architecture: str,
    config: Any,
    arrays: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
) -> None:
    """ModelFileError unless ``config`` names ``architecture`` (or its version 1) and each of
    ``shapes``' float32 arrays is there with its shape."""
    found = config.get("architecture") if isinstance(config, dict) else None
    if found not in (architecture, architecture.replace(".v2", ".v1")):
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
    positions = mean_positions(context_size, width, diagonal)
    outputs = np.zeros((n_words - 1, width + 1), dtype=np.float32)
    outputs[:, :width] = hs_model.inner_node_weights
    return {
        "input_vectors": hs_model.vectors.copy(),
        "padding_vector": np.zeros(width, dtype=np.float32),
        "position_weights": positions,
        "hidden_bias": np.zeros(width, dtype=np.float32),
        "output_weights": outputs,
    }


registry.heads.register(ARCHITECTURE_V1, func=DirectionalHead)
