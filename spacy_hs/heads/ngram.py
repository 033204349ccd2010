"""The n-gram head: the directional head plus hashed n-gram features at every tree node.

The "direct connections" of Mikolov's RNNME and of faster-rnnlm's maximum-entropy layer, on
the HS model's Huffman tree::

    logit(n) = hidden . W[n] + sum over k = 1..N of M[offset_k + n]
    offset_k = hash_k(w_{t-1}, ..., w_{t-k}) mod (T - (V - 1))

``hidden`` is the directional head's; ``M`` is a table of T values, trained jointly with it by
the compiled engine. ``hash_k`` is ``hs_ngram_bases`` in _hs_kernels.h: a fixed function of the
order and the word ids in 64-bit unsigned arithmetic, so a model scores the same on every
platform; its version is saved in the head's config and checked at load. The order-k feature
is absent where the history would reach before the sentence start (or the context is shorter
than k known words).

The head is the thinc Model ``add(chain(context, output), ngram)``: the directional head's layers
and ``spacy_hs.HashedNgram.v1``, whose node logits are the table's terms (its param
``ngram_table``). A saved head's config names them (``spacy_hs.HashedNgramLogBilinear.v2``);
the flat config of version 1 stays readable.

Only a small part of the table is ever written (the (n-gram, node) pairs the corpus has), so it
is saved sparse: the written slots (int32, increasing) and their values (float16), and rebuilt
as a float32 table when loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.layers.add import add
from thinc.layers.chain import chain
from thinc.model import Model
from thinc.types import Floats2d, Ints2d

from .. import _tree_search, registry
from ..errors import Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from ..validation import MAX_TABLE_SIZE
from .base import recent_first
from .directional import DirectionalHead, check_arrays, settings_of
from .output import TreeOutput

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "ngram"
ARCHITECTURE = "spacy_hs.HashedNgramLogBilinear.v2"
ARCHITECTURE_V1 = "spacy_hs.HashedNgramLogBilinear.v1"  # the flat config, still read
LAYER_ARCHITECTURE = "spacy_hs.HashedNgram.v1"
MODEL_ARCHITECTURE = "spacy_hs.HashedNgramHead.v1"
HASH_VERSION = int(_tree_search.NGRAM_HASH)
FLOAT16_MAX = float(np.finfo(np.float16).max)


@registry.architectures(LAYER_ARCHITECTURE)
def HashedNgram(
    orders: int, table_size: int, hash_version: int = HASH_VERSION
) -> Model[Ints2d, Floats2d]:
    """The n-gram node term as node logits (B, V - 1) of a context matrix (B, K') of word
    ids, oldest first, negative entries padding: the sum over the orders k present of
    ``ngram_table[offset_k + n]`` (the module docstring). Dims: nV (set when bound to an HS
    model), nT = table_size, nO = V - 1."""
    if hash_version != HASH_VERSION:
        raise ValueError(Errors.E409.format(found=hash_version, expected=HASH_VERSION))
    if not is_positive_int(orders) or not is_positive_int(table_size):
        raise ValueError(f"orders {orders!r} and table_size {table_size!r} must be positive")
    return Model(
        "hashed_ngram",
        ngram_forward,
        init=ngram_init,
        dims={"nV": None, "nT": table_size, "nO": None},
        params={"ngram_table": None},
        attrs={"orders": orders, "hash_version": hash_version},
    )


@registry.architectures(MODEL_ARCHITECTURE)
def HashedNgramHead(
    context: Model[Ints2d, Floats2d], ngram: Model[Ints2d, Floats2d]
) -> Model[Ints2d, Floats2d]:
    """Node logits (B, V - 1): ``add(chain(context, output), ngram)``, the output layer with
    weights of its own; refs "context", "output", "ngram"."""
    output = TreeOutput(nI=context.get_dim("nO"))
    model = add(chain(context, output), ngram)
    for name, layer in (("context", context), ("output", output), ("ngram", ngram)):
        model.set_ref(name, layer)
    return model


def ngram_offsets(model: Model, context_ids: np.ndarray) -> np.ndarray:
    """The table offsets int64 (B, orders) of a context matrix, -1 where an order reaches
    before the sentence start (``hs_ngram_bases``)."""
    n_words, orders = model.get_dim("nV"), model.attrs["orders"]
    modulus = model.get_dim("nT") - (n_words - 1)
    recent = recent_first(context_ids, orders, n_words)
    return _tree_search.ngram_bases_matrix(recent, orders, n_words, modulus)


def ngram_forward(
    model: Model[Ints2d, Floats2d], X: Ints2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Ints2d]]:
    offsets = ngram_offsets(model, X)
    table = model.get_param("ngram_table")
    nodes = np.arange(model.get_dim("nV") - 1)
    present = [np.flatnonzero(offsets[:, k] >= 0) for k in range(offsets.shape[1])]
    Y = model.ops.alloc2f(len(offsets), len(nodes))
    for k, rows in enumerate(present):
        Y[rows] += table[offsets[rows, k, None] + nodes]

    def backprop(dY: Floats2d) -> Ints2d:
        d_table = np.zeros_like(table)
        for k, rows in enumerate(present):
            np.add.at(d_table, offsets[rows, k, None] + nodes, dY[rows])
        model.inc_grad("ngram_table", d_table)
        return model.ops.alloc2i(*X.shape)

    return Y, backprop


def ngram_init(model: Model, X: Ints2d | None = None, Y: Floats2d | None = None) -> None:
    """A table of zeros (no feature adds anything yet), unless already set."""
    model.set_dim("nO", model.get_dim("nV") - 1)
    if not model.has_param("ngram_table"):
        model.set_param("ngram_table", model.ops.alloc1f(model.get_dim("nT")))


def ngram_settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """The n-gram settings (orders, table_size, hash_version) of a head config of version 2
    (its model section) or 1 (flat); ModelFileError E405 if it names another layer."""
    keys = ("orders", "table_size", "hash_version")
    model = config.get("model")
    if config.get("architecture") == ARCHITECTURE_V1 or model is None:
        return {key: config.get(key) for key in keys}
    ngram = model.get("ngram") if isinstance(model, dict) else None
    if not isinstance(ngram, dict) or ngram.get("@architectures") != LAYER_ARCHITECTURE:
        found = ngram.get("@architectures") if isinstance(ngram, dict) else ngram
        raise ModelFileError(Errors.E405.format(found=found, expected=LAYER_ARCHITECTURE))
    return {key: ngram.get(key) for key in keys}


@registry.heads(ARCHITECTURE)
class NgramHead(DirectionalHead):
    """A directional head with hashed n-gram node features.

    arrays: the directional head's (``DirectionalHead``).
    table: float32 (T,), the features' values (kept, not copied); V <= T. A trained table is
        rounded to float16 first (``round_table``), the precision it is saved with.
    orders: N, the n-gram orders 1..N (N <= the context size).
    """

    name = NAME
    architecture = ARCHITECTURE

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        tree: HuffmanTree,
        *,
        table: np.ndarray,
        orders: int,
        **options: Any,
    ):
        table = np.ascontiguousarray(table, dtype=np.float32)  # kept, not copied
        self._ngram = {"orders": int(orders), "table_size": len(table), "table": table}
        super().__init__(arrays, tree, **options)
        if not 1 <= self.orders <= self.context_size:
            raise ValueError(f"n-gram orders 1..{orders} need a context of at least {orders}")
        if not tree.n_words <= len(self.table) <= MAX_TABLE_SIZE:
            raise ValueError(f"a table of {len(self.table)} values for {tree.n_words} words")

    def model_config_of(self, context: dict[str, Any]) -> dict[str, Any]:
        ngram = {
            "@architectures": LAYER_ARCHITECTURE,
            "orders": self._ngram["orders"],
            "table_size": self._ngram["table_size"],
            "hash_version": HASH_VERSION,
        }
        return {"@architectures": MODEL_ARCHITECTURE, "context": context, "ngram": ngram}

    def set_params(self, model: Model, arrays: dict[str, np.ndarray]) -> None:
        super().set_params(model, arrays)
        model.get_ref("ngram").set_param("ngram_table", self._ngram.pop("table"))

    @property
    def table(self) -> np.ndarray:
        """float32 (T,): the n-gram features' values (the model's param ``ngram_table``)."""
        return self.model.get_ref("ngram").get_param("ngram_table")

    @property
    def orders(self) -> int:
        return int(self.model.get_ref("ngram").attrs["orders"])

    @staticmethod
    def round_table(table: np.ndarray, block: int = 1 << 22) -> np.ndarray:
        """Round a trained table to float16 precision, in place and in blocks (it can be GBs),
        so that a trained head scores exactly as the saved one does."""
        for start in range(0, len(table), block):
            part = table[start : start + block]
            np.clip(part, -FLOAT16_MAX, FLOAT16_MAX, out=part)
            part[...] = part.astype(np.float16)
        return table

    @property
    def modulus(self) -> int:
        """The offsets' range: T - (V - 1), so that an offset plus a node fits in the table."""
        return len(self.table) - (self.n_words - 1)

    def node_offsets(self, context_ids: np.ndarray) -> np.ndarray:
        return ngram_offsets(self.model.get_ref("ngram"), context_ids)

    def _fused_node_term(self) -> dict[str, Any]:
        return {"table": self.table, "n_orders": self.orders}

    @property
    def node_table(self) -> np.ndarray:
        return self.table

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The directional arrays, and the table's written slots and their values."""
        return {**super().to_arrays(), **table_arrays(self.table)}

    @classmethod
    def max_array_shapes(
        cls, config: dict[str, Any], n_words: int, vector_size: int
    ) -> dict[str, tuple[int, ...]]:
        """The directional arrays' shapes, and at most ``table_size`` written slots."""
        size = ngram_settings_of(config)["table_size"]
        if not is_positive_int(size) or not n_words <= size <= MAX_TABLE_SIZE:
            raise ModelFileError(Errors.E410.format(value=size, low=n_words, high=MAX_TABLE_SIZE))
        shapes = super().max_array_shapes(config, n_words, vector_size)
        return {**shapes, "ngram_slots": (size,), "ngram_values": (size,)}

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> NgramHead:
        check_arrays(cls.architecture, config, arrays, len(hs_model))
        settings = ngram_settings_of(config)
        size, orders = settings["table_size"], settings["orders"]
        if settings["hash_version"] != HASH_VERSION:
            raise ModelFileError(
                Errors.E409.format(found=settings["hash_version"], expected=HASH_VERSION)
            )
        if not is_positive_int(size) or not len(hs_model) <= size <= MAX_TABLE_SIZE:
            raise ModelFileError(
                Errors.E410.format(value=size, low=len(hs_model), high=MAX_TABLE_SIZE)
            )
        if not is_positive_int(orders) or orders > settings_of(config)["context_size"]:
            raise ModelFileError(Errors.E411.format(orders=orders))
        table = table_from_arrays(arrays, size)
        return cls(
            arrays,
            hs_model.tree,
            table=table,
            orders=orders,
            diagonal=bool(settings_of(config)["diagonal"]),
            fine_tune_vectors=bool(config.get("fine_tune_vectors")),
        )


registry.heads.register(ARCHITECTURE_V1, func=NgramHead)


def table_arrays(table: np.ndarray) -> dict[str, np.ndarray]:
    """A table as saved: its written slots (int32, increasing) and their values (float16)."""
    slots = np.flatnonzero(table).astype(np.int32)
    return {"ngram_slots": slots, "ngram_values": table[slots].astype(np.float16)}


def table_from_arrays(arrays: dict[str, np.ndarray], size: int) -> np.ndarray:
    """The float32 table of ``size`` values that ``table_arrays`` saved; ModelFileError if
    the slots and values are missing or do not fit."""
    slots, values = arrays.get("ngram_slots"), arrays.get("ngram_values")
    if slots is None or values is None:
        raise ModelFileError(Errors.E407.format(name="ngram_slots/ngram_values"))
    if (
        slots.ndim != 1
        or slots.shape != values.shape
        or slots.dtype != np.int32
        or values.dtype != np.float16
        or len(slots) > size
        or (len(slots) and (slots[0] < 0 or slots[-1] >= size))
        or (len(slots) > 1 and not (np.diff(slots) > 0).all())
    ):
        raise ModelFileError(Errors.E412.format(size=size))
    table = np.zeros(size, dtype=np.float32)
    table[slots] = values.astype(np.float32)
    return table
