"""``spacy_hs/heads/cbow.py``: gensim's CBOW-style head as a thinc Model over the HS model's own
arrays: its hidden vectors, its backprop against finite differences, nothing saved."""

from __future__ import annotations

import numpy as np
import pytest
from head_oracles import check_gradients

from spacy_hs import HSModel
from spacy_hs.heads.cbow import CBOWContext, CBOWHead


@pytest.mark.parametrize("mean", [True, False])
def test_context_layer_backprop_is_the_gradient(mean: bool) -> None:
    layer = CBOWContext(window=2, mean=mean)
    rng = np.random.default_rng(3)
    layer.set_param("input_vectors", rng.normal(size=(6, 3)).astype(np.float32))
    layer.initialize()
    contexts = np.array([[1, 1, 2], [-1, -1, 4], [-1, -1, -1], [0, -1, 5]], dtype=np.int32)
    hidden = layer.predict(contexts)
    vectors = layer.get_param("input_vectors")
    expected = (vectors[1] + vectors[2]) / (2 if mean else 1)  # the last two known words
    np.testing.assert_allclose(hidden[0], expected, rtol=1e-6)
    assert not hidden[2].any()  # no known word
    check_gradients(layer, contexts, ["input_vectors"])


def test_the_head_reads_the_hs_models_arrays(hs_model: HSModel) -> None:
    head = hs_model.predictor("cbow")
    assert isinstance(head, CBOWHead) and head.to_arrays() == {}
    assert head.context.get_param("input_vectors") is hs_model.vectors
    assert head.output_weights is hs_model.inner_node_weights
    assert head.config == {"architecture": "spacy_hs.CBOWHead.v1"}
    assert head.context_size == hs_model.settings["window"]
    contexts = hs_model.context_ids([["the", "fire"], [], ["zzqx"], ["police", "said"]], 6)
    hidden, has_context = head.hidden(contexts)
    assert has_context.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(hidden, head.context.predict(contexts))
    expected, _ = hs_model.hidden_batch([["the", "fire"], [], ["zzqx"], ["police", "said"]])
    np.testing.assert_array_equal(hidden, expected)
