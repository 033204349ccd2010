"""The recurrent head (heads/recurrent.py) and its training (training/recurrent.py): the stream
against a step-by-step NumPy oracle, exact top-k, the state walking forward, saving and loading
with bounded shapes, the config. A small head trained on the Lee corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from test_component import STORIES

from spacy_hs import HSModel, _tree_search
from spacy_hs.document import Document
from spacy_hs.errors import ConfigError, ModelFileError
from spacy_hs.heads.recurrent import RecurrentHead
from spacy_hs.training.config import load_config
from spacy_hs.training.head import attach_head
from spacy_hs.training.recurrent import train_recurrent_head

ORDERS = 2


@pytest.fixture(scope="module")
def recurrent_model(normalized_model: HSModel, normalized_token_file: Path) -> HSModel:
    model = HSModel.from_bytes(normalized_model.to_bytes())
    head = train_recurrent_head(
        model,
        normalized_token_file,
        epochs=2,
        hidden_width=12,
        batch_size=8,
        bptt=10,
        ngram_orders=ORDERS,
        table_size=1 << 16,
        progress=False,
    )
    attach_head(model, head, export_fine_tuned_vectors=False)
    return model


@pytest.fixture(scope="module")
def document(normalized_token_file: Path) -> list[list[str]]:
    lines = normalized_token_file.read_text(encoding="utf8").splitlines()[:30]
    return [line.split() for line in lines]


def oracle_log_probs(model: HSModel, sentences: list[list[str]]) -> np.ndarray:
    """Every token's log-probability, one token at a time in float64: the LSTM's state walks
    over the document (across sentences), the n-gram features read the sentence."""
    head = model.trained_head
    a = {k: v.astype(np.float64) for k, v in head.arrays.items()}
    units = head.hidden_width
    h, c = np.zeros(units), np.zeros(units)
    tree, out = model.tree, []
    for sentence in sentences:
        history: list[int] = []
        for word in sentence:
            target = model.key_to_index.get(word, -1)
            hidden = np.append(h, 1.0)
            recent = (history[::-1] + [len(model)] * ORDERS)[:ORDERS]
            bases = _tree_search.ngram_bases_matrix(
                np.array([recent], np.int32), ORDERS, len(model), head.modulus
            )[0]
            if target < 0:
                out.append(np.nan)
            else:
                path = slice(tree.path_offsets[target], tree.path_offsets[target + 1])
                total = 0.0
                for node, code in zip(tree.path_nodes[path], tree.path_codes[path]):
                    logit = hidden @ a["output_weights"][node]
                    logit += sum(float(head.table[b + node]) for b in bases if b >= 0)
                    margin = logit * (1 - 2 * int(code))
                    total += -np.logaddexp(0.0, -margin)
                out.append(total)
                z = a["embeddings"][target] @ a["lstm_input_weights"]
                z += h @ a["lstm_hidden_weights"] + a["lstm_bias"]
                f, i, o = (1 / (1 + np.exp(-z[k * units : (k + 1) * units])) for k in range(3))
                c = f * c + i * np.tanh(z[3 * units :])
                h = o * np.tanh(c)
                history.append(target)
    return np.array(out)


def test_stream_is_the_step_by_step_oracle(
    recurrent_model: HSModel, document: list[list[str]]
) -> None:
    found = recurrent_model.log_prob_stream(document, cache=None, unknown=None)
    expected = oracle_log_probs(recurrent_model, document)
    assert np.isnan(found).sum() == np.isnan(expected).sum() > 0  # unknown words
    np.testing.assert_allclose(found, expected, atol=1e-5)


def test_the_state_walks_forward(recurrent_model: HSModel) -> None:
    head = recurrent_model.trained_head
    ids = np.arange(40, dtype=np.int32) % len(recurrent_model)
    whole, final = head.walk(head.initial_state(), ids)
    first, middle = head.walk(head.initial_state(), ids[:15])
    second, final_again = head.walk(middle, ids[15:])
    np.testing.assert_allclose(np.concatenate([first[:-1], second]), whole, atol=1e-6)
    np.testing.assert_allclose(final_again[0], final[0], atol=1e-6)


def test_a_document_carries_the_state(recurrent_model: HSModel) -> None:
    """Two documents read one after the other, the first's final state passed on, score as
    one document."""
    ids = (np.arange(30, dtype=np.int32) * 7) % len(recurrent_model)
    whole = recurrent_model.document(ids, [12, 18], cache=None)  # the state crosses sentences
    first = recurrent_model.document(ids[:12], [12], cache=None)
    second = Document(
        ids[12:],
        [18],
        recurrent_model.trained_head,
        n_words=len(recurrent_model),
        state=first.final_state,
    )
    np.testing.assert_allclose(second.log_probs(), whole.log_probs()[12:], atol=1e-6)


@pytest.mark.parametrize("cache", [None, {"size": 50, "weight": 0.2}])
def test_top_k_is_a_full_sort(
    recurrent_model: HSModel, document: list[list[str]], cache: dict | None
) -> None:
    ids = [recurrent_model.key_to_index.get(w, -1) for s in document[:5] for w in s]
    lengths = [len(s) for s in document[:5]]
    doc = recurrent_model.document(np.array(ids, np.int32), lengths, cache=cache)
    # From position 2 with the cache: where it is still empty, main's compiled mixed search
    # scales the head by 1 - weight (fixed on the core-stream branch).
    positions = np.arange(0 if cache is None else 2, len(ids), 7)
    with np.errstate(divide="ignore"):
        distribution = doc.log_probabilities_at(positions)
    np.testing.assert_allclose(np.exp(distribution).sum(axis=1), 1.0, atol=1e-6)
    top_ids, top_log_probs = doc.top_k_at(positions, 10)
    order = np.argsort(-distribution, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(
        top_log_probs, np.take_along_axis(distribution, order, axis=1), atol=1e-9
    )
    np.testing.assert_allclose(
        np.take_along_axis(distribution, top_ids, axis=1), top_log_probs, atol=1e-9
    )
    # The scored token's log-probability is the one its slot's distribution gives it.
    scored = doc.log_probs()[positions]
    targets = np.array(ids)[positions]
    known = targets >= 0
    np.testing.assert_allclose(distribution[known, targets[known]], scored[known], atol=1e-9)


def test_plain_contexts_read_from_the_initial_state(recurrent_model: HSModel) -> None:
    """Asked with a context (no stream), the head reads it from the start: the same as the
    stream of those words."""
    words = ["the", "government", "said"]
    ids = recurrent_model.word_ids(words)
    head = recurrent_model.trained_head
    stream = head.stream(np.array(ids, np.int32))
    contexts = stream.contexts(np.zeros(1), np.array([3]))
    found = recurrent_model.predict_next(words, 5)
    top_ids, top_log_probs = stream.top_k(contexts, 5)
    assert [w for w, _ in found] == [recurrent_model.words[i] for i in top_ids[0]]
    np.testing.assert_allclose([p for _, p in found], np.exp(top_log_probs[0]), rtol=1e-6)


def test_saved_and_loaded(recurrent_model: HSModel, document, tmp_path: Path) -> None:
    recurrent_model.to_disk(tmp_path / "model")
    loaded = HSModel.from_disk(tmp_path / "model")
    assert isinstance(loaded.trained_head, RecurrentHead)
    np.testing.assert_array_equal(
        loaded.log_prob_stream(document), recurrent_model.log_prob_stream(document)
    )
    assert not list((tmp_path / "model").glob("*.pkl"))


def test_unbounded_shapes_are_refused_before_reading(
    recurrent_model: HSModel, tmp_path: Path
) -> None:
    recurrent_model.to_disk(tmp_path / "model")
    meta_path = tmp_path / "model" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["head"]["hidden_width"] = 10**6
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="hidden_width"):
        HSModel.from_disk(tmp_path / "model")


def test_training_recorded_and_cache_tuned(recurrent_model: HSModel) -> None:
    history = recurrent_model.meta["head"]
    epochs = history["epochs"]
    assert epochs[-1]["train_perplexity"] < epochs[0]["train_perplexity"]
    assert history["best_heldout_perplexity"] == min(e["heldout_perplexity"] for e in epochs)
    assert history["cache"]["heldout_perplexity_without"] == pytest.approx(
        history["best_heldout_perplexity"], rel=1e-3
    )


def test_config_is_validated() -> None:
    head = {"@settings": "spacy_hs.recurrent_head.v1"}
    config = load_config({"head": {**head, "hidden_width": 64}})
    assert config["head"]["bptt"] == 35
    with pytest.raises(ConfigError, match="hidden_widht"):
        load_config({"head": {**head, "hidden_widht": 64}})
    with pytest.raises(ConfigError, match="dropout"):
        load_config({"head": {**head, "dropout": 1.5}})
    with pytest.raises(ConfigError, match="ngram_orders"):
        load_config({"head": {**head, "ngram_orders": 9, "context_size": 4}})


def test_pipeline_agrees_with_the_stream(recurrent_model: HSModel) -> None:
    """Each Doc is its own stream: hs_logprob is log_prob_stream of the doc (with the saved
    cache), in one process or two; Doc._.hs_next and the whole doc's Span._.hs_next both
    come from the state after the last token."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"set_vectors": False}).set_model(recurrent_model)
    component = nlp.get_pipe("hs_predictor")
    docs = list(nlp.pipe(STORIES, batch_size=2))
    for doc in docs:
        sentences = [
            [w for w in map(component.normal_form, (t.lex for t in sent)) if w is not None]
            for sent in doc.sents
        ]
        expected = recurrent_model.log_prob_stream(sentences) if len(doc) else np.zeros(0)
        found = [t._.hs_logprob for t in doc if component.normal_form(t.lex) is not None]
        np.testing.assert_allclose([np.nan if x is None else x for x in found], expected, rtol=1e-9)
        if len(doc):
            assert doc[0 : len(doc)]._.hs_next == doc._.hs_next
    single = [_values(doc) for doc in docs]
    multi = [_values(doc) for doc in nlp.pipe(STORIES, batch_size=2, n_process=2)]
    assert multi == single


def _values(doc) -> tuple:
    return (
        [t._.hs_logprob for t in doc],
        doc._.hs_next,
        doc._.hs_perplexity,
        [t._.hs_next for t in doc],
    )


def test_spacy_hs_train_selects_it_by_the_config(lee_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "recurrent.cfg"
    config.write_text(
        "[word2vec]\nvector_size = 16\nmin_count = 3\nepochs = 1\nworkers = 1\n"
        '[head]\n@settings = "spacy_hs.recurrent_head.v1"\nhidden_width = 8\nepochs = 1\n'
        "batch_size = 4\nbptt = 8\nngram_orders = 0\ntune_cache = false\n",
        encoding="utf8",
    )
    result = run_cli("train", lee_path, tmp_path / "out", "--config", config)
    assert result.exit_code == 0, result.output
    assert "Training the recurrent next-word head" in result.output
    model = HSModel.from_disk(tmp_path / "out" / "hs_model")
    assert isinstance(model.trained_head, RecurrentHead) and model.trained_head.orders == 0
    assert model.meta["config"]["head"]["@settings"] == "spacy_hs.recurrent_head.v1"
    assert np.isfinite(model.log_prob_stream([["the", "fire"]], cache=None)).all()


def test_predict_evaluate_and_render_work_with_it(
    recurrent_model: HSModel, document: list[list[str]], tmp_path: Path
) -> None:
    """The CLI's readers of a model (predict, evaluate, render) answer with the recurrent head
    as with any other: predict's probabilities are the head's top-k, evaluate scores every
    held-out token, render writes a page coloured by the stream's values."""
    model_dir = tmp_path / "model"
    recurrent_model.to_disk(model_dir)
    context = document[0][:4]
    result = run_cli("predict", model_dir, " ".join(context), "--top-k", "3", "--cache", "off")
    assert result.exit_code == 0, result.output
    expected = recurrent_model.predict_next(context, top_k=3)
    assert expected and all(word in result.output for word, _ in expected)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("".join(" ".join(s) + "\n" for s in document), encoding="utf8")
    metrics = tmp_path / "metrics.json"
    result = run_cli(
        "evaluate", model_dir, "--heldout", heldout, "--no-vectors", "-o", metrics, "--no-progress"
    )
    assert result.exit_code == 0, result.output
    written = json.loads(metrics.read_text(encoding="utf8"))
    assert "recurrent" in json.dumps(written) and '"perplexity"' in json.dumps(written)
    page = tmp_path / "view.html"
    text = tmp_path / "text.txt"
    text.write_text(" ".join(document[1]), encoding="utf8")
    result = run_cli("render", model_dir, text, "-o", page, "--cache", "off")
    assert result.exit_code == 0, result.output
    assert page.read_text(encoding="utf8").count(document[1][-1]) >= 1
