"""The document cache: a unigram cache over the previous known tokens of a document, mixed
with a head's next-word distribution (Kuhn & De Mori's cache; Mikolov's KN5 + cache).

With cache size N, weight λ_max, ramp c and delay m, at position t of a document::

    n    = how many known tokens the cache holds before t (at most N)
    C(w) = count of w among those n tokens / n
    λ(n) = λ_max * (n' / (n' + c))**2,  n' = max(0, n - m)
    P(w) = (1 - λ(n)) * P_head(w) + λ(n) * C(w)

The weight grows with the history the cache holds, so a short document (a few cached words)
leans on the head (squared: on PTB the linear ramp n / (n + c) still hurt 5-word documents
at the c the stream allows), and the cache is silent (P = P_head exactly) until it holds more
than m tokens. c = 0 is a fixed λ = λ_max (older models' cache); m = 0 (older models) speaks
from the first cached token.

The cache runs over the document in order, across sentence boundaries; at the document's
start it is empty and P = P_head. C is non-zero only on the cache's words, so everything stays
exact:

* log-probabilities follow from the formula;
* the top-k of P lies inside (the head's exact top-k) ∪ (the cache's words). A cache word
  outside the head's top-k has P_head(w) <= p_k, the head's k-th probability, so it can enter
  only if (1 - λ) p_k + λ C(w) beats the k-th best candidate: the words are tried by
  decreasing count and the head is asked only for those that can;
* the whole distribution is (1 - λ(n)) P_head + λ(n) C, λ(n) fixed at each position.

Unknown tokens are not cached (the component's context policy skips them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, Errors

# Largest cache size: the counting is O(tokens * log tokens) whatever N is, but a cache larger
# than a document is only the document's unigram distribution.
MAX_CACHE_SIZE = 1 << 20


@dataclass(frozen=True)
class CacheSettings:
    """size: N, how many of the previous known tokens the cache holds; weight: λ_max in
    [0, 1); ramp: c >= 0 in λ(n) = λ_max (n' / (n' + c))**2, n the tokens cached (0: λ = λ_max
    whenever the cache speaks, as models saved without a ramp); delay: m >= 0, n' = n - m, the
    cache is silent (λ = 0) while it holds m tokens or fewer (0 in models saved without it)."""

    size: int
    weight: float
    ramp: float = 0.0
    delay: int = 0

    def to_dict(self) -> dict[str, Any]:
        saved: dict[str, Any] = {"size": self.size, "weight": self.weight}
        if self.ramp:
            saved["ramp"] = self.ramp
        if self.delay:
            saved["delay"] = self.delay
        return saved

    def weights(self, held: np.ndarray) -> np.ndarray:
        """λ(n) for each number of cached tokens n (0 where the cache is empty or silent),
        float64."""
        speaking = np.maximum(np.asarray(held, dtype=np.float64) - self.delay, 0.0)
        if not self.ramp:
            return np.where(speaking > 0, self.weight, 0.0)
        return self.weight * (speaking / (speaking + self.ramp)) ** 2

    @classmethod
    def from_value(cls, value: Any) -> CacheSettings | None:
        """A cache setting as given (None, a dict, or CacheSettings), checked."""
        if value is None or isinstance(value, CacheSettings):
            return value
        if not isinstance(value, dict) or set(value) - {"size", "weight", "ramp", "delay"}:
            raise ConfigError(Errors.E027.format(value=value))
        size, weight, ramp = value.get("size"), value.get("weight"), value.get("ramp", 0.0)
        delay = value.get("delay", 0)
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or not 1 <= size <= MAX_CACHE_SIZE
            or isinstance(weight, bool)
            or not isinstance(weight, (int, float, np.floating))
            or not 0 <= weight < 1
            or isinstance(ramp, bool)
            or not isinstance(ramp, (int, float, np.integer, np.floating))
            or not 0 <= ramp <= MAX_CACHE_SIZE
            or isinstance(delay, bool)
            or not isinstance(delay, (int, np.integer))
            or not 0 <= delay <= MAX_CACHE_SIZE
        ):
            raise ConfigError(Errors.E027.format(value=value))
        return cls(int(size), float(weight), float(ramp), int(delay))


def cache_counts(
    token_ids: np.ndarray,
    size: int,
    targets: np.ndarray | None = None,
    documents: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For every token of a document (ids, -1 unknown): how often ``targets[t]`` (default: the
    token itself) occurs among the last ``size`` known tokens before it, and how many known
    tokens the cache holds there. Both int64 (N,); a negative target counts 0.

    documents: for several documents concatenated, each token's document number
    (non-decreasing); the cache then starts empty at each document's first token and never
    holds another document's tokens."""
    token_ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    targets = token_ids if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)
    known = token_ids >= 0
    before = np.concatenate([[0], np.cumsum(known)[:-1]]).astype(np.int64)  # known before t
    in_document = before
    ids, wanted = token_ids, np.maximum(targets, 0)
    if documents is not None and len(token_ids):
        documents = np.asarray(documents, dtype=np.int64).reshape(-1)
        firsts = np.flatnonzero(np.diff(documents, prepend=documents[0] - 1))
        in_document = before - np.repeat(before[firsts], np.diff(np.append(firsts, len(ids))))
        # An id per (document, word): a document's words match only its own tokens.
        n_ids = int(max(token_ids.max(initial=0), wanted.max(initial=0))) + 1
        ids = np.where(known, documents * n_ids + token_ids, -1)
        wanted = documents * n_ids + wanted
    held = np.minimum(in_document, size)
    known_ids = ids[known]
    span = len(known_ids) + 1
    # One sorted key per known token: its id * span + its index among the known tokens.
    keys = np.sort(known_ids * span + np.arange(len(known_ids)))
    base = wanted * span
    counts = np.searchsorted(keys, base + before) - np.searchsorted(keys, base + before - held)
    return np.where(targets >= 0, counts, 0), held


def mix_log_probs(
    head_log_probs: np.ndarray, counts: np.ndarray, held: np.ndarray, weight: float | np.ndarray
) -> np.ndarray:
    """log((1 - λ) P_head + λ C) for each token, C = counts / held; the head's own value,
    exactly, where the cache is empty or λ is 0. ``weight`` is λ, or λ per token
    (``CacheSettings.weights(held)``)."""
    with np.errstate(divide="ignore"):
        cache = np.where(held > 0, counts / np.maximum(held, 1), 0.0)
        mixed = np.log((1 - weight) * np.exp(head_log_probs) + weight * cache)
    return np.where((held > 0) & (np.asarray(weight) > 0), mixed, head_log_probs)


def window_distribution(recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cache's words and C(w) for a window of known ids (most recent last)."""
    words, counts = np.unique(np.asarray(recent, dtype=np.int64), return_counts=True)
    return words, counts / max(len(recent), 1)


def mix_top_k(
    head_ids: np.ndarray,
    head_log_probs: np.ndarray,
    cache_words: np.ndarray,
    cache_probs: np.ndarray,
    weight: float,
    k: int,
    head_log_prob: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k of the mixture at one position, from the head's exact top-k (ids and
    log-probabilities, best first) and the cache's words (sorted ids, as ``np.unique`` gives)
    and C(w). ``head_log_prob(ids)`` gives the head's log-probabilities of other words; it is
    asked only for cache words that can enter. Returns (ids, log-probabilities), best first."""
    head_ids = np.asarray(head_ids, dtype=np.int64)
    slot = np.minimum(np.searchsorted(cache_words, head_ids), len(cache_words) - 1)
    in_cache = cache_words[slot] == head_ids
    scores = (1 - weight) * np.exp(head_log_probs) + weight * np.where(
        in_cache, cache_probs[slot], 0.0
    )
    threshold = np.sort(scores)[-k] if len(scores) >= k else 0.0
    # a word outside the head's top-k has P_head <= the k-th head probability
    bound = (1 - weight) * float(np.exp(head_log_probs[-1])) + weight * cache_probs
    outside = np.ones(len(cache_words), dtype=bool)
    outside[slot[in_cache]] = False
    ask = cache_words[outside & (bound > threshold)]
    ids, probs = head_ids, scores
    if len(ask):
        asked = (1 - weight) * np.exp(head_log_prob(ask.astype(np.int32)))
        asked += weight * cache_probs[np.searchsorted(cache_words, ask)]
        ids, probs = np.concatenate([head_ids, ask]), np.concatenate([scores, asked])
    order = np.lexsort((ids, -probs))[:k]
    return ids[order], np.log(probs[order])
