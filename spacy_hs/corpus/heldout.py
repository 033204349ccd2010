"""The held-out split: which sentences of a batch go to the held-out token file.

The choice depends on a sentence's words and the seed only, never on batching or the process,
so the split is deterministic and a sentence repeated in the corpus always lands on the same
side: the two files share no sentence.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, splitmix64's increment


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit (wrapping uint64)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def heldout_sentences(
    word_hashes: np.ndarray, line_end: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """True for the sentences that go to the held-out file.

    A sentence's hash mixes each word's string hash with its position, sums over the sentence
    and mixes in the seed: equal sentences get equal hashes in any batch or process, so the
    split is deterministic and a repeated sentence never lands on both sides.
    """
    ends = np.flatnonzero(line_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    position = np.arange(len(word_hashes)) - np.repeat(starts, ends - starts + 1)
    with np.errstate(over="ignore"):
        tokens = _mix64(word_hashes + position.astype(np.uint64) * np.uint64(_GOLDEN))
        seed_term = np.uint64((seed + 1) * _GOLDEN % 2**64)
        sentences = _mix64(np.add.reduceat(tokens, starts) + seed_term)
    threshold = np.uint64(min(int(fraction * 2.0**64), 2**64 - 1))
    return sentences < threshold
