"""What every next-word head provides: the ``Predictor`` protocol.

A head maps left contexts to hidden vectors, which are scored against its own output weights
(one row per inner node of the HS model's tree) by the exact tree kernels::

    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * hidden . output_weights[n])

Contexts come in two forms, the same words either way: lists of word ids, oldest first; or an
int32 matrix (B, K) of word ids, oldest first, with negative entries as padding (the component's
vectorised path). A head is saved as an opaque JSON config (with its registered
``architecture`` name) plus named arrays; ``HSModel`` stores both without knowing what they mean
and restores the head through ``spacy_hs.registry.heads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Predictor(Protocol):
    """A next-word head. Every method is required."""

    name: str  # "cbow", "directional", ...: what ``HSModel.predictor(name)`` selects

    @property
    def context_size(self) -> int:
        """How many of the most recent known context words the head reads."""
        ...

    @property
    def predicts_sentence_start(self) -> bool:
        """Whether an empty context (a sentence's first word) has a distribution."""
        ...

    @property
    def output_weights(self) -> np.ndarray:
        """float32 (V - 1, hidden width), C-contiguous."""
        ...

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings, with the registered ``architecture`` name."""
        ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The head's parameters by name (none for a head that only reads the HS model)."""
        ...

    def hidden_from_ids(self, id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Hidden vectors (B, width) and a has_context mask (B,) for lists of word ids."""
        ...

    def hidden_from_matrix(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``hidden_from_ids`` for contexts as an int32 matrix (B, K), negative = padding."""
        ...

    def log_prob_from_matrix(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """log P(word_ids[b] | context b) for a context matrix; NaN where the word id is
        negative or the row has no context."""
        ...
