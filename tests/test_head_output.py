"""``spacy_hs/heads/output.py``: the tree output layer's logits and its backprop (finite
differences), and weights tied to the HS model's."""

from __future__ import annotations

import numpy as np
from head_oracles import check_gradients

from spacy_hs import HSModel
from spacy_hs.heads.base import bind, own_params
from spacy_hs.heads.output import TreeOutput


def test_logits_and_gradients() -> None:
    layer = TreeOutput(nI=3)
    layer.set_dim("nV", 6)
    layer.initialize()
    rng = np.random.default_rng(0)
    assert layer.get_param("output_weights").shape == (5, 3) and layer.get_dim("nO") == 5
    layer.set_param("output_weights", rng.normal(size=(5, 3)).astype(np.float32))
    hidden = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        layer.predict(hidden), hidden @ layer.get_param("output_weights").T, rtol=1e-6
    )
    check_gradients(layer, hidden, ["output_weights"])
    Y, backprop = layer.begin_update(hidden)
    d_logits = rng.normal(size=Y.shape).astype(np.float32)
    np.testing.assert_allclose(
        backprop(d_logits), d_logits @ layer.get_param("output_weights"), rtol=1e-5
    )


def test_tied_weights_are_the_hs_models(hs_model: HSModel) -> None:
    layer = TreeOutput(tied=True)
    bind(layer, hs_model)
    layer.initialize()
    assert layer.get_param("output_weights") is hs_model.inner_node_weights
    assert own_params(layer) == {}
    untied = TreeOutput(nI=hs_model.vector_size)
    bind(untied, hs_model)
    untied.initialize()
    assert set(own_params(untied)) == {"output_weights"}
    assert not untied.get_param("output_weights").any()  # zeros, as gensim starts syn1
