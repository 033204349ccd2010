"""A next-word head defined outside spacy_hs, as another package would: a thinc architecture
registered in spaCy's ``architectures`` registry (here through ``spacy_hs.registry``, the same
namespace), named by a generic head's config (``spacy_hs.TreeHead.v1``), saved with the model,
restored by name, and used by the component, ``evaluate``, ``predict`` and ``render`` without
any change to spacy_hs.

The bigram context encoder gives the previous known word's own vector::

    hidden = previous_vectors[w_{t-1}]     (start_vector at a sentence start)
    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * hidden . inner_node_weights[n])

scored with the HS model's own inner-node weights (gensim's ``syn1``, the generic head's
default), with its own params: a copy of the model's input vectors and a start vector (their
mean). Importing this module registers it; a subprocess running the CLI imports it first
(``test_external_head.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from thinc.model import Model

from spacy_hs import registry
from spacy_hs.heads.base import TreeHead, last_known

ARCHITECTURE = "tests.BigramContext.v1"
NAME = "bigram_test"


@registry.architectures(ARCHITECTURE)
def BigramContext(width: int) -> Model:
    """Hidden vectors (B, width): the previous known word's row of ``previous_vectors``."""
    return Model(
        "bigram_context",
        forward,
        init=init,
        dims={"nV": None, "nO": width},
        params={"previous_vectors": None, "start_vector": None},
        attrs={"context_size": 1, "predicts_sentence_start": True},
    )


def forward(model: Model, X: np.ndarray, is_train: bool) -> tuple[np.ndarray, Callable]:
    previous = last_known(X, 1)[:, 0]
    known = previous >= 0
    vectors, start = model.get_param("previous_vectors"), model.get_param("start_vector")
    hidden = np.where(known[:, None], vectors[np.maximum(previous, 0)], start[None, :])

    def backprop(dY: np.ndarray) -> np.ndarray:
        d_vectors = np.zeros_like(vectors)
        np.add.at(d_vectors, previous[known], dY[known])
        model.inc_grad("previous_vectors", d_vectors)
        model.inc_grad("start_vector", dY[~known].sum(axis=0))
        return model.ops.alloc2i(*X.shape)

    return np.ascontiguousarray(hidden, dtype=np.float32), backprop


def init(model: Model, X: Any = None, Y: Any = None) -> None:
    shapes = {
        "previous_vectors": (model.get_dim("nV"), model.get_dim("nO")),
        "start_vector": (model.get_dim("nO"),),
    }
    for name, shape in shapes.items():
        if not model.has_param(name):
            model.set_param(name, np.zeros(shape, dtype=np.float32))


def bigram_head(hs_model: Any) -> TreeHead:
    """The head for ``hs_model``: its vectors copied, their mean as the start vector."""
    config = {
        "name": NAME,
        "model": {"@architectures": ARCHITECTURE, "width": hs_model.vector_size},
    }
    head = TreeHead.from_config(config, hs_model)
    head.context.set_param("previous_vectors", hs_model.vectors.copy())
    head.context.set_param("start_vector", hs_model.vectors.mean(axis=0))
    return head


def brute_force_log_probs(head: TreeHead, previous: int | None) -> np.ndarray:
    """Test oracle: log P(w | previous word, or the sentence start) for every word w, by
    walking each word's path in numpy (no compiled kernel, no search)."""
    context = head.context
    if previous is None:
        hidden = context.get_param("start_vector")
    else:
        hidden = context.get_param("previous_vectors")[previous]
    dots = head.output_weights.astype(np.float64) @ hidden.astype(np.float64)
    tree = head.tree
    out = np.empty(tree.n_words)
    for word in range(tree.n_words):
        path = slice(tree.path_offsets[word], tree.path_offsets[word + 1])
        signs = 1.0 - 2.0 * tree.path_codes[path]
        out[word] = -np.logaddexp(0.0, -signs * dots[tree.path_nodes[path]]).sum()
    return out
