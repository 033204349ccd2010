"""gensim's own CBOW-style head: the hidden vector gensim trains its inner-node weights against.

``hidden = mean (cbow_mean=1) or sum (cbow_mean=0) of the last `window` known context vectors``,
scored with gensim's ``syn1``. It has no parameters of its own: its thinc Model,
``chain(context, output)`` of ``spacy_hs.CBOWContext.v1`` and a tied ``spacy_hs.TreeOutput.v1``,
reads the HS model's vectors and inner-node weights (``base.bind``), so it is never stored, and
every HS model has one. It cannot predict a sentence's first word (an empty context has no mean).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.layers.chain import chain
from thinc.model import Model
from thinc.types import Floats2d, Ints2d

from .. import _tree_search, registry, validation
from ..util import is_positive_int
from .base import TreeHead, bind, last_known
from .output import TreeOutput

if TYPE_CHECKING:
    from ..hs_model import HSModel

ARCHITECTURE = "spacy_hs.CBOWHead.v1"
CONTEXT_ARCHITECTURE = "spacy_hs.CBOWContext.v1"


@registry.architectures(CONTEXT_ARCHITECTURE)
def CBOWContext(window: int, mean: bool = True) -> Model[Ints2d, Floats2d]:
    """The CBOW hidden vectors (B, d) of a context matrix (B, K') of word ids, oldest first,
    negative entries padding: the mean (or sum) of the last ``window`` known ids' vectors, a
    zero row for none. Its param ``input_vectors`` is the HS model's ``vectors``."""
    if not is_positive_int(window):
        raise ValueError(f"window {window!r} must be a positive integer")
    return Model(
        "cbow_context",
        cbow_forward,
        init=cbow_init,
        dims={"nV": None, "nO": None},
        params={"input_vectors": None},
        attrs={
            "context_size": window,
            "mean": bool(mean),
            "hs_model_params": {"input_vectors": "vectors"},
        },
    )


def cbow_hidden(model: Model, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden vectors float32 (B, d) and has_context bool (B,): rows with no known word have a
    zero hidden vector and no context."""
    vectors = model.get_param("input_vectors")
    recent = validation.word_id_array(
        last_known(context_ids, model.attrs["context_size"]), len(vectors), "context_ids"
    )
    return _tree_search.context_hidden_matrix(vectors, recent, model.attrs["mean"])


def cbow_forward(
    model: Model[Ints2d, Floats2d], X: Ints2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Ints2d]]:
    Y, _ = cbow_hidden(model, X)

    def backprop(dY: Floats2d) -> Ints2d:
        """Each known id of a row gets the row's gradient, divided by their number for the
        mean; word ids have no gradient (zeros)."""
        recent = last_known(X, model.attrs["context_size"])
        known = recent >= 0
        scale = 1.0 / np.maximum(known.sum(axis=1), 1) if model.attrs["mean"] else 1.0
        rows = np.asarray(dY, dtype=np.float32) * np.reshape(scale, (-1, 1))
        d_vectors = np.zeros_like(model.get_param("input_vectors"))
        np.add.at(d_vectors, recent[known], np.repeat(rows, known.sum(axis=1), axis=0))
        model.inc_grad("input_vectors", d_vectors)
        return model.ops.alloc2i(*X.shape)

    return Y, backprop


def cbow_init(model: Model, X: Ints2d | None = None, Y: Floats2d | None = None) -> None:
    """The dims of the vectors ``bind`` set."""
    model.set_dim("nO", model.get_param("input_vectors").shape[1])


class CBOWHead(TreeHead):
    """The CBOW-style head of an ``HSModel``."""

    name = "cbow"
    architecture = ARCHITECTURE
    predicts_sentence_start = False

    def __init__(self, hs_model: HSModel):
        settings = hs_model.settings
        config = {
            "@architectures": CONTEXT_ARCHITECTURE,
            "window": int(settings["window"]),
            "mean": bool(settings["cbow_mean"]),
        }
        context = CBOWContext(config["window"], config["mean"])  # built directly: per query
        output = TreeOutput(tied=True)
        model = chain(context, output)
        model.set_ref("context", context)
        model.set_ref("output", output)
        bind(model, hs_model)
        super().__init__(hs_model.tree, model, config)

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> CBOWHead:
        return cls(hs_model)

    @property
    def config(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE}

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean (or sum) of the context's known vectors; has_context False for none."""
        return cbow_hidden(self.context, context_ids)


registry.heads.register(ARCHITECTURE, func=CBOWHead)
