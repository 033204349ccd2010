"""``TreeHead``: the queries every head on the HS model's Huffman tree answers, defined once.

A tree head scores the next word through the tree with a logit per inner node::

    logit(n) = hidden . output_weights[n] + node_term(n)
    P(w | context) = prod over the inner nodes n on w's path of sigmoid((1 - 2 * code_n) * logit(n))

``hidden`` is the head's vector for a context; the optional ``node_term`` is sparse: per
context a few offsets into a table of values, each adding ``table[offset + n]`` at every node
(the n-gram head's hashed features, ``_hs_kernels.h``'s ``hs_node_term``). A subclass defines
``hidden`` (and, if it has one, ``node_offsets`` and ``node_table``); this class answers every
query from them with the compiled kernels, like KenLM's ``Model`` answers ``score``:

* ``log_prob(context_ids, word_ids)``: the exact log P(word | context);
* ``top_k(context_ids, k)``: the exact k most probable words (best-first search);
* ``log_probabilities(context_ids)``: the whole distribution over the vocabulary.

Contexts are an int32 matrix (B, K'): word ids, oldest first, negative entries padding
(``context_matrix`` builds one from lists of ids). Rows without a usable context (``hidden``'s
``has_context`` False, e.g. an empty context for a head that cannot predict a sentence's first
word) score NaN and have no top-k (ids -1). Work is done in blocks of ``BLOCK`` rows, so memory
stays bounded whatever the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.layers.chain import chain
from thinc.model import Model

from .. import _tree_search, registry
from ..errors import ConfigError, Errors
from ..tree import HuffmanTree
from .output import TreeOutput

if TYPE_CHECKING:
    from ..hs_model import HSModel

BLOCK = 4096


class TreeHead:
    """A head that scores words through a Huffman tree (see the module docstring), defined by a
    thinc ``Model`` (``model``): its ``"context"`` ref maps a context matrix to hidden vectors,
    its ``"output"`` ref (``spacy_hs.TreeOutput.v1``) holds ``output_weights``, an optional
    ``"ngram"`` ref adds the node term. The queries below call the compiled kernels with the
    model's params; ``model.predict`` gives the node logits, the math they are computed from.

    Registered as ``spacy_hs.TreeHead.v1``: any architecture another package registers is a
    head, its config ``{"architecture": "spacy_hs.TreeHead.v1", "name": ..., "model": {...}}``
    (the model section names the context encoder; the output layer is added here).

    tree: the HS model's Huffman tree, which ``output_weights`` has a row per inner node of.
    model: the head's Model; model_config: the config it was built from (saved with it). A
        subclass may do without them and define ``context_size``, ``output_weights``,
        ``hidden`` and ``config`` itself.
    """

    name: str = ""
    architecture = "spacy_hs.TreeHead.v1"
    output_source: str | None = None  # a generic head's "output_weights" setting

    def __init__(
        self,
        tree: HuffmanTree,
        model: Model | None = None,
        model_config: dict[str, Any] | None = None,
        name: str = "",
    ):
        # Without a model, a subclass defines context_size, output_weights, hidden and config.
        self.tree = tree
        self.model = model
        self.model_config = model_config
        if name:
            self.name = name

    @classmethod
    def from_config(
        cls, config: dict[str, Any], hs_model: HSModel, arrays: dict[str, np.ndarray] | None = None
    ) -> TreeHead:
        """The head a config describes for ``hs_model``: its ``model`` section (the context
        encoder) chained with the output layer, whose weights are the HS model's
        (``"output_weights": "hs_model"``, the default) or the head's own (``"own"``). The
        params are ``arrays`` (by param name) or, if None, those of the layers' ``init``.
        ValueError if an array is missing or of another shape or dtype than ``init`` gives."""
        context = build_model(config.get("model"))
        bind(context, hs_model)
        context.initialize()  # its dims, nO the output layer's width
        tied = config.get("output_weights", "hs_model") == "hs_model"
        output = TreeOutput(nI=context.get_dim("nO"), tied=tied)
        model = chain(context, output)
        model.set_ref("context", context)
        model.set_ref("output", output)
        bind(model, hs_model)
        model.initialize()
        if arrays is not None:
            fill(model, arrays)
        head = cls(hs_model.tree, model, config["model"], str(config.get("name", "")))
        head.output_source = "hs_model" if tied else "own"
        return head

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> TreeHead:
        """Restore a saved head (what ``hs_model`` calls): ``from_config`` with its arrays."""
        return cls.from_config(config, hs_model, arrays)

    # -- what the model defines ----------------------------------------------------------

    @property
    def context(self) -> Model:
        """The context encoder: a context matrix to hidden vectors."""
        return self.model.get_ref("context")

    @property
    def context_size(self) -> int:
        """How many of the most recent known context words the head reads."""
        return int(self.context.attrs["context_size"])

    @property
    def predicts_sentence_start(self) -> bool:
        """Whether an empty context (a sentence's first word) has a distribution."""
        return bool(self.context.attrs.get("predicts_sentence_start", False))

    @property
    def output_weights(self) -> np.ndarray:
        """float32 (V - 1, width), C-contiguous: one row per inner node."""
        return self.model.get_ref("output").get_param("output_weights")

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden vectors float32 (B, width) and has_context bool (B,) for a context matrix."""
        hidden = self.context.predict(context_ids)
        if self.predicts_sentence_start:
            return hidden, np.ones(len(hidden), dtype=bool)
        return hidden, (last_known(context_ids, self.context_size) >= 0).any(axis=1)

    def node_offsets(self, context_ids: np.ndarray) -> np.ndarray | None:
        """The node term's table offsets int64 (B, F), -1 where absent; None: no node term."""
        return None

    @property
    def node_table(self) -> np.ndarray | None:
        """float32 (T,): the node term's values (``node_offsets`` index it); None: none."""
        return None

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings, with the registered ``architecture`` name and the ``model``
        section that names the layers' architectures."""
        config = {"architecture": self.architecture, "name": self.name}
        if self.output_source is not None:
            config["output_weights"] = self.output_source
        return {**config, "model": self.model_config}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The head's parameters by name (saved as head.<name>.npy), except those that are the
        HS model's own arrays (``bind``)."""
        return own_params(self.model) if self.model is not None else {}

    # -- the queries ---------------------------------------------------------------------

    @property
    def n_words(self) -> int:
        return self.tree.n_words

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """log P(word_ids[b] | context b), float64 (B,); NaN where the word id is negative or
        the row has no context."""
        context_ids = _matrix(context_ids)
        word_ids = np.ascontiguousarray(word_ids, dtype=np.int32)
        if len(word_ids) != len(context_ids):
            raise ConfigError(Errors.E022.format(n=len(context_ids), n_words=len(word_ids)))
        out = np.full(len(word_ids), np.nan)
        tree = self.tree
        for start in range(0, len(word_ids), BLOCK):
            rows = slice(start, start + BLOCK)
            hidden, has_context = self.hidden(context_ids[rows])
            targets = np.where(has_context, word_ids[rows], -1).astype(np.int32)
            out[rows] = _tree_search.path_log_probs(
                hidden,
                targets,
                self.output_weights,
                tree.path_offsets,
                tree.path_nodes,
                tree.path_codes,
                **self._node_term(context_ids[rows]),
            )
        return out

    def top_k(self, context_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact k most probable words: ids int32 (B, k) and log-probabilities float64
        (B, k), best first; rows without a context have ids -1 and NaN."""
        context_ids = _matrix(context_ids)
        k = min(int(k), self.n_words)
        ids = np.full((len(context_ids), k), -1, dtype=np.int32)
        log_probs = np.full((len(context_ids), k), np.nan)
        for rows, hidden, node_term in self._blocks(context_ids, BLOCK):
            found, scores, _ = _tree_search.top_k(
                hidden, self.output_weights, self.tree.children, self.tree.root, k, **node_term
            )
            ids[rows], log_probs[rows] = found, scores
        return ids, log_probs

    def top_k_mixed(
        self,
        context_ids: np.ndarray,
        k: int,
        windows: Sequence[np.ndarray],
        weight: float | np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k of the document cache's mixture, (1 - λ_b) * P(w | context b) +
        λ_b * C_b(w), C_b the unigram distribution of the word ids ``windows[b]``, λ_b
        ``weight`` (one for every row, or one per row)
        (``spacy_hs.cache``): one best-first search per row (``_tree_search.top_k_mixed``).
        Returns ids int32 (B, k) and log-probabilities float64 (B, k); -1 and NaN for rows
        without a context."""
        context_ids = _matrix(context_ids)
        k = min(int(k), self.n_words)
        ids = np.full((len(context_ids), k), -1, dtype=np.int32)
        log_probs = np.full((len(context_ids), k), np.nan)
        hidden, has_context = self.hidden(context_ids)
        rows = np.flatnonzero(has_context)
        if not len(rows):
            return ids, log_probs
        lengths = np.array([len(windows[row]) for row in rows.tolist()], dtype=np.int64)
        flat = [windows[row] for row in rows.tolist()]
        tree = self.tree
        found, probs = _tree_search.top_k_mixed(
            np.ascontiguousarray(hidden[rows]),
            self.output_weights,
            tree.children,
            tree.root,
            k,
            np.concatenate(flat).astype(np.int32) if flat else np.zeros(0, np.int32),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.ascontiguousarray(np.broadcast_to(weight, len(context_ids))[rows], np.float64),
            tree.path_offsets,
            tree.path_nodes,
            **self._node_term(context_ids[rows]),
        )
        ids[rows] = found
        with np.errstate(divide="ignore"):
            log_probs[rows] = np.log(probs)
        return ids, log_probs

    def log_probabilities(self, context_ids: np.ndarray) -> np.ndarray:
        """log P(w | context b) for every word w, float64 (B, V), aligned with the model's
        words; NaN rows where there is no context. O(V) per row."""
        context_ids = _matrix(context_ids)
        out = np.full((len(context_ids), self.n_words), np.nan)
        block_rows = max(1, min(BLOCK, (1 << 24) // max(self.n_words, 1)))  # ~128 MB of dots
        for rows, hidden, node_term in self._blocks(context_ids, block_rows):
            dots = np.ascontiguousarray(hidden @ self.output_weights.T, dtype=np.float32)
            out[rows] = _tree_search.word_log_probs(
                dots, self.tree.children, self.tree.root, self.n_words, **node_term
            )
        return out

    def _blocks(
        self, context_ids: np.ndarray, block_rows: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
        """Per block of ``block_rows`` contexts: the rows (into ``context_ids``) that have a
        context, their hidden vectors (C-contiguous) and their node term (``_node_term``)."""
        for start in range(0, len(context_ids), block_rows):
            block = context_ids[start : start + block_rows]
            hidden, has_context = self.hidden(block)
            rows = np.flatnonzero(has_context)
            if len(rows):
                yield start + rows, np.ascontiguousarray(hidden[rows]), self._node_term(block[rows])

    def has_context(self, context_ids: np.ndarray) -> np.ndarray:
        """bool (B,): which rows the head can score."""
        return self.hidden(_matrix(context_ids))[1]

    def _node_term(self, context_ids: np.ndarray) -> dict[str, np.ndarray]:
        offsets = self.node_offsets(context_ids)
        if offsets is None:
            return {}
        return {"table": self.node_table, "bases": np.ascontiguousarray(offsets, dtype=np.int64)}


registry.heads.register(TreeHead.architecture, func=TreeHead)

# A layer attribute naming the params that are the HS model's arrays (param -> HSModel
# attribute): ``bind`` sets them (not copied) and they are never saved with the head.
HS_MODEL_PARAMS = "hs_model_params"


def build_model(config: Any) -> Model:
    """The thinc Model a config section names (``{"@architectures": name, **settings}``),
    built by the function registered in ``spacy_hs.registry.architectures``; confection checks
    the settings against its signature. ValueError if the name or a setting is wrong."""
    if not isinstance(config, dict) or "@architectures" not in config:
        raise ValueError(f"the head config's model section is {config!r}, not an architecture")
    try:
        return registry.models.resolve({"model": config}, validate=True)["model"]
    except Exception as err:  # catalogue's and confection's errors, the function's own
        problems = getattr(err, "errors", None)  # confection's, one per setting
        if problems:
            reason = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        else:
            reason = " ".join(str(err).split())
        raise ValueError(f"cannot build {config['@architectures']}: {reason}") from None


def bind(model: Model, hs_model: HSModel) -> None:
    """Give every layer of ``model`` the vocabulary size ``nV`` of ``hs_model``, where it has
    that dim unset, and the HS model's arrays its ``hs_model_params`` attribute names."""
    for layer in model.walk():
        if layer.has_dim("nV") is None:
            layer.set_dim("nV", len(hs_model))
        for param, array in layer.attrs.get(HS_MODEL_PARAMS, {}).items():
            layer.set_param(param, getattr(hs_model, array))


def own_params(model: Model) -> dict[str, np.ndarray]:
    """The params of ``model``'s layers by name, except the HS model's (``bind``)."""
    found: dict[str, np.ndarray] = {}
    for layer in model.walk():
        shared = layer.attrs.get(HS_MODEL_PARAMS, {})
        for name in layer.param_names:
            if name not in shared and layer.has_param(name):
                if name in found:
                    raise ValueError(f"two layers of the head have a param named {name}")
                found[name] = layer.get_param(name)
    return found


def fill(model: Model, arrays: dict[str, np.ndarray]) -> None:
    """Set the params of an initialized ``model`` (``own_params``) from ``arrays``, each of
    the shape and dtype its layer's ``init`` gave it (copied); ValueError if one is not."""
    for layer in model.walk():
        shared = layer.attrs.get(HS_MODEL_PARAMS, {})
        for name in layer.param_names:
            if name in shared:
                continue
            expected = layer.get_param(name)
            array = arrays.get(name)
            if array is None or array.shape != expected.shape or array.dtype != expected.dtype:
                found = None if array is None else (array.shape, array.dtype)
                raise ValueError(f"{name} is {found}, not {expected.shape} {expected.dtype}")
            layer.set_param(name, np.array(array, order="C"))


def recent_first(context_ids: np.ndarray, size: int, n_words: int) -> np.ndarray:
    """The context matrix (B, size) the compiled kernels read, of a matrix of word ids oldest
    first, negative entries being padding: known ids right-aligned, reversed (most recent
    first), padded with the padding id ``n_words`` and cut or extended to ``size`` columns
    (the layout of the training engine's context buffer)."""
    recent = last_known(context_ids, size)[:, ::-1]
    if recent.size and int(recent.max()) >= n_words:
        raise IndexError(f"word id {int(recent.max())} is out of range [0, {n_words})")
    return np.ascontiguousarray(np.where(recent >= 0, recent, n_words), dtype=np.int32)


def context_matrix(id_lists: Sequence[Sequence[int]], size: int) -> np.ndarray:
    """An int32 context matrix (B, size) of lists of word ids (oldest first): each list's last
    ``size`` ids, right-aligned, -1 before them."""
    matrix = np.full((len(id_lists), size), -1, dtype=np.int32)
    for row, ids in enumerate(id_lists):
        recent = list(ids)[-size:] if size else []
        if recent:
            matrix[row, size - len(recent) :] = recent
    return matrix


def stream_contexts(token_ids: np.ndarray, sentence_lengths: np.ndarray, size: int) -> np.ndarray:
    """The context matrix (N, size) of every token of a document: the last ``size`` known ids
    (non-negative ``token_ids``) before it in its sentence, oldest first, right-aligned, -1
    before them. ``sentence_lengths`` split the N tokens into sentences."""
    token_ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
    lengths = np.asarray(sentence_lengths, dtype=np.int64).reshape(-1)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return contexts_between(token_ids, starts, np.arange(len(token_ids)), size)


def contexts_between(
    token_ids: np.ndarray,
    firsts: np.ndarray,
    ends: np.ndarray,
    size: int,
    known_before: np.ndarray | None = None,
    known_ids: np.ndarray | None = None,
) -> np.ndarray:
    """A context matrix (B, size): for each b, the last ``size`` known ids (non-negative
    ``token_ids``) among positions ``firsts[b]`` to ``ends[b]`` (exclusive), oldest first,
    right-aligned, -1 before them. ``known_before`` (known tokens before each position, N + 1)
    and ``known_ids`` may be passed if already computed."""
    token_ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
    if known_before is None or known_ids is None:
        known = token_ids >= 0
        known_before = np.concatenate([[0], np.cumsum(known)]).astype(np.int64)
        known_ids = token_ids[known]
    firsts = np.asarray(firsts, dtype=np.int64).reshape(-1)
    ends = np.asarray(ends, dtype=np.int64).reshape(-1)
    columns = known_before[ends][:, None] - size + np.arange(size)[None, :]
    valid = columns >= known_before[np.minimum(firsts, ends)][:, None]
    out = np.full((len(ends), size), -1, dtype=np.int32)
    if len(known_ids):
        out[valid] = known_ids[columns[valid]]
    return out


def last_known(context_ids: np.ndarray, size: int) -> np.ndarray:
    """int32 (B, size): each row's last ``size`` known ids (non-negative), oldest first,
    right-aligned, -1 before them. The word order of each row is kept."""
    context_ids = _matrix(context_ids)
    is_known = context_ids >= 0
    if not (is_known[:, 1:] >= is_known[:, :-1]).all():  # a stable sort moves padding left
        order = np.argsort(is_known, axis=1, kind="stable")
        context_ids = np.take_along_axis(context_ids, order, axis=1)
    out = np.full((len(context_ids), size), -1, dtype=np.int32)
    width = min(size, context_ids.shape[1])
    if width:
        out[:, size - width :] = np.maximum(context_ids[:, context_ids.shape[1] - width :], -1)
    return out


def _matrix(context_ids: np.ndarray) -> np.ndarray:
    context_ids = np.asarray(context_ids)
    if context_ids.ndim != 2:
        raise ConfigError(Errors.E008.format(shape=context_ids.shape))
    return np.ascontiguousarray(context_ids, dtype=np.int32)
