"""``Document``: one document read through a head (and the document cache), spaCy-free.

KenLM's ``State`` walks a sentence forward; a ``Document`` holds a whole document's word ids
and sentence lengths and answers every question about it with the same history:

* ``log_probs()``: log P of every token given the known words before it in its sentence (the
  sentence's first word from the sentence start) and, with a cache, the document so far;
* ``top_k_after(ends, k)``: the exact top-k next words after the first ``e`` tokens,
  continuing token ``e - 1``'s sentence (what ``Token._.hs_next`` and ``Doc._.hs_next`` ask);
* ``top_k_at(positions, k)``: the exact top-k at token ``t``'s slot, with the history
  ``log_probs()`` scores token ``t`` with;
* ``probabilities_at(positions)`` and ``ranks_and_entropies(positions)``: the whole next-word
  distribution at token ``t``'s slot, and from it the exact rank of the actual word and the
  entropy (``Token._.hs_rank``, ``Token._.hs_entropy``, the surprisal view).

``cached_top_k`` is the cached top-k for any head and any context matrix (the component's
batches): a ``TreeHead`` searches the mixture itself in one compiled call.

Unknown tokens (id -1) are skipped as context and not cached; an unknown token is scored as
the model's unknown word if it has one (``HSModel.unknown_id``), else NaN. The cache is
described in ``spacy_hs.cache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cache import CacheSettings, cache_counts, mix_log_probs, mix_top_k, window_distribution
from .errors import ConfigError, Errors
from .heads.base import TreeHead, contexts_between, stream_contexts

if TYPE_CHECKING:
    from .heads.protocol import Head


# For heads other than TreeHead: how many of the head's best words the cached top-k starts
# from, per word asked for.
CANDIDATES = 3


class Document:
    """A document's token ids (int32, -1 unknown) and sentence lengths, read through ``head``
    with the document cache ``cache`` (None: off). ``unknown_id``: the id unknown tokens are
    scored as, or None; ``n_words``: the vocabulary size; ``context_size``: read at most this
    many known words before a position (None: the head's ``context_size``)."""

    def __init__(
        self,
        token_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        head: Head,
        cache: CacheSettings | None = None,
        unknown_id: int | None = None,
        *,
        n_words: int,
        context_size: int | None = None,
    ):
        self.token_ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
        self.lengths = np.asarray(sentence_lengths, dtype=np.int64).reshape(-1)
        if (self.lengths < 0).any() or int(self.lengths.sum()) != len(self.token_ids):
            raise ConfigError(
                Errors.E026.format(total=int(self.lengths.sum()), n=len(self.token_ids))
            )
        self.head = head
        self.n_words = int(n_words)
        self.context_size = int(head.context_size)
        if context_size is not None:
            self.context_size = min(int(context_size), self.context_size)
        self.cache = cache if cache is not None and cache.weight > 0 else None
        self.targets = self.token_ids.copy()
        if unknown_id is not None:
            self.targets[self.targets < 0] = unknown_id
        # sentence_start[t]: the index of token t's sentence's first token
        starts = np.cumsum(self.lengths) - self.lengths
        self.sentence_start = np.repeat(starts, self.lengths).astype(np.int64)
        if not len(self.sentence_start):
            self.sentence_start = np.zeros(1, dtype=np.int64)
        known = self.token_ids >= 0
        self._known_ids = self.token_ids[known]
        self._known_before = np.concatenate([[0], np.cumsum(known)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.token_ids)

    # -- every token --------------------------------------------------------------------

    def log_probs(self) -> np.ndarray:
        """Natural-log probability of every token, float64 (N,); NaN where unscored."""
        contexts = stream_contexts(self.token_ids, self.lengths, self.context_size)
        head_log_probs = self.head.log_prob(contexts, self.targets)
        if self.cache is None:
            return head_log_probs
        counts, held = cache_counts(self.token_ids, self.cache.size, self.targets)
        return mix_log_probs(head_log_probs, counts, held, self.cache.weight)

    # -- questions at positions ----------------------------------------------------------

    def top_k_after(
        self, ends: np.ndarray, k: int, starts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k next words after the first ``e`` tokens, for each ``e`` in ``ends``:
        the context is token ``e - 1``'s sentence up to ``e`` (from ``starts[b]`` on, if given:
        a span's start), the cache the document's tokens before ``e``. Returns ids int32 (B, k)
        (-1 where the head has no context) and log-probabilities float64 (B, k)."""
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        return self._top_k(self._contexts_after(ends, starts), ends, k)

    def top_k_at(self, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k at token ``t``'s slot, for each ``t`` in ``positions``, with the
        history ``log_probs()`` scores token ``t`` with (a sentence's first token: from the
        sentence start)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        return self._top_k(self._contexts(self.sentence_start[positions], positions), positions, k)

    def probabilities_at(self, positions: np.ndarray) -> np.ndarray:
        """P(w) for every word at token ``t``'s slot, for each ``t`` in ``positions``: float64
        (B, V), each row summing to 1 (NaN rows where the head has no context), with exactly
        the history ``log_probs()`` scores token ``t`` with."""
        positions = np.asarray(positions, dtype=np.int64)
        contexts = stream_contexts(self.token_ids, self.lengths, self.context_size)
        probs = np.exp(self.head.log_probabilities(contexts[positions]))
        if self.cache is not None:
            weight = self.cache.weight
            for row, t in enumerate(positions.tolist()):
                words, cached = window_distribution(self._window(t))
                if len(words):
                    probs[row] *= 1 - weight
                    probs[row, words] += weight * cached
        return probs

    def has_known_context(self, positions: np.ndarray) -> np.ndarray:
        """True where a known word comes before token ``t`` in its sentence."""
        positions = np.asarray(positions, dtype=np.int64)
        before = self._known_before
        return before[positions] > before[self.sentence_start[positions]]

    def log_probabilities_at(self, positions: np.ndarray) -> np.ndarray:
        """``log(probabilities_at(positions))``; without a cache, the head's own
        log-probabilities (no round trip through exp)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.cache is None:
            contexts = stream_contexts(self.token_ids, self.lengths, self.context_size)
            return self.head.log_probabilities(contexts[positions])
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities_at(positions))

    def ranks_and_entropies(
        self, positions: np.ndarray, rows_per_chunk: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """At token ``t``'s slot, for each ``t`` in ``positions``: the exact rank of the word
        token ``t`` is scored as (1: the most probable; 1 + how many words are more probable)
        and the entropy of the whole distribution, in bits. Ranks int64, 0 where the token is
        unscored (unknown, without an unknown word); entropies float64, NaN where the head has
        no context. The distributions are computed ``rows_per_chunk`` rows at a time."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
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
            targets = self.targets[chunk]
            actual = log_probs[rows, np.maximum(targets, 0)]
            scored = (targets >= 0) & ~np.isnan(actual)
            above = np.count_nonzero(log_probs > actual[:, None], axis=1) + 1
            ranks[start : start + step] = np.where(scored, above, 0)
        return ranks, entropies

    # -- internals ------------------------------------------------------------------------

    def _top_k(
        self, contexts: np.ndarray, cache_ends: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            return self.head.top_k(contexts, k)
        windows = [self._window(end) for end in cache_ends.tolist()]
        return cached_top_k(self.head, contexts, windows, self.cache, k, self.n_words)

    def _window(self, end: int) -> np.ndarray:
        """The cache's known ids before token ``end``."""
        held = self._known_before[end]
        return self._known_ids[max(0, held - self.cache.size) : held]

    def _contexts_after(self, ends: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        firsts = np.where(ends > 0, self.sentence_start[np.maximum(ends - 1, 0)], 0)
        if starts is not None:
            firsts = np.maximum(firsts, np.asarray(starts, dtype=np.int64))
        return self._contexts(firsts, ends)

    def _contexts(self, firsts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The last ``context_size`` known ids in [firsts[b], ends[b]) (``contexts_between``,
        from the counts kept)."""
        return contexts_between(
            self.token_ids,
            firsts,
            ends,
            self.context_size,
            self._known_before,
            self._known_ids,
        )


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
    search per row). Any other head gives its top-(3 k) from one batched search: the cache
    words among them need no further question, and the bound on the others (P_head <= the
    last of these) is tighter."""
    if isinstance(head, TreeHead):
        return head.top_k_mixed(contexts, k, windows, cache.weight)
    k = min(int(k), n_words)
    wide_ids, wide_log_probs = head.top_k(contexts, min(CANDIDATES * k, n_words))
    ids, log_probs = wide_ids[:, :k].copy(), wide_log_probs[:, :k].copy()
    for row, recent in enumerate(windows):
        if not len(recent) or ids[row, 0] < 0:
            continue
        words, probs = window_distribution(recent)

        def head_log_prob(word_ids: np.ndarray, row: int = row) -> np.ndarray:
            rows = np.repeat(contexts[row : row + 1], len(word_ids), axis=0)
            return head.log_prob(rows, word_ids)

        ids[row], log_probs[row] = mix_top_k(
            wide_ids[row], wide_log_probs[row], words, probs, cache.weight, k, head_log_prob
        )
    return ids, log_probs
