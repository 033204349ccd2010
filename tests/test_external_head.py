"""A head whose thinc architecture is registered outside spacy_hs (``external_head.py``, in
spaCy's ``architectures`` registry) is saved with a model, restored by name and used everywhere
without editing spacy_hs: HSModel's queries, the component's attributes, ``spacy-hs predict``,
``evaluate`` and ``render``."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
from external_head import ARCHITECTURE, NAME, bigram_head, brute_force_log_probs

from spacy_hs import HSModel
from spacy_hs.errors import ModelFileError
from spacy_hs.heads.base import TreeHead

TESTS = Path(__file__).parent
TEXT = "The fire moved towards the town. Police said the man was arrested"
# The CLI in a subprocess, with the external head's module imported first, as a package that
# registers a head would be (by an import or an entry point).
CLI = "import external_head; from spacy_hs.cli import main; main()"


@pytest.fixture(scope="module")
def model_dir(normalized_model: HSModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model (gensim on the Lee corpus) with the external head attached, saved."""
    model = HSModel.from_bytes(normalized_model.to_bytes())
    model.trained_head = bigram_head(model)
    path = tmp_path_factory.mktemp("external") / "model"
    model.to_disk(path)
    return path


@pytest.fixture(scope="module")
def model(model_dir: Path) -> HSModel:
    return HSModel.from_disk(model_dir)


@pytest.fixture(scope="module")
def heldout(normalized_token_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = normalized_token_file.read_text(encoding="utf8").splitlines()[:300]
    path = tmp_path_factory.mktemp("heldout") / "heldout.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def run_cli(*args: object) -> subprocess.CompletedProcess:
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        # Wide and plain output, as conftest's CliRun: nothing wraps a line.
        "COLUMNS": "4000",
        "TERMINAL_WIDTH": "4000",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def word_ids(model: HSModel, words: list[str]) -> list[int]:
    return [model.key_to_index[w] for w in words if w in model]


# -- the model ---------------------------------------------------------------------------------


def test_saved_and_restored_by_its_registered_name(model: HSModel, model_dir: Path) -> None:
    assert isinstance(model.trained_head, TreeHead) and model.trained_head.name == NAME
    header = srsly.read_json(model_dir / "meta.json")
    assert header["head"]["architecture"] == "spacy_hs.TreeHead.v1"
    assert header["head"]["model"]["@architectures"] == ARCHITECTURE
    assert header["head"]["output_weights"] == "hs_model"
    assert not (model_dir / "head.output_weights.npy").exists()  # the HS model's own
    assert model.head_names() == ["auto", "cbow", NAME]
    assert model.head("auto") is model.trained_head is model.head(NAME)
    original = HSModel.from_bytes(model.to_bytes()).trained_head
    name = "previous_vectors"
    np.testing.assert_array_equal(
        original.context.get_param(name), model.trained_head.context.get_param(name)
    )


def test_queries_are_exact_against_brute_force(model: HSModel) -> None:
    head = model.trained_head
    for context in (["the", "fire"], [], ["zzqx"], ["police", "said", "zzqx"]):
        ids = word_ids(model, context)
        expected = brute_force_log_probs(head, ids[-1] if ids else None)
        probs = model.probabilities_next(context, head=NAME)
        assert probs.sum() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(np.log(probs), expected, rtol=1e-4, atol=1e-5)
        top = model.predict_next(context, top_k=10, head=NAME)
        assert [w for w, _ in top] == [model.words[i] for i in np.argsort(-expected)[:10]]
        best = np.exp(np.sort(expected)[::-1][:10])
        np.testing.assert_allclose([p for _, p in top], best, rtol=1e-4)
        word = model.words[int(np.argsort(-expected)[3])]
        assert model.log_prob_next(word, context, head=NAME) == pytest.approx(
            expected[model.key_to_index[word]], rel=1e-4
        )


def test_a_model_with_it_needs_the_registration(model_dir: Path) -> None:
    """Without the module that registers it, loading fails and names the architecture."""
    load = f"from spacy_hs import HSModel; HSModel.from_disk({str(model_dir)!r})"
    result = subprocess.run(
        [sys.executable, "-c", load],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert ModelFileError.__name__ in result.stderr and ARCHITECTURE in result.stderr


# -- the component -----------------------------------------------------------------------------


@pytest.mark.parametrize("head", [NAME, "auto"])
def test_component_attributes(model_dir: Path, model: HSModel, head: str) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    component = nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir), "head": head})
    assert component.head.name == NAME
    doc = nlp(TEXT)
    scored = 0
    for sentence in doc.sents:
        previous = None  # the last known word before the token, in its sentence
        for token in sentence:
            word = component.normal_form(token.lex)
            if word not in model:
                assert token._.hs_logprob is None
                continue
            expected = brute_force_log_probs(model.trained_head, previous)[model.key_to_index[word]]
            assert token._.hs_logprob == pytest.approx(expected, rel=1e-4)  # first words too
            scored += 1
            previous = model.key_to_index[word]
    assert scored > 10
    log_probs = [t._.hs_logprob for t in doc if t._.hs_logprob is not None]
    assert doc._.hs_perplexity == pytest.approx(math.exp(-sum(log_probs) / len(log_probs)))
    last = list(doc.sents)[-1]
    context = [component.normal_form(t.lex) for t in last]
    assert doc._.hs_next == model.predict_next([w for w in context if w], 10, head=NAME)
    token = doc[3]  # "towards": what follows it
    assert token._.hs_next == model.predict_next([component.normal_form(token.lex)], 10, head=NAME)


def test_component_rejects_a_head_the_model_lacks(model_dir: Path) -> None:
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=re.escape(f"(auto, cbow, {NAME}), got 'left'")):
        nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir), "head": "left"})


def test_pipeline_round_trip(model_dir: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir), "head": NAME})
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    a, b = nlp(TEXT), loaded(TEXT)
    assert [t._.hs_logprob for t in a] == [t._.hs_logprob for t in b]
    assert a._.hs_next == b._.hs_next


# -- the command line (a subprocess that imports the head's module) ----------------------------


def test_cli_predict(model_dir: Path, model: HSModel) -> None:
    result = run_cli("predict", model_dir, "Police said the", "--head", NAME, "-k", 5)
    assert result.returncode == 0, result.stderr
    expected = model.predict_next(["police", "said", "the"], 5, head=NAME)
    assert expected and expected != model.predict_next(["police", "said", "the"], 5, head="cbow")
    for word, prob in expected:
        assert re.search(rf"\b{re.escape(word)}\s+{prob:.4f}\b", result.stdout), result.stdout
    bad = run_cli("predict", model_dir, "Police said the", "--head", "left")
    assert bad.returncode != 0 and f"auto, cbow, {NAME}" in " ".join(bad.stdout.split())


def test_cli_evaluate(model_dir: Path, model: HSModel, heldout: Path, tmp_path: Path) -> None:
    output = tmp_path / "metrics.json"
    result = run_cli(
        "evaluate", model_dir, "--heldout", heldout, "--output", output, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert f"HS {NAME} head" in result.stdout
    metrics = srsly.read_json(output)
    assert metrics["model"]["head"] == NAME
    predictors = metrics["next_word"]["predictors"]
    assert set(predictors) == {"cbow", NAME, "unigram", "gensim_predict_output_word"}
    # Independently: every known word with a known word before it in its line, from that word.
    contexts, targets, firsts = [], [], []
    for line in heldout.read_text(encoding="utf8").splitlines():
        known = [w for w in line.split() if w in model]
        if known:
            firsts.append(known[0])
        contexts += [[w] for w in known[:-1]]
        targets += known[1:]
    log_probs = model.log_prob_next_batch(targets, contexts, head=NAME)
    top = model.predict_next_batch(contexts, 10, head=NAME)
    ours = predictors[NAME]
    assert ours["n_scored"] == len(targets) == metrics["next_word"]["n_scored"]
    assert ours["perplexity"] == pytest.approx(math.exp(-np.mean(log_probs)), rel=1e-6)
    assert ours["hit_at_1"] == pytest.approx(np.mean([t[0][0] == w for t, w in zip(top, targets)]))
    assert ours["context_size"] == 1
    every = ours["with_sentence_starts"]
    start_log_probs = model.log_prob_next_batch(firsts, [[] for _ in firsts], head=NAME)
    assert every["n_scored"] == len(targets) + len(firsts)
    expected = math.exp(-np.mean(np.concatenate([log_probs, start_log_probs])))
    assert every["perplexity"] == pytest.approx(expected, rel=1e-6)


def test_cli_render(model_dir: Path, model: HSModel, tmp_path: Path) -> None:
    output = tmp_path / "view.html"
    result = run_cli("render", model_dir, "--text", TEXT, "-o", output)
    assert result.returncode == 0, result.stderr
    page = output.read_text(encoding="utf8")
    assert f"{NAME} head" in page
    # The same numbers as the component in this process, with the head the model names.
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    component = nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    doc = nlp(TEXT)
    spans = re.findall(r'data-rank="(\d*)" data-logprob="([^"]*)"', page)
    assert len(spans) == len(doc)
    for token, (rank, log_prob) in zip(doc, spans):
        if token._.hs_logprob is None:
            assert rank == "" and log_prob == ""
            continue
        assert float(log_prob) == pytest.approx(token._.hs_logprob, abs=1e-4)
        word = model.key_to_index[component.normal_form(token.lex)]
        context = component.token_contexts(doc)[token.i]
        previous = int(context[-1]) if context[-1] >= 0 else None
        brute = brute_force_log_probs(model.trained_head, previous)
        assert int(rank) == 1 + int(np.count_nonzero(brute > brute[word] + 1e-9))
