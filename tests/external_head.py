"""A next-word head defined outside spacy_hs, as another package would: registered through
``spacy_hs.registry.heads``, saved with the model, restored by name, and used by the component,
``evaluate``, ``predict`` and ``render`` without any change to spacy_hs.

The bigram test head scores the next word from the previous known word alone::

    hidden = previous_vectors[w_{t-1}]     (start_vector at a sentence start)
    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * hidden . inner_node_weights[n])

with the HS model's own inner-node weights (gensim's ``syn1``), and its own arrays: a copy of
the model's input vectors and a start vector (their mean). Importing this module registers it;
a subprocess running the CLI imports it first (``test_external_head.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spacy_hs import registry
from spacy_hs.heads.base import TreeHead, last_known

ARCHITECTURE = "tests.BigramTestHead.v1"
NAME = "bigram_test"


@registry.heads(ARCHITECTURE)
class BigramTestHead(TreeHead):
    """Predicts the next word from the previous known word's vector."""

    name = NAME
    predicts_sentence_start = True

    def __init__(self, previous_vectors: np.ndarray, start_vector: np.ndarray, hs_model: Any):
        super().__init__(hs_model.tree)
        self.hs_model = hs_model
        self.previous_vectors = np.ascontiguousarray(previous_vectors, dtype=np.float32)
        self.start_vector = np.ascontiguousarray(start_vector, dtype=np.float32)

    @classmethod
    def from_hs_model(cls, hs_model: Any) -> BigramTestHead:
        vectors = hs_model.vectors
        return cls(vectors.copy(), vectors.mean(axis=0), hs_model)

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: Any
    ) -> BigramTestHead:
        shapes = {
            "previous_vectors": hs_model.vectors.shape,
            "start_vector": (hs_model.vector_size,),
        }
        for name, shape in shapes.items():
            if name not in arrays or arrays[name].shape != shape:
                raise ValueError(f"{name} is missing or not of shape {shape}")
        return cls(arrays["previous_vectors"], arrays["start_vector"], hs_model)

    @property
    def context_size(self) -> int:
        return 1

    @property
    def output_weights(self) -> np.ndarray:
        return self.hs_model.inner_node_weights

    @property
    def config(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE, "name": NAME}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"previous_vectors": self.previous_vectors, "start_vector": self.start_vector}

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        previous = last_known(context_ids, 1)[:, 0]
        hidden = np.where(
            (previous >= 0)[:, None],
            self.previous_vectors[np.maximum(previous, 0)],
            self.start_vector[None, :],
        )
        return np.ascontiguousarray(hidden, dtype=np.float32), np.ones(len(hidden), dtype=bool)

    def brute_force_log_probs(self, previous: int | None) -> np.ndarray:
        """Test oracle: log P(w | previous word, or the sentence start) for every word w, by
        walking each word's path in numpy (no compiled kernel, no search)."""
        hidden = self.start_vector if previous is None else self.previous_vectors[previous]
        dots = self.output_weights.astype(np.float64) @ hidden.astype(np.float64)
        tree = self.tree
        out = np.empty(tree.n_words)
        for word in range(tree.n_words):
            path = slice(tree.path_offsets[word], tree.path_offsets[word + 1])
            signs = 1.0 - 2.0 * tree.path_codes[path]
            out[word] = -np.logaddexp(0.0, -signs * dots[tree.path_nodes[path]]).sum()
        return out
