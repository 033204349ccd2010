"""What every next-word head provides: the ``Head`` protocol.

A head answers next-word queries itself, as KenLM's ``Model`` does: the exact log-probability
of a word, the exact top-k and the whole distribution, for a batch of contexts. Contexts are an
int32 matrix (B, K): word ids, oldest first, negative entries padding. ``HSModel``, the
component, evaluation and the view ask only these methods. ``heads.base.TreeHead`` implements
them for heads on the HS model's Huffman tree, from a hidden vector (and an optional sparse node
term) per context.

A head is saved as an opaque JSON config (with its registered ``architecture``) plus named
arrays; ``HSModel`` stores both without knowing what they mean and restores the head with
``cls.from_arrays(config, arrays, hs_model)`` of the class ``spacy_hs.registry.heads`` names.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Head(Protocol):
    """A next-word head. Every member is required."""

    name: str  # what ``HSModel.head(name)`` and the component's ``head`` setting select

    @property
    def context_size(self) -> int:
        """How many of the most recent known context words the head reads."""
        ...

    @property
    def predicts_sentence_start(self) -> bool:
        """Whether an empty context (a sentence's first word) has a distribution."""
        ...

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings, with the registered ``architecture`` name."""
        ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The head's parameters by name (none for a head that only reads the HS model)."""
        ...

    def log_prob(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """log P(word_ids[b] | context b), float64 (B,); NaN where the word id is negative or
        the row has no context."""
        ...

    def top_k(self, context_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k: word ids int32 (B, k) and log-probabilities float64 (B, k), best
        first; ids -1 and NaN for rows without a context."""
        ...

    def log_probabilities(self, context_ids: np.ndarray) -> np.ndarray:
        """log P(w | context b) for every word, float64 (B, V); NaN rows without a context."""
        ...
