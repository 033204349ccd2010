"""gensim's own CBOW-style head: the hidden vector gensim trains its inner-node weights against.

``hidden = mean (cbow_mean=1) or sum (cbow_mean=0) of the last `window` known context vectors``,
scored with gensim's ``syn1``. It has no parameters of its own: it reads the HS model's vectors
and inner-node weights, so it is never stored, and every HS model has one. It cannot predict a
sentence's first word (an empty context has no mean).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import registry
from .base import TreeHead, last_known

if TYPE_CHECKING:
    from ..hs_model import HSModel

ARCHITECTURE = "spacy_hs.CBOWHead.v1"


@registry.heads(ARCHITECTURE)
class CBOWHead(TreeHead):
    """The CBOW-style head of an ``HSModel``."""

    name = "cbow"
    predicts_sentence_start = False

    def __init__(self, model: HSModel):
        super().__init__(model.tree)
        self.model = model

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], model: HSModel
    ) -> CBOWHead:
        return cls(model)

    @property
    def context_size(self) -> int:
        return int(self.model.settings["window"])

    @property
    def output_weights(self) -> np.ndarray:
        return self.model.inner_node_weights

    @property
    def config(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE}

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean (or sum) of the context's known vectors; has_context False for none."""
        return self.model.hidden_from_matrix(last_known(context_ids, self.context_size))
