"""``Documents``: a batch of documents read through a head (and the document cache), spaCy-free.

KenLM's ``State`` walks a sentence forward; ``Documents`` holds the word ids of one or more
documents, with their sentence and document boundaries, and answers every question about them
with the same history:

* ``log_probs()``: log P of every token given the known words before it in its sentence (the
  sentence's first word from the sentence start) and, with a cache, its document so far;
  ``perplexities()`` and ``unknown_counts()`` per document;
* ``top_k_after(ends, k)``: the exact top-k next words after the first ``e`` positions,
  continuing position ``e - 1``'s sentence (``Token._.hs_next``, ``Span._.hs_next``);
  ``top_k_after_documents(k)``: after each document's end (``Doc._.hs_next``);
* ``top_k_at(positions, k)``: the exact top-k at position ``t``'s slot, with the history
  ``log_probs()`` scores token ``t`` with;
* ``probabilities_at(positions)``, ``ranks_and_entropies(positions)``, ``measures_at()`` and
  ``measures()``: the whole next-word distribution at a slot, and from it the exact rank of the
  actual word and the entropy (``Token._.hs_rank``, ``Token._.hs_entropy``, the surprisal view).

Positions count every token given, dropped ones included (``dropped``: tokens the normaliser
drops, e.g. punctuation). A dropped token is neither scored nor context. Unknown tokens
(negative ids) are skipped as context and not cached; an unknown token is scored
as the model's unknown word if it has one (``HSModel.unknown_id``), else NaN. The cache
(``spacy_hs.cache``) starts empty at each document (or from ``history``, the first document's
earlier tokens) and never holds another document's tokens; its window is ``_window`` below, the
only one.

``cached_top_k`` is the cached top-k for any head and any context matrix: a ``TreeHead``
searches the mixture itself in one compiled call.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import CacheSettings, cache_counts, mix_log_probs, mix_top_k, window_distribution
from .errors import ConfigError, Errors, WrongTypeError
from .heads.base import TreeHead, contexts_between, stream_contexts
from .util import is_positive_int

if TYPE_CHECKING:
    from .heads.protocol import Head

# For heads other than TreeHead: how many of the head's best words the cached top-k starts
# from, per word asked for.
CANDIDATES = 3


class Documents:
    """Documents given as word ids (int32, negative: unknown) and sentence lengths (in
    positions, dropped ones included), read through ``head`` with the document cache ``cache``
    (None: off).

    unknown_id: the id unknown tokens are scored as, or None. n_words: the vocabulary size.
    context_size: read at most this many known words before a position (None: the head's).
    document_lengths: positions per document, summing to the number of positions (None: one
        document); a document's first position must open a sentence.
    history: the cache's known ids before the first position (the first document's earlier
        tokens: ``history_after()`` of the previous batch).
    dropped: bool (N,), the positions left out of the stream (None: none).
    """

    def __init__(
        self,
        word_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        head: Head,
        cache: CacheSettings | None = None,
        unknown_id: int | None = None,
        *,
        n_words: int,
        context_size: int | None = None,
        document_lengths: np.ndarray | None = None,
        history: np.ndarray | None = None,
        dropped: np.ndarray | None = None,
        state: Any = None,
    ):
        self.word_ids = np.asarray(word_ids, dtype=np.int32).reshape(-1)
        n = len(self.word_ids)
        lengths = _integers(sentence_lengths, "sentence_lengths")
        if (lengths < 0).any() or int(lengths.sum()) != n:
            raise ConfigError(Errors.E026.format(total=int(lengths.sum()), n=n))
        self.head = head
        self.n_words = int(n_words)
        self.context_size = int(head.context_size)
        if context_size is not None:
            self.context_size = min(int(context_size), self.context_size)
        self.cache = cache if cache is not None and cache.weight > 0 else None
        self.document_lengths = (
            np.array([n], dtype=np.int64)
            if document_lengths is None
            else _integers(document_lengths, "document_lengths")
        )
        self.history = np.zeros(0, np.int32) if history is None else np.asarray(history, np.int32)
        # Full positions (dropped ones included): [t] the first position of t's sentence and of
        # t's document; [t] kept positions before t (N + 1).
        self._sentence_first = _firsts(lengths, n)
        self._document_first = _firsts(self.document_lengths, n)
        self.dropped = np.zeros(n, bool) if dropped is None else np.asarray(dropped, bool)
        kept = ~self.dropped
        self._kept_before = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(kept, out=self._kept_before[1:])
        self._document_of = np.repeat(np.arange(len(self.document_lengths)), self.document_lengths)
        # The stream the head reads: kept tokens, their sentences' lengths and documents.
        self.token_ids = self.word_ids[kept] if not kept.all() else self.word_ids
        sentence_of = np.repeat(np.arange(len(lengths)), lengths)
        self.lengths = np.bincount(sentence_of[kept], minlength=len(lengths)).astype(np.int64)
        self._kept_documents = self._document_of[kept]
        self.targets = self.token_ids.copy()
        if unknown_id is not None:
            self.targets[self.targets < 0] = unknown_id
        known = self.token_ids >= 0
        self._known_ids = self.token_ids[known]
        self._known_before = np.concatenate([[0], np.cumsum(known)]).astype(np.int64)
        # Values computed once and shared with ``without_cache()`` copies (the head's pass).
        self._computed: dict[str, np.ndarray] = {}
        # A recurrent head walks each document once, one step per token, its state carried
        # across sentences and reset at each document (the first from ``state``); every
        # question is then asked of those walks (``heads/recurrent.py``'s ``StreamView``).
        self.walk = None
        stream = getattr(head, "stream", None)
        if stream is not None:
            kept_lengths = np.bincount(self._kept_documents, minlength=self.n_documents)
            self.walk = stream(self.token_ids, state, document_lengths=kept_lengths)
            self.head = self.walk

    def __len__(self) -> int:
        return len(self.word_ids)

    @property
    def final_state(self) -> Any:
        """A recurrent head's state after the last document's last token (pass it as the next
        batch's ``state`` to read on); None for other heads."""
        return self.walk.final_state if self.walk is not None else None

    @property
    def n_documents(self) -> int:
        return len(self.document_lengths)

    def without_cache(self) -> Documents:
        """The same documents read through the head alone (sharing its computed values)."""
        plain = copy.copy(self)
        plain.cache = None
        return plain

    # -- every token --------------------------------------------------------------------

    def log_probs(self) -> np.ndarray:
        """Natural-log probability of every position, float64 (N,); NaN where unscored or
        dropped."""
        log_probs = self._computed.get("head")
        if log_probs is None:
            if self.walk is not None:
                contexts = self.walk.stream_contexts(self.lengths, self._kept_documents)
            else:
                contexts = stream_contexts(self.token_ids, self.lengths, self.context_size)
            log_probs = self._computed["head"] = self.head.log_prob(contexts, self.targets)
        if self.cache is not None:
            h = len(self.history)
            documents = None
            if self.n_documents > 1:
                documents = np.concatenate([np.zeros(h, np.int64), self._kept_documents])
            counts, held = cache_counts(
                np.concatenate([self.history, self.token_ids]) if h else self.token_ids,
                self.cache.size,
                np.concatenate([self.history, self.targets]) if h else self.targets,
                documents=documents,
            )
            held = held[h:]
            log_probs = mix_log_probs(log_probs, counts[h:], held, self.cache.weights(held))
        if len(self.token_ids) == len(self.word_ids):
            return log_probs
        out = np.full(len(self.word_ids), np.nan)
        out[~self.dropped] = log_probs
        return out

    def perplexities(self, log_probs: np.ndarray | None = None) -> list[float | None]:
        """Per document: ``exp(-mean log P)`` over its scored tokens, None if it has none.
        log_probs: ``log_probs()``, if already computed."""
        log_probs = self.log_probs() if log_probs is None else log_probs
        valid = ~np.isnan(log_probs)
        documents = self._document_of[valid]
        sums = np.bincount(documents, weights=log_probs[valid], minlength=self.n_documents)
        counts = np.bincount(documents, minlength=self.n_documents)
        return [
            math.exp(-total / count) if count else None
            for total, count in zip(sums.tolist(), counts.tolist())
        ]

    def unknown_counts(self) -> list[int]:
        """Per document: how many tokens are out of the vocabulary (not dropped), scored as
        the unknown word or, without one, left out of the perplexity: KenLM's OOV count."""
        unknown = (self.word_ids < 0) & ~self.dropped
        documents = self._document_of[unknown]
        return np.bincount(documents, minlength=self.n_documents).tolist()

    def history_after(self) -> np.ndarray:
        """The cache's known ids at the end of the last document (its last ``size``): the
        ``history`` of a batch that continues it. Empty without a cache."""
        if self.cache is None:
            return np.zeros(0, dtype=np.int32)
        end = len(self.word_ids)
        first = int(self._document_first[end - 1]) if end else 0
        return self._window(np.array([first]), np.array([end]))[0]

    # -- questions at positions ----------------------------------------------------------

    def contexts_at(self, positions: np.ndarray) -> np.ndarray:
        """The context matrix (B, context_size) position ``t``'s log-probability reads: the
        last known ids before it in its sentence, oldest first, right-aligned, -1 before them;
        all -1 for a dropped position."""
        positions = self._positions(positions, "positions")
        contexts = self._contexts(self._sentence_first[positions], positions)
        contexts[self.dropped[positions]] = -1
        return contexts

    def contexts_after(self, ends: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        """The context matrix after the first ``e`` positions, for each ``e`` in ``ends``:
        position ``e - 1``'s sentence up to ``e`` (from ``starts[b]`` on, if given)."""
        ends = self._positions(ends, "ends", end=True)
        return self._contexts(self._firsts_after(ends, starts), ends)

    def top_k_after(
        self, ends: np.ndarray, k: int, starts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k next words after the first ``e`` positions, for each ``e`` in
        ``ends``: the context is ``contexts_after``, the cache the known tokens of position
        ``e - 1``'s document before ``e``. Returns ids int32 (B, k) (-1 where the head has no
        context) and log-probabilities float64 (B, k)."""
        ends = self._positions(ends, "ends", end=True)
        documents = np.where(ends > 0, self._document_first[np.maximum(ends - 1, 0)], 0)
        return self._top_k(self._firsts_after(ends, starts), ends, documents, k)

    def top_k_after_documents(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``top_k_after`` the end of each document, in its last sentence; an empty document
        has an empty context and an empty cache."""
        ends = np.cumsum(self.document_lengths)
        starts = ends - self.document_lengths
        return self._top_k(self._firsts_after(ends, starts), ends, starts, k)

    def top_k_at(self, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k at position ``t``'s slot, for each ``t`` in ``positions``, with the
        history ``log_probs()`` scores token ``t`` with."""
        positions = self._positions(positions, "positions")
        return self._top_k(
            self._sentence_first[positions], positions, self._document_first[positions], k
        )

    def has_known_context(self, positions: np.ndarray) -> np.ndarray:
        """True where a known word comes before position ``t`` in its sentence."""
        positions = self._positions(positions, "positions")
        before = self._known_before[self._kept_before]
        return before[positions] > before[self._sentence_first[positions]]

    def probabilities_at(self, positions: np.ndarray) -> np.ndarray:
        """P(w) for every word at position ``t``'s slot, for each ``t`` in ``positions``:
        float64 (B, V), each row summing to 1 (NaN rows where the head has no context)."""
        positions = self._positions(positions, "positions")
        probs = np.exp(self.head.log_probabilities(self._rows_at(positions)))
        if self.cache is not None:
            windows = self._window(self._document_first[positions], positions)
            weights = self.cache.weights([len(window) for window in windows])
            for row, (window, weight) in enumerate(zip(windows, weights.tolist())):
                words, cached = window_distribution(window)
                if len(words):
                    probs[row] *= 1 - weight
                    probs[row, words] += weight * cached
        return probs

    def log_probabilities_at(self, positions: np.ndarray) -> np.ndarray:
        """``log(probabilities_at(positions))``; without a cache, the head's own
        log-probabilities (no round trip through exp)."""
        if self.cache is None:
            return self.head.log_probabilities(self._rows_at(positions))
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities_at(positions))

    def ranks_and_entropies(
        self, positions: np.ndarray, rows_per_chunk: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """At position ``t``'s slot, for each ``t`` in ``positions``: the exact rank of the word
        token ``t`` is scored as (1: the most probable; 1 + how many words are more probable)
        and the entropy of the whole distribution, in bits. Ranks int64, 0 where the token is
        unscored (unknown, without an unknown word); entropies float64, NaN where the head has
        no context. The distributions are computed ``rows_per_chunk`` rows at a time."""
        positions = self._positions(positions, "positions")
        ranks = np.zeros(len(positions), dtype=np.int64)
        entropies = np.full(len(positions), np.nan)
        step = max(1, int(rows_per_chunk))
        for start in range(0, len(positions), step):
            chunk = positions[start : start + step]
            log_probs = self.log_probabilities_at(chunk)
            rows = np.arange(len(chunk))
            with np.errstate(invalid="ignore"):
                terms = np.where(np.isneginf(log_probs), 0.0, np.exp(log_probs) * log_probs)
            entropies[start : start + step] = -terms.sum(axis=1) / np.log(2.0)
            targets = self._targets_at(chunk)
            actual = log_probs[rows, np.maximum(targets, 0)]
            scored = (targets >= 0) & ~np.isnan(actual)
            above = np.count_nonzero(log_probs > actual[:, None], axis=1) + 1
            ranks[start : start + step] = np.where(scored, above, 0)
        return ranks, entropies

    def measures(
        self, log_probs: np.ndarray | None = None, rows_per_chunk: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rank and entropy (bits) at every position (``measures_at``).
        log_probs: ``log_probs()``, if already computed."""
        log_probs = self.log_probs() if log_probs is None else np.asarray(log_probs, float)
        return self.measures_at(np.arange(len(self)), log_probs, rows_per_chunk)

    def measures_at(
        self, positions: np.ndarray, log_probs: np.ndarray, rows_per_chunk: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rank and entropy (bits) at each of ``positions`` (``ranks_and_entropies``), at
        the cost of those positions alone: a rank where the token is scored, else 0; an entropy
        where it is scored, or unknown with a known word before it in its sentence (the
        prediction at its slot), else NaN. log_probs: ``log_probs()`` at ``positions``."""
        positions = self._positions(positions, "positions")
        scored = ~np.isnan(np.asarray(log_probs, dtype=np.float64).reshape(-1))
        unknown = np.flatnonzero((self.word_ids[positions] < 0) & ~self.dropped[positions])
        wanted = scored.copy()
        wanted[unknown[self.has_known_context(positions[unknown])]] = True
        rows = np.flatnonzero(wanted)
        ranks = np.zeros(len(positions), dtype=np.int64)
        entropies = np.full(len(positions), np.nan)
        ranks[rows], entropies[rows] = self.ranks_and_entropies(positions[rows], rows_per_chunk)
        ranks[~scored] = 0
        return ranks, entropies

    # -- internals ------------------------------------------------------------------------

    def _positions(self, values: object, name: str, *, end: bool = False) -> np.ndarray:
        """``values`` as int64 positions, each in [0, N) (``end``: [0, N]); no wrapping."""
        positions = _integers(values, name)
        high = len(self) + 1 if end else len(self)
        outside = (positions < 0) | (positions >= high)
        if outside.any():
            value = int(positions[np.argmax(outside)])
            raise ConfigError(Errors.E045.format(name=name, value=value, n=high))
        return positions

    def _targets_at(self, positions: np.ndarray) -> np.ndarray:
        kept = ~self.dropped[positions]
        targets = np.full(len(positions), -1, dtype=np.int64)
        targets[kept] = self.targets[self._kept_before[positions[kept]]]
        return targets

    def _firsts_after(self, ends: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        firsts = np.where(ends > 0, self._sentence_first[np.maximum(ends - 1, 0)], 0)
        if starts is not None:
            starts = self._positions(starts, "starts", end=True)
            if len(starts) != len(ends):
                raise ConfigError(Errors.E047.format(starts=len(starts), ends=len(ends)))
            firsts = np.maximum(firsts, starts)
        return firsts

    def _top_k(
        self, firsts: np.ndarray, ends: np.ndarray, documents: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k with the context of known ids in positions [firsts, ends) and the cache of
        the known ids in [documents, ends)."""
        if not is_positive_int(k):
            raise ConfigError(Errors.E046.format(k=k))
        contexts = self._rows(firsts, ends, documents)
        if self.cache is None:
            return self.head.top_k(contexts, k)
        windows = self._window(documents, ends)
        return cached_top_k(self.head, contexts, windows, self.cache, k, self.n_words)

    def _window(self, documents: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
        """The cache at each end: the last ``size`` known ids in positions [document, end),
        the ``history`` before them for the first document (oldest first)."""
        assert self.cache is not None
        h = len(self.history)
        ids = np.concatenate([self.history, self._known_ids]) if h else self._known_ids
        before = self._known_before[self._kept_before] + h
        lows = np.where(documents > 0, before[documents], 0)
        highs = before[ends]
        lows = np.maximum(lows, highs - self.cache.size)
        return [ids[low:high] for low, high in zip(lows.tolist(), highs.tolist())]

    def _rows_at(self, positions: np.ndarray) -> np.ndarray:
        """The head's rows for position ``t``'s slot (``contexts_at`` or a walk's rows)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if self.walk is None:
            return self.contexts_at(positions)
        return self._rows(
            self._sentence_first[positions], positions, self._document_first[positions]
        )

    def _rows(self, firsts: np.ndarray, ends: np.ndarray, documents: np.ndarray) -> np.ndarray:
        """What the head reads for a slot: the context of known ids in positions [firsts[b],
        ends[b]); for a recurrent head, the row of the walk of the document that starts at
        position ``documents[b]``, read up to ``ends[b]`` (``StreamView.contexts``)."""
        if self.walk is None:
            return self._contexts(firsts, ends)
        # Which document: that of position end - 1, or at a document's start (nothing
            # read yet) the first document starting there (an empty one, if any).
        starts = np.cumsum(self.document_lengths) - self.document_lengths
        at_start = np.searchsorted(starts, documents, side="left")
        last = self._document_of[np.maximum(ends - 1, 0)] if len(self) else at_start
        index = np.where(ends > documents, last, at_start)
        kept = self._kept_before
        return self.walk.contexts(kept[firsts], kept[ends], index)

    def _contexts(self, firsts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The last ``context_size`` known ids in positions [firsts[b], ends[b])."""
        return contexts_between(
            self.token_ids,
            self._kept_before[firsts],
            self._kept_before[ends],
            self.context_size,
            self._known_before,
            self._known_ids,
        )


# One document: the name earlier versions gave the class.
Document = Documents


def _integers(values: object, name: str) -> np.ndarray:
    """``values`` as a flat int64 array; WrongTypeError (E044) for floats, bools or anything
    else that is not integers (a float position would be truncated silently)."""
    array = np.asarray(values)
    if array.size and (array.dtype.kind not in "iu" or array.dtype == bool):
        raise WrongTypeError(Errors.E044.format(name=name, dtype=array.dtype))
    return array.astype(np.int64).reshape(-1)


def _firsts(lengths: np.ndarray, n: int) -> np.ndarray:
    """[t]: the first position of t's run, for runs of ``lengths`` over n positions (one zero
    for n = 0, so that a query at the end of an empty stream reads it)."""
    if not n:
        return np.zeros(1, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    return np.repeat(starts, lengths).astype(np.int64)


def cached_top_k(
    head: Head,
    contexts: np.ndarray,
    windows: list[np.ndarray],
    cache: CacheSettings,
    k: int,
    n_words: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k of the mixture for each row of ``contexts`` (a context matrix), with
    ``windows[b]`` the cache's known ids there (most recent last; empty: the head alone).
    Returns ids int32 (B, k) (-1 where the head has no context) and log-probabilities (B, k).

    A ``TreeHead`` searches the mixture itself (``TreeHead.top_k_mixed``: one best-first
    search per row), except where the cache is empty or silent (λ = 0): there P = P_head, as
    ``log_probs`` scores it. Any other head gives its top-(3 k)
    from one batched search: the cache words among them need no further question, and the
    bound on the others (P_head <= the last of these) is tighter."""
    k = min(int(k), n_words)
    weights = cache.weights([len(window) for window in windows])
    if isinstance(head, TreeHead):
        empty = weights == 0
        if not empty.any():
            return head.top_k_mixed(contexts, k, windows, weights)
        ids = np.empty((len(contexts), k), dtype=np.int32)
        log_probs = np.empty((len(contexts), k))
        ids[empty], log_probs[empty] = head.top_k(contexts[empty], k)
        rows = np.flatnonzero(~empty)
        if len(rows):
            mixed = [windows[row] for row in rows.tolist()]
            ids[rows], log_probs[rows] = head.top_k_mixed(contexts[rows], k, mixed, weights[rows])
        return ids, log_probs
    wide_ids, wide_log_probs = head.top_k(contexts, min(CANDIDATES * k, n_words))
    ids, log_probs = wide_ids[:, :k].copy(), wide_log_probs[:, :k].copy()
    for row, recent in enumerate(windows):
        if not len(recent) or weights[row] == 0 or ids[row, 0] < 0:
            continue
        words, probs = window_distribution(recent)

        def head_log_prob(word_ids: np.ndarray, row: int = row) -> np.ndarray:
            rows = np.repeat(contexts[row : row + 1], len(word_ids), axis=0)
            return head.log_prob(rows, word_ids)

        ids[row], log_probs[row] = mix_top_k(
            wide_ids[row], wide_log_probs[row], words, probs, weights[row], k, head_log_prob
        )
    return ids, log_probs
