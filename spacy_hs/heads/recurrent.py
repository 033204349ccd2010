"""The recurrent head: word embeddings and an LSTM give the hidden vector; the HS model's tree
scores it, as every head's is scored (``TreeHead``), so log-probabilities, top-k and whole
distributions are exact::

    (h_t, c_t) = LSTM(embedding(w_t), (h_{t-1}, c_{t-1}))       (heads/lstm.py)
    logit(n) = [h_t, 1] . W[n] + sum over k = 1..N of M[offset_k(w_t, ..., w_{t-k+1}) + n]

The node biases are W's last column, matched by the constant 1. With ``orders`` N > 0 the
n-gram head's hashed features (``heads/ngram.py``, the same hash and the same table format)
are added at every node and trained jointly with the network: Mikolov's RNNME. The n-gram
features read the sentence (they stop at its start), the LSTM the whole document.

The state walks forward, as KenLM's ``State`` does: ``RecurrentHead.walk(state, ids)`` reads a
document's known words one step each and returns the hidden vector at every slot and the state
after the last word; ``RecurrentHead.stream(ids, lengths)`` is a ``StreamView``, a ``TreeHead``
whose context rows are slots of that walk, which ``Document`` asks every question through
(``spacy_hs.document``). Asked with a plain context matrix (``HSModel.predict_next``, the
pipeline's batches), the head reads the row's words from the initial state: at most
``context_size`` of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _tree_search, registry
from ..errors import Errors, ModelFileError
from ..tree import HuffmanTree
from ..util import is_positive_int
from ..validation import MAX_CONTEXT_SIZE, MAX_TABLE_SIZE
from .base import TreeHead, contexts_between, last_known
from .directional import check_shapes
from .lstm import GATES, PARAMS, State, initial_state, lstm_forward
from .ngram import HASH_VERSION, table_arrays, table_from_arrays

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "recurrent"
ARCHITECTURE = "spacy_hs.RecurrentHead.v1"
# Loading refuses LSTMs wider than this (their weights are (H, 4 H) floats).
MAX_HIDDEN_WIDTH = 4096
ARRAY_NAMES = (*PARAMS, "output_weights")


@registry.heads(ARCHITECTURE)
class RecurrentHead(TreeHead):
    """A trained recurrent head.

    arrays: float32, by the names in ``ARRAY_NAMES`` (copied): embeddings (V, d), LSTM input
        weights (d, 4 H), hidden weights (H, 4 H), bias (4 H,) (``heads/lstm.py``), output
        weights (V - 1, H + 1) with the node biases last.
    tree: the HS model's Huffman tree.
    context_size: how many known words a plain context matrix is read to (not a stream).
    table, orders: the n-gram node term (``heads/ngram.py``); None and 0 without one.
    history: what training recorded.
    """

    name = NAME
    architecture = ARCHITECTURE
    predicts_sentence_start = True

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        tree: HuffmanTree,
        *,
        context_size: int = 64,
        table: np.ndarray | None = None,
        orders: int = 0,
        history: dict[str, Any] | None = None,
    ):
        super().__init__(tree)
        self.arrays = {
            name: np.ascontiguousarray(arrays[name], dtype=np.float32).copy()
            for name in ARRAY_NAMES
        }
        self.window = int(context_size)
        self.orders = int(orders)
        self.table = None if table is None else np.ascontiguousarray(table, dtype=np.float32)
        if (self.table is None) != (self.orders == 0):
            raise ValueError("an n-gram table needs orders >= 1, and orders a table")
        if self.table is not None and not tree.n_words <= len(self.table) <= MAX_TABLE_SIZE:
            raise ValueError(f"a table of {len(self.table)} values for {tree.n_words} words")
        self.history = dict(history or {})

    # -- what TreeHead asks ----------------------------------------------------------------

    @property
    def context_size(self) -> int:
        return self.window

    @property
    def hidden_width(self) -> int:
        return int(self.arrays["lstm_hidden_weights"].shape[0])

    @property
    def output_weights(self) -> np.ndarray:
        return self.arrays["output_weights"]

    @property
    def node_table(self) -> np.ndarray | None:
        return self.table

    def initial_state(self) -> State:
        """The state before a document's first word."""
        return initial_state(1, self.hidden_width)

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's known words read from the initial state (padding skipped)."""
        context_ids = np.asarray(context_ids, dtype=np.int32)
        batch = len(context_ids)
        h, c = initial_state(batch, self.hidden_width)
        steps = context_ids.T  # (K, B)
        mask = steps >= 0
        if mask.any():
            first = int(np.argmax(mask.any(axis=1)))
            steps, mask = steps[first:], mask[first:]
            inputs = self.arrays["embeddings"][np.maximum(steps, 0)]
            outputs, _, _ = lstm_forward(self.arrays, inputs, (h, c), mask)
            h = outputs[-1]
        return _with_one(h), np.ones(batch, dtype=bool)

    def node_offsets(self, context_ids: np.ndarray) -> np.ndarray | None:
        if not self.orders:
            return None
        recent = last_known(context_ids, self.orders)[:, ::-1]
        recent = np.ascontiguousarray(np.where(recent >= 0, recent, self.n_words), np.int32)
        return _tree_search.ngram_bases_matrix(recent, self.orders, self.n_words, self.modulus)

    @property
    def modulus(self) -> int:
        return len(self.table) - (self.n_words - 1) if self.table is not None else 1

    # -- the state walking forward ---------------------------------------------------------

    def walk(self, state: State, token_ids: np.ndarray) -> tuple[np.ndarray, State]:
        """Read ``token_ids`` (int32; -1 unknown, skipped) from ``state``, one step per known
        word: the hidden vectors ([h, 1], float32 (N + 1, H + 1)) before each token and after
        the last, and the state after the last."""
        token_ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
        known = token_ids[token_ids >= 0]
        h0 = state[0].reshape(1, -1)
        if len(known):
            inputs = self.arrays["embeddings"][known][:, None, :]
            outputs, cells, _ = lstm_forward(self.arrays, inputs, (h0, state[1].reshape(1, -1)))
            states = np.concatenate([h0, outputs[:, 0]])
            final = (outputs[-1].copy(), cells[-1].copy())
        else:
            states, final = h0, (h0.copy(), state[1].reshape(1, -1).copy())
        before = np.concatenate([[0], np.cumsum(token_ids >= 0)])
        return _with_one(states[before]), final

    def stream(
        self,
        token_ids: np.ndarray,
        state: State | None = None,
        document_lengths: np.ndarray | None = None,
    ) -> StreamView:
        """Documents ``token_ids`` (split by ``document_lengths``; None: one) each walked from
        the initial state, the first from ``state`` if given, as a head whose context rows
        are slots of those walks (``StreamView``)."""
        token_ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
        lengths = [len(token_ids)] if document_lengths is None else list(document_lengths)
        walks, first = [], 0
        for document, length in enumerate(lengths):
            start = self.initial_state() if state is None or document else state
            hidden, final = self.walk(start, token_ids[first : first + int(length)])
            walks.append(hidden)
            first += int(length)
        return StreamView(self, token_ids, np.concatenate(walks), final, lengths)

    # -- serialization ---------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        config = {
            "name": self.name,
            "architecture": self.architecture,
            "context_size": self.window,
            "width": int(self.arrays["embeddings"].shape[1]),
            "hidden_width": self.hidden_width,
            "orders": self.orders,
        }
        if self.table is not None:
            config.update(table_size=len(self.table), hash_version=HASH_VERSION)
        return config

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = dict(self.arrays)
        if self.table is not None:
            arrays.update(table_arrays(self.table))
        return arrays

    @classmethod
    def max_array_shapes(
        cls, config: dict[str, Any], n_words: int, vector_size: int
    ) -> dict[str, tuple[int, ...]]:
        """The exact shapes of the arrays ``config`` implies (and at most ``table_size``
        n-gram slots), checked before any array is read."""
        shapes = expected_shapes(config, n_words, vector_size)
        if config.get("orders"):
            size = _table_size(config, n_words)
            shapes.update(ngram_slots=(size,), ngram_values=(size,))
        return shapes

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> RecurrentHead:
        n_words = len(hs_model)
        if not isinstance(config, dict):
            raise ModelFileError(Errors.E405.format(found=config, expected=cls.architecture))
        shapes = expected_shapes(config, n_words, hs_model.vector_size)
        check_shapes(cls.architecture, config, arrays, shapes)
        orders, table = config.get("orders"), None
        if orders:
            if config.get("hash_version") != HASH_VERSION:
                raise ModelFileError(
                    Errors.E409.format(found=config.get("hash_version"), expected=HASH_VERSION)
                )
            table = table_from_arrays(arrays, _table_size(config, n_words))
        return cls(
            arrays, hs_model.tree, context_size=config["context_size"], table=table, orders=orders
        )


class StreamView(TreeHead):
    """Documents walked by a recurrent head, asked as a ``TreeHead``: a context row is [slot,
    the last ``orders`` known ids of the sentence before it], a slot being the hidden vector
    of a document after its tokens before a position (``RecurrentHead.walk``: a document of n
    tokens has n + 1 slots); ``contexts`` and ``stream_contexts`` build the rows.
    ``final_state`` is the state after the last document, to carry into the next one."""

    name = NAME
    predicts_sentence_start = True

    def __init__(
        self,
        head: RecurrentHead,
        token_ids: np.ndarray,
        hidden: np.ndarray,
        final_state: State,
        document_lengths: list[int] | None = None,
    ):
        super().__init__(head.tree)
        self.head, self.token_ids = head, token_ids
        self.slots, self.final_state = hidden, final_state
        lengths = [len(token_ids)] if document_lengths is None else document_lengths
        self.document_lengths = np.asarray(lengths, dtype=np.int64)

    @property
    def context_size(self) -> int:
        return 1 + self.head.orders

    @property
    def output_weights(self) -> np.ndarray:
        return self.head.output_weights

    @property
    def node_table(self) -> np.ndarray | None:
        return self.head.node_table

    @property
    def config(self) -> dict[str, Any]:
        return self.head.config

    def contexts(
        self, firsts: np.ndarray, ends: np.ndarray, documents: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows for token positions ``ends``: the hidden vector of document ``documents[b]``
        (default 0) after its tokens before ``ends[b]``, the n-gram features from the tokens
        in [firsts[b], ends[b])."""
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        documents = np.zeros(len(ends), np.int64) if documents is None else documents
        slots = ends + np.asarray(documents, dtype=np.int64).reshape(-1)
        ngram = contexts_between(self.token_ids, firsts, ends, self.head.orders)
        return np.concatenate([slots[:, None].astype(np.int32), ngram], axis=1)

    def stream_contexts(self, sentence_lengths: np.ndarray, documents: np.ndarray) -> np.ndarray:
        """The rows of every token, given the sentence lengths and each token's document."""
        n = len(self.token_ids)
        positions = np.arange(n)
        lengths = np.asarray(sentence_lengths, dtype=np.int64)
        firsts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.contexts(firsts, positions, np.asarray(documents, dtype=np.int64))

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slots = np.asarray(context_ids)[:, 0]
        return self.slots[slots], np.ones(len(slots), dtype=bool)

    def node_offsets(self, context_ids: np.ndarray) -> np.ndarray | None:
        return self.head.node_offsets(np.asarray(context_ids)[:, 1:])


def expected_shapes(
    config: dict[str, Any], n_words: int, vector_size: int
) -> dict[str, tuple[int, ...]]:
    """The shapes of the recurrent head's float32 arrays that ``config`` implies."""
    size, width, units = (config.get(k) for k in ("context_size", "width", "hidden_width"))
    orders = config.get("orders")
    if (
        not is_positive_int(size)
        or size > MAX_CONTEXT_SIZE
        or not is_positive_int(width)
        or width != vector_size
        or not is_positive_int(units)
        or units > MAX_HIDDEN_WIDTH
        or not (orders == 0 or is_positive_int(orders))
        or orders > MAX_CONTEXT_SIZE
    ):
        raise ModelFileError(
            Errors.E420.format(
                size=size,
                width=width,
                units=units,
                orders=orders,
                vector_size=vector_size,
                max_units=MAX_HIDDEN_WIDTH,
                max_size=MAX_CONTEXT_SIZE,
            )
        )
    return {
        "embeddings": (n_words, width),
        "lstm_input_weights": (width, GATES * units),
        "lstm_hidden_weights": (units, GATES * units),
        "lstm_bias": (GATES * units,),
        "output_weights": (n_words - 1, units + 1),
    }


def _table_size(config: dict[str, Any], n_words: int) -> int:
    size = config.get("table_size")
    if not is_positive_int(size) or not n_words <= size <= MAX_TABLE_SIZE:
        raise ModelFileError(Errors.E410.format(value=size, low=n_words, high=MAX_TABLE_SIZE))
    return size


def _with_one(h: np.ndarray) -> np.ndarray:
    """[h, 1] per row: the constant that the node biases (W's last column) multiply."""
    out = np.ones((len(h), h.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = h
    return out
