"""Running next-word metrics: hit@1, hit@10 and perplexity over scored positions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..heads.protocol import Head
from .common import finite

if TYPE_CHECKING:
    from ..document import Documents

QUERY_ROWS = 4096  # top-k queries answered at once by ``Score.add_at``
TOP_K = 10  # hit@TOP_K


@dataclass
class Score:
    """Running next-word metrics of one predictor over scored positions."""

    n: int = 0
    hit_1: int = 0
    hit_10: int = 0
    neg_log_prob: float = 0.0

    def add(self, top_ids: np.ndarray, log_probs: np.ndarray, targets: np.ndarray) -> None:
        self.n += len(targets)
        self.hit_1 += int((top_ids[:, 0] == targets).sum())
        self.hit_10 += int((top_ids == targets[:, None]).any(axis=1).sum())
        self.neg_log_prob -= float(np.sum(log_probs, dtype=np.float64))

    def add_head(
        self, head: Head, contexts: np.ndarray, targets: np.ndarray, log_probs: np.ndarray
    ) -> None:
        """Add a head's scores: its top-k for ``contexts`` (a context matrix) against
        ``targets``, and their ``log_probs``; rows the head cannot score (NaN) are left out."""
        rows = ~np.isnan(log_probs)
        top_ids, _ = head.top_k(contexts[rows], TOP_K)
        self.add(top_ids, log_probs[rows], targets[rows])

    def add_at(self, stream: Documents, positions: np.ndarray, log_probs: np.ndarray) -> None:
        """Add the scores at ``positions`` of ``stream``: its top-k there against the words,
        and their ``log_probs`` (``stream.log_probs()``); positions it cannot score (NaN) are
        left out."""
        positions = positions[~np.isnan(log_probs[positions])]
        # A bounded number of queries at a time: a chunk of the held-out file is whole
        # sentences, and one long line (a text8-style file) would hold a cache window and a
        # top-k row per position at once.
        for start in range(0, len(positions), QUERY_ROWS):
            rows = positions[start : start + QUERY_ROWS]
            top_ids, _ = stream.top_k_at(rows, TOP_K)
            self.add(top_ids, log_probs[rows], stream.word_ids[rows])

    def __add__(self, other: Score) -> Score:
        return Score(
            self.n + other.n,
            self.hit_1 + other.hit_1,
            self.hit_10 + other.hit_10,
            self.neg_log_prob + other.neg_log_prob,
        )

    def result(self, **extra: Any) -> dict[str, Any]:
        if not self.n:
            return {"n_scored": 0, "hit_at_1": None, "hit_at_10": None, "perplexity": None}
        return {
            "n_scored": self.n,
            "hit_at_1": self.hit_1 / self.n,
            "hit_at_10": self.hit_10 / self.n,
            "perplexity": finite(math.exp(min(self.neg_log_prob / self.n, 700.0))),
            **extra,
        }
