"""Head, middle and tail buckets by perplexity, as CCNet cuts its corpus.

Two cutoffs split the documents: perplexity below the first is ``head``, below the second
``middle``, else ``tail`` (CCNet's ``PerplexityBucket``); a document without a perplexity has no
bucket. The cutoffs are given, or are the perplexity percentiles (e.g. 33 and 66) of a
deterministic sample of the corpus: the ``sample_size`` documents whose position hashes lowest
(all of them in a smaller corpus), so the same corpus always gives the same cutoffs, whatever
the engine, in memory bounded by the sample. They are saved beside the output
(``OUTPUT.cutoffs.json``), so other shards of a corpus can be cut at the same perplexities.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Errors

HEAD, MIDDLE, TAIL = "head", "middle", "tail"
DEFAULT_SAMPLE_SIZE = 100_000
CUTOFFS_SUFFIX = ".cutoffs.json"
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Cutoffs:
    """head: perplexity below which a document is in the head; tail: at or above which it is in
    the tail. percentiles and sample: where they came from, if from this corpus."""

    head: float
    tail: float
    percentiles: tuple[float, float] | None = None
    sample: int | None = None

    def bucket(self, perplexity: float | None) -> str | None:
        """The bucket of a document of this perplexity (None: no perplexity, no bucket)."""
        if perplexity is None:
            return None
        if perplexity < self.head:
            return HEAD
        return MIDDLE if perplexity < self.tail else TAIL

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"head": self.head, "tail": self.tail}
        if self.percentiles is not None:
            found.update(percentiles=list(self.percentiles), sample=self.sample)
        return found


def cutoffs_path(output: Path) -> Path:
    """Where the cutoffs of ``output`` are written."""
    return output.with_name(output.name + CUTOFFS_SUFFIX)


def write_cutoffs(cutoffs: Cutoffs, file: Any) -> None:
    """The cutoffs as a small JSON document (``read_cutoffs`` reads it back)."""
    file.write(json.dumps(cutoffs.to_dict(), indent=2) + "\n")


def parse_percentiles(value: str | tuple[float, float]) -> tuple[float, float]:
    """Two percentiles, 0 < first < second < 100, from ``"33,66"`` or a pair; ConfigError
    E909 otherwise."""
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        low, high = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise ConfigError(Errors.E909.format(value=value)) from None
    if not 0 < low < high < 100:
        raise ConfigError(Errors.E909.format(value=value))
    return low, high


def parse_cutoffs(value: str | Path | tuple[float, float]) -> Cutoffs:
    """Cutoffs from two perplexities (``"120,450"`` or a pair) or from a cutoffs file written
    beside an earlier output; ConfigError E910 otherwise."""
    if isinstance(value, (str, Path)) and Path(value).is_file():
        try:
            found = json.loads(Path(value).read_text(encoding="utf-8"))
            pair = (found["head"], found["tail"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            reason = f"not a cutoffs file ({type(err).__name__}: {err})"
            raise ConfigError(Errors.E910.format(value=str(value), reason=reason)) from None
    else:
        pair = value.split(",") if isinstance(value, str) else value
    try:
        head, tail = (float(part) for part in pair)
    except (TypeError, ValueError):
        reason = "neither two numbers nor a file"
        raise ConfigError(Errors.E910.format(value=str(value), reason=reason)) from None
    if not 0 < head < tail < float("inf"):
        reason = "they must be finite, positive and increasing"
        raise ConfigError(Errors.E910.format(value=str(value), reason=reason))
    return Cutoffs(head, tail)


class PerplexitySample:
    """A deterministic sample of the corpus's perplexities, of at most ``size`` documents.

    ``add(position, perplexity)`` in any order: the sample holds the documents whose position
    hashes lowest, so it depends on the documents and their positions only.
    """

    def __init__(self, size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0):
        self.size = size
        self.seed = seed
        self._heap: list[tuple[int, float]] = []  # (-hash, perplexity): the largest hash on top

    def add(self, position: int, perplexity: float | None) -> None:
        if perplexity is None:
            return
        entry = (-_mix64(position ^ self.seed), perplexity)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:
            heapq.heapreplace(self._heap, entry)

    def __len__(self) -> int:
        return len(self._heap)

    def cutoffs(self, percentiles: tuple[float, float]) -> Cutoffs:
        """The perplexities at ``percentiles`` of the sample (linear interpolation)."""
        import numpy as np

        if not self._heap:
            raise ConfigError(Errors.E914)
        values = np.sort(np.array([perplexity for _, perplexity in self._heap]))
        head, tail = (float(x) for x in np.percentile(values, percentiles))
        return Cutoffs(head, tail, percentiles=percentiles, sample=len(values))


def _mix64(value: int) -> int:
    """splitmix64's finaliser: positions to well-spread 64-bit hashes."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)
