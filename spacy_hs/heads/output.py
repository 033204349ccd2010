"""The output layer of a tree head: one logit per inner node of the HS model's Huffman tree.

    logits[b, n] = hidden[b] . output_weights[n]

``output_weights`` (V - 1, nI) holds a row per inner node. A directional head trains its own
(with the node biases as a last column, matched by the hidden vector's constant 1); the CBOW
head's are gensim's ``syn1``, the HS model's ``inner_node_weights`` (``tied``: set by
``base.bind``, never saved). P(word | context) is the product of the sigmoids of the signed
logits on the word's path (``base``); the queries compute only the logits they need, in the
compiled kernels, from this layer's param.
"""

from __future__ import annotations

from collections.abc import Callable

from thinc.model import Model
from thinc.types import Floats2d

from .. import registry

ARCHITECTURE = "spacy_hs.TreeOutput.v1"


@registry.architectures(ARCHITECTURE)
def TreeOutput(nI: int | None = None, tied: bool = False) -> Model[Floats2d, Floats2d]:
    """Node logits (B, V - 1) of hidden vectors (B, nI). nV, the vocabulary size, is set
    when the head is bound to its HS model. tied: the weights are the HS model's
    ``inner_node_weights``."""
    return Model(
        "tree_output",
        forward,
        init=init,
        dims={"nV": None, "nI": nI, "nO": None},
        params={"output_weights": None},
        attrs={"hs_model_params": {"output_weights": "inner_node_weights"} if tied else {}},
    )


def forward(
    model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Floats2d]]:
    weights = model.get_param("output_weights")
    Y = model.ops.gemm(X, weights, trans2=True)

    def backprop(dY: Floats2d) -> Floats2d:
        model.inc_grad("output_weights", model.ops.gemm(dY, X, trans1=True))
        return model.ops.gemm(dY, weights)

    return Y, backprop


def init(
    model: Model[Floats2d, Floats2d], X: Floats2d | None = None, Y: Floats2d | None = None
) -> None:
    """Zero weights, as gensim starts ``syn1``, unless already set (tied or loaded); nI, if
    unset, the width of those or of ``X``."""
    if model.has_dim("nI") is None:
        if model.has_param("output_weights"):
            model.set_dim("nI", model.get_param("output_weights").shape[1])
        elif X is not None:
            model.set_dim("nI", X.shape[1])
    model.set_dim("nO", model.get_dim("nV") - 1)
    if not model.has_param("output_weights"):
        shape = (model.get_dim("nO"), model.get_dim("nI"))
        model.set_param("output_weights", model.ops.alloc2f(*shape))
