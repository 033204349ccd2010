"""Models written by earlier versions still load and predict identically.

``tests/fixtures/model_v1`` was written by spacy-hs 0.1.0 before the heads moved behind a
registry (format v1, with a directional head); ``model_v1_expected.json`` holds what that
version predicted with it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from spacy_hs import HSModel

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "model_v1_expected.json").read_text(encoding="utf8"))


@pytest.fixture(scope="module")
def old_model() -> HSModel:
    return HSModel.from_disk(FIXTURES / "model_v1")


def _same(found: list, wanted: list) -> None:
    assert [w for w, _ in found] == [w for w, _ in wanted]
    np.testing.assert_allclose([p for _, p in found], [p for _, p in wanted], rtol=1e-6)


def test_v1_model_loads_with_its_head(old_model: HSModel, expected: dict) -> None:
    assert len(old_model) == expected["words"]
    assert old_model.trained_head is not None
    np.testing.assert_array_equal(
        old_model.vectors[old_model.key_to_index["the"]],
        np.array(expected["vector_the"], dtype=np.float32),
    )


@pytest.mark.parametrize("head", ["cbow", "directional"])
def test_v1_model_predicts_as_before(old_model: HSModel, expected: dict, head: str) -> None:
    contexts = [["the", "government"], ["in", "the"], ["he", "said"], []]
    for context, wanted in zip(contexts, expected[head]):
        _same(old_model.predict_next(context, 5, head=head), wanted)
    assert old_model.log_prob_next("the", ["in"], head=head) == pytest.approx(
        expected[f"log_prob_{head}"], rel=1e-9
    )


# A model written by the code just before the heads answered their own queries (commit
# 1e4d9fc: the thinc-free engine's directional head, format v1), and what it predicted then.
BEFORE_QUERIES = "model_v1_directional_1e4d9fc"


def test_a_model_of_the_previous_code_scores_as_before() -> None:
    expected = json.loads((FIXTURES / f"{BEFORE_QUERIES}_expected.json").read_text("utf8"))
    model = HSModel.from_disk(FIXTURES / BEFORE_QUERIES)
    assert len(model) == expected["words"] and model.trained_head.name == "directional"
    assert model.cache_settings() is None  # no document cache: as before
    contexts = [["the", "government"], ["in", "the"], ["he", "said"], []]
    for head in ("cbow", "directional"):
        for context, wanted in zip(contexts, expected[head]):
            with warnings.catch_warnings():  # CBOW has nothing to say after an empty context
                warnings.simplefilter("ignore")
                _same(model.predict_next(context, 5, head=head), wanted)
        assert model.log_prob_next("the", ["in"], head=head) == pytest.approx(
            expected[f"log_prob_{head}"], rel=1e-9
        )
    sentences = expected["batch_sentences"]
    contexts = [s[:t] for s in sentences for t in range(len(s))]
    words = [w for s in sentences for w in s]
    found = model.log_prob_next_batch(words, contexts)
    wanted = np.array([np.nan if x is None else x for x in expected["batch_log_probs"]])
    np.testing.assert_allclose(found, wanted, rtol=1e-9)
    np.testing.assert_allclose(model.log_prob_stream(sentences), wanted, rtol=1e-9)
