"""``spacy_hs/heads/base.py``: the tree heads' queries (exact against brute force), their thinc
Models and the architectures registry, the generic ``TreeHead``, and saving and loading a head
with its HS model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import srsly
from head_oracles import CONTEXTS, brute_force, oracle_logits
from thinc.model import Model

from spacy_hs import HSModel, registry
from spacy_hs.errors import MissingModelFileError, ModelFileError
from spacy_hs.heads.base import TreeHead, build_model
from spacy_hs.hs_model import registered_head_names


def test_spacy_lists_the_head_architectures_and_each_builds_a_thinc_model() -> None:
    """spaCy's own registry (imported after spacy-hs registered them, and through the entry
    points in a fresh process) lists the heads' architectures; each builds a thinc Model."""
    import spacy

    names = sorted(n for n in spacy.registry.architectures.get_all() if n.startswith("spacy_hs."))
    assert len(names) >= 2
    assert {"spacy_hs.LogBilinearContext.v1", "spacy_hs.HashedNgram.v1"} <= set(names)
    cbow_context = {"@architectures": "spacy_hs.CBOWContext.v1", "window": 4}
    settings = {
        "spacy_hs.CBOWContext.v1": {"window": 4},
        "spacy_hs.CBOWHead.v1": {"context": cbow_context},
        "spacy_hs.LogBilinearContext.v1": {"context_size": 3, "width": 8, "diagonal": True},
        "spacy_hs.HashedNgram.v1": {"orders": 2, "table_size": 1000},
        "spacy_hs.TreeOutput.v1": {},
        "spacy_hs.RecurrentContext.v1": {
            "n_words": 10,
            "width": 4,
            "hidden_width": 3,
            "dropout": 0.0,
        },
    }
    context = {
        "@architectures": "spacy_hs.LogBilinearContext.v1",
        "context_size": 3,
        "width": 8,
        "diagonal": True,
    }
    ngram = {"@architectures": "spacy_hs.HashedNgram.v1", "orders": 2, "table_size": 1000}
    settings["spacy_hs.LogBilinearHead.v1"] = {"context": context}
    settings["spacy_hs.HashedNgramHead.v1"] = {"context": context, "ngram": ngram}
    assert set(settings) == set(names)
    for name in names:
        model = build_model({"@architectures": name, **settings[name]})
        assert isinstance(model, Model)
        made = spacy.registry.resolve({"m": {"@architectures": name, **settings[name]}})["m"]
        assert isinstance(made, Model) and made.name == model.name
    cbow = build_model({"@architectures": "spacy_hs.CBOWHead.v1", "context": cbow_context})
    assert [cbow.get_ref(ref).name for ref in ("context", "output")] == [
        "cbow_context",
        "tree_output",
    ]
    fresh = "import spacy; print(sorted(spacy.registry.architectures.get_all()))"
    listed = subprocess.run(
        [sys.executable, "-c", fresh], capture_output=True, text=True, timeout=300
    ).stdout
    assert all(repr(name) in listed for name in names)  # found without importing spacy_hs


def test_heads_are_composed_models_reached_by_refs(any_headed: HSModel) -> None:
    head = any_headed.trained_head
    refs = {"context", "output"} | ({"ngram"} if head.name == "ngram" else set())
    assert set(head.model.ref_names) == refs
    assert head.output_weights is head.model.get_ref("output").get_param("output_weights")
    assert head.context.get_dim("nV") == len(any_headed)
    assert head.context.attrs["context_size"] == head.context_size == 3


@pytest.mark.parametrize("context", CONTEXTS)
def test_node_logits_are_the_model_forward(any_headed: HSModel, context: list[str]) -> None:
    """The Model's forward (what the queries' kernels compute from its params) gives the
    oracle's logits of every inner node."""
    model = any_headed
    ids = model.context_ids([context], model.trained_head.context_size + 2)
    np.testing.assert_allclose(
        model.trained_head.model.predict(ids)[0],
        oracle_logits(model, context),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("context", CONTEXTS)
def test_queries_are_exact(any_headed: HSModel, context: list[str]) -> None:
    """log_prob, top_k and the whole distribution against brute force over the vocabulary."""
    model = any_headed
    brute = brute_force(model, oracle_logits(model, context))
    distribution = model.probabilities_next(context)
    assert distribution.sum() == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(np.log(distribution), brute, rtol=1e-5, atol=1e-5)
    expected = np.argsort(-brute, kind="stable")[:25]
    found = model.predict_next(context, top_k=25)
    assert [w for w, _ in found] == [model.words[i] for i in expected]
    np.testing.assert_allclose([p for _, p in found], np.exp(brute[expected]), rtol=1e-5)
    for word in (found[0][0], found[7][0], model.words[-1]):
        assert model.log_prob_next(word, context) == pytest.approx(
            brute[model.key_to_index[word]], rel=1e-5, abs=1e-6
        )


def test_log_prob_stream_is_the_batch_api(any_headed: HSModel, lee_path: Path) -> None:
    lines = [line.split() for line in lee_path.read_text(encoding="utf8").splitlines()[:30]]
    lines = [[*line[:12], "zzqx", *line[12:20]] for line in lines if line]
    stream = any_headed.log_prob_stream(lines, cache=None)
    contexts = [line[:t] for line in lines for t in range(len(line))]
    words = [w for line in lines for w in line]
    np.testing.assert_array_equal(stream, any_headed.log_prob_next_batch(words, contexts))
    assert np.isnan(stream[[w == "zzqx" for w in words]]).all()  # no <unk> in Lee
    cbow = any_headed.log_prob_stream(lines, head="cbow", cache=None)
    assert np.isnan(cbow[0]) and np.isfinite(cbow[1])  # no sentence start for CBOW


def test_matrix_forms_equal_the_list_form(any_headed: HSModel) -> None:
    """A context matrix gives what the list form gives for the same words, whether padding is
    on the left (the component's) or anywhere in the row."""
    model, head = any_headed, any_headed.trained_head
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(model), (40, 6)).astype(np.int32)
    rows[rng.random(rows.shape) < 0.3] = -1
    lists = [[i for i in row if i >= 0] for row in rows.tolist()]
    targets = rng.integers(0, len(model), 40).astype(np.int32)
    expected = model.log_prob_next_batch(targets.tolist(), lists)
    np.testing.assert_array_equal(head.log_prob(rows, targets), expected)
    ids, _ = head.top_k(rows, 5)
    assert ids.tolist() == [
        [model.key_to_index[w] for w, _ in r] for r in model.predict_next_batch(lists, 5)
    ]
    targets[::2] = -1
    assert np.isnan(head.log_prob(rows, targets)[::2]).all()


def test_predictor_without_head_errors(hs_model: HSModel) -> None:
    assert hs_model.trained_head is None
    with pytest.raises(ValueError, match="no 'directional' next-word head.*auto, cbow"):
        hs_model.head("directional")
    with pytest.raises(ValueError, match="no 'ngram' next-word head"):
        hs_model.predict_next(["the"], head="ngram")
    with pytest.raises(ValueError, match="Unknown head 'bogus'"):
        hs_model.predict_next(["the"], head="bogus")
    assert hs_model.head("auto").name == "cbow"


def test_a_generic_head_builds_its_architecture_and_checks_its_arrays(hs_model: HSModel) -> None:
    """``spacy_hs.TreeHead.v1``: any context architecture, chained with the HS model's output
    weights (or its own); arrays that do not fit the layers' shapes are refused."""
    config = {
        "name": "mean_of_four",
        "model": {"@architectures": "spacy_hs.CBOWContext.v1", "window": 4},
    }
    head = TreeHead.from_config(config, hs_model)
    assert head.config == {
        **config,
        "architecture": "spacy_hs.TreeHead.v1",
        "output_weights": "hs_model",
    }
    assert head.to_arrays() == {}  # the vectors and weights are the HS model's
    assert head.output_weights is hs_model.inner_node_weights
    contexts = hs_model.context_ids([["the", "fire"], ["police", "said", "the"]], 4)
    cbow = hs_model.head("cbow")
    np.testing.assert_array_equal(head.top_k(contexts, 5)[0], cbow.top_k(contexts, 5)[0])
    own = TreeHead.from_config({**config, "output_weights": "own"}, hs_model)
    assert set(own.to_arrays()) == {"output_weights"}
    with pytest.raises(ValueError, match="output_weights is None"):
        TreeHead.from_config({**config, "output_weights": "own"}, hs_model, {})
    with pytest.raises(ValueError, match="cannot build spacy_hs.CBOWContext.v1: .*window"):
        TreeHead.from_config({"model": {"@architectures": "spacy_hs.CBOWContext.v1"}}, hs_model)
    with pytest.raises(ValueError, match="cannot build Bogus.v1"):
        TreeHead.from_config({"model": {"@architectures": "Bogus.v1"}}, hs_model)
    assert registry.heads.get("spacy_hs.TreeHead.v1") is TreeHead
    assert {"cbow", "directional", "ngram"} <= set(registered_head_names())
    assert "" not in registered_head_names()  # the generic head's name is in its config


# -- serialization ------------------------------------------------------------------------------


def assert_same_predictions(a: HSModel, b: HSModel) -> None:
    assert b.trained_head is not None and b.trained_head.config == a.trained_head.config
    for name, array in a.trained_head.to_arrays().items():
        np.testing.assert_array_equal(b.trained_head.to_arrays()[name], array)
    assert b.predict_next_batch(CONTEXTS, top_k=10) == a.predict_next_batch(CONTEXTS, top_k=10)
    words = ["the", "minister", "said", "the", "a", "of"]
    np.testing.assert_array_equal(
        b.log_prob_next_batch(words, CONTEXTS), a.log_prob_next_batch(words, CONTEXTS)
    )
    assert b.meta["head"].keys() == a.meta["head"].keys()
    assert b.meta["head"]["best_epoch"] == a.meta["head"]["best_epoch"]


def test_round_trip_disk(any_headed: HSModel, tmp_path: Path) -> None:
    any_headed.to_disk(tmp_path / "model")
    assert (tmp_path / "model" / "head.output_weights.npy").exists()
    config = srsly.read_json(tmp_path / "model" / "meta.json")["head"]
    assert config["model"]["context"]["context_size"] == 3
    assert_same_predictions(any_headed, HSModel.from_disk(tmp_path / "model"))


def test_round_trip_bytes(any_headed: HSModel) -> None:
    assert_same_predictions(any_headed, HSModel.from_bytes(any_headed.to_bytes()))


def test_model_without_head_stores_no_head_files(hs_model: HSModel, tmp_path: Path) -> None:
    hs_model.to_disk(tmp_path / "model")
    assert not list((tmp_path / "model").glob("head.*"))
    assert HSModel.from_disk(tmp_path / "model").trained_head is None


@pytest.fixture
def saved(headed: HSModel, tmp_path: Path) -> Path:
    headed.to_disk(tmp_path / "model")
    return tmp_path / "model"


def test_missing_head_file_errors(saved: Path) -> None:
    (saved / "head.position_weights.npy").unlink()
    with pytest.raises(MissingModelFileError, match=r"Missing model file .*head\.position_weights"):
        HSModel.from_disk(saved)


def test_corrupt_head_file_errors(saved: Path) -> None:
    file = saved / "head.output_weights.npy"
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"head\.output_weights"):
        HSModel.from_disk(saved)


def test_head_config_mismatch_errors(saved: Path, tmp_path: Path) -> None:
    header = srsly.read_json(saved / "meta.json")
    header["head"]["model"]["context"]["context_size"] = 4  # the position weights are (3, d)
    srsly.write_json(saved / "meta.json", header)
    with pytest.raises(ModelFileError, match="directional head that cannot be loaded"):
        HSModel.from_disk(saved)
    other = tmp_path / "other"
    shutil.copytree(saved, other)
    header["head"]["model"]["context"]["context_size"] = 3
    header["head"]["architecture"] = "Other.v9"
    srsly.write_json(other / "meta.json", header)
    with pytest.raises(ModelFileError, match="unknown head architecture 'Other.v9'"):
        HSModel.from_disk(other)


def test_corrupt_head_bytes_error(headed: HSModel) -> None:
    msg = srsly.msgpack_loads(headed.to_bytes())
    del msg["arrays"]["head.hidden_bias"]
    with pytest.raises(ModelFileError, match=r"head\.hidden_bias"):
        HSModel.from_bytes(srsly.msgpack_dumps(msg))
