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

Only a small part of the table is ever written (the (n-gram, node) pairs the corpus has), so it
is saved sparse: the written slots (int32, increasing) and their values (float16), and rebuilt
as a float32 table when loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _tree_search, registry
from ..errors import Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from ..validation import MAX_TABLE_SIZE
from .directional import DirectionalHead, check_arrays

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "ngram"
ARCHITECTURE = "spacy_hs.HashedNgramLogBilinear.v1"
HASH_VERSION = int(_tree_search.NGRAM_HASH)
FLOAT16_MAX = float(np.finfo(np.float16).max)


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
        super().__init__(arrays, tree, **options)
        self.table = np.ascontiguousarray(table, dtype=np.float32)  # kept, not copied
        self.orders = int(orders)
        if not 1 <= self.orders <= self.context_size:
            raise ValueError(f"n-gram orders 1..{orders} need a context of at least {orders}")
        if not tree.n_words <= len(self.table) <= MAX_TABLE_SIZE:
            raise ValueError(f"a table of {len(self.table)} values for {tree.n_words} words")

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
        return _tree_search.ngram_bases_matrix(
            self.recent_first(context_ids), self.orders, self.n_words, self.modulus
        )

    def _fused_node_term(self) -> dict[str, Any]:
        return {"table": self.table, "n_orders": self.orders}

    @property
    def node_table(self) -> np.ndarray:
        return self.table

    @property
    def config(self) -> dict[str, Any]:
        return {
            **super().config,
            "orders": self.orders,
            "table_size": len(self.table),
            "hash_version": HASH_VERSION,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The directional arrays, and the table's written slots and their values."""
        return {**super().to_arrays(), **table_arrays(self.table)}

    @classmethod
    def max_array_shapes(
        cls, config: dict[str, Any], n_words: int, vector_size: int
    ) -> dict[str, tuple[int, ...]]:
        """The directional arrays' shapes, and at most ``table_size`` written slots."""
        size = config.get("table_size")
        if not is_positive_int(size) or not n_words <= size <= MAX_TABLE_SIZE:
            raise ModelFileError(Errors.E410.format(value=size, low=n_words, high=MAX_TABLE_SIZE))
        shapes = super().max_array_shapes(config, n_words, vector_size)
        return {**shapes, "ngram_slots": (size,), "ngram_values": (size,)}

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> NgramHead:
        check_arrays(cls.architecture, config, arrays, len(hs_model))
        size, orders = config.get("table_size"), config.get("orders")
        if config.get("hash_version") != HASH_VERSION:
            raise ModelFileError(
                Errors.E409.format(found=config.get("hash_version"), expected=HASH_VERSION)
            )
        if not is_positive_int(size) or not len(hs_model) <= size <= MAX_TABLE_SIZE:
            raise ModelFileError(
                Errors.E410.format(value=size, low=len(hs_model), high=MAX_TABLE_SIZE)
            )
        if not is_positive_int(orders) or orders > config.get("context_size", 0):
            raise ModelFileError(Errors.E411.format(orders=orders))
        table = table_from_arrays(arrays, size)
        return cls(
            arrays,
            hs_model.tree,
            table=table,
            orders=orders,
            diagonal=bool(config.get("diagonal")),
            fine_tune_vectors=bool(config.get("fine_tune_vectors")),
        )


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
