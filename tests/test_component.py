"""The hs_predictor component: attributes against HSModel, serialization, multiprocessing,
DocBin, two pipelines, bad inputs. Real spaCy, models trained on the Lee corpus."""

from __future__ import annotations

import copy
import json
import logging
import math
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from thinc.api import Config

from spacy_hs import HSModel
from spacy_hs.errors import ConfigError, ModelFileError, PipelineError
from spacy_hs.heads.base import TreeHead
from spacy_hs.heads.cbow import hidden_from_ids
from spacy_hs.pipeline.component import (
    DATA_KEY,
    HSPredictor,
)

TEXTS = [
    "Hundreds of people have been forced to vacate their homes. The fire moved towards the town",
    "The Australian Government said it would send troops to the area.",
    "Police said the man was arrested",
    "Israeli security forces killed two Palestinians in the West Bank on Tuesday.",
]


def known(model: HSModel, tokens) -> list[str]:
    return [t.text for t in tokens if t.text in model]


def expected_log_prob(model: HSModel, token) -> float | None:
    """Reference: score the token given the known words before it in its sentence."""
    context = known(model, token.doc[token.sent.start : token.i])
    if token.text not in model or not context:
        return None
    return model.log_prob_next(token.text, context, head="cbow")


def assert_pairs(got: list, expected: list) -> None:
    """Same words in the same order, probabilities equal to float precision."""
    assert [w for w, _ in got] == [w for w, _ in expected]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in expected], rtol=1e-6)


def values(doc: Doc) -> dict:
    return {
        "next": doc._.hs_next,
        "perplexity": doc._.hs_perplexity,
        "log_probs": [t._.hs_logprob for t in doc],
        "token_next": [t._.hs_next for t in doc],
    }


def assert_same_values(a: dict, b: dict) -> None:
    assert [w for w, _ in a["next"]] == [w for w, _ in b["next"]]
    np.testing.assert_allclose([p for _, p in a["next"]], [p for _, p in b["next"]], rtol=1e-6)
    if a["perplexity"] is None:
        assert b["perplexity"] is None
    else:
        assert b["perplexity"] == pytest.approx(a["perplexity"], rel=1e-9)
    assert [v is None for v in a["log_probs"]] == [v is None for v in b["log_probs"]]
    for x, y in zip(a["log_probs"], b["log_probs"]):
        if x is not None:
            assert y == pytest.approx(x, rel=1e-9)
    assert [[w for w, _ in n] for n in a["token_next"]] == [
        [w for w, _ in n] for n in b["token_next"]
    ]


# -- attributes --------------------------------------------------------------------------------


def test_token_log_probs_match_hs_model(nlp: spacy.Language, hs_model: HSModel) -> None:
    doc = nlp(TEXTS[0])
    assert len(list(doc.sents)) == 2
    n_scored = 0
    for token in doc:
        expected = expected_log_prob(hs_model, token)
        if expected is None:
            assert token._.hs_logprob is None, token.text
        else:
            assert token._.hs_logprob == pytest.approx(expected, rel=1e-6), token.text
            n_scored += 1
    assert n_scored >= 10
    # The first word of each sentence has no context: none crosses the sentence boundary.
    second = list(doc.sents)[1]
    assert doc[0]._.hs_logprob is None and second[0]._.hs_logprob is None
    # Out-of-vocabulary tokens are unscorable and skipped in the contexts of later tokens.
    oov = [t for t in doc if t.text not in hs_model]
    assert oov and all(t._.hs_logprob is None for t in oov)


def test_perplexity_is_over_scorable_tokens(nlp: spacy.Language) -> None:
    doc = nlp(TEXTS[0])
    log_probs = [t._.hs_logprob for t in doc if t._.hs_logprob is not None]
    assert doc._.hs_perplexity == pytest.approx(math.exp(-sum(log_probs) / len(log_probs)))
    assert 1 < doc._.hs_perplexity < len(nlp.get_pipe("hs_predictor").model)


def test_doc_span_token_next_match_hs_model(nlp: spacy.Language, hs_model: HSModel) -> None:
    doc = nlp(TEXTS[0])
    last = list(doc.sents)[-1]
    expected = hs_model.predict_next(known(hs_model, last), top_k=10, head="cbow")
    assert len(doc._.hs_next) == 10
    assert [w for w, _ in doc._.hs_next] == [w for w, _ in expected]
    np.testing.assert_allclose([p for _, p in doc._.hs_next], [p for _, p in expected], rtol=1e-6)
    # Token: the words up to and including it; the top words are in descending order.
    token = doc[3]
    expected = hs_model.predict_next(known(hs_model, doc[: token.i + 1]), top_k=10, head="cbow")
    assert_pairs(token._.hs_next, expected)
    probs = [p for _, p in token._.hs_next]
    assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
    # Span: its own words only, not the words before it.
    span = doc[2:5]
    expected = hs_model.predict_next(known(hs_model, span), top_k=10, head="cbow")
    assert_pairs(span._.hs_next, expected)
    assert span._.hs_next != doc[4]._.hs_next
    # A token's context stops at its sentence start.
    token = last[2]
    expected = hs_model.predict_next(known(hs_model, last[:3]), top_k=10, head="cbow")
    assert_pairs(token._.hs_next, expected)


def test_vectors_are_copied_into_the_vocab(nlp: spacy.Language, hs_model: HSModel) -> None:
    assert nlp.vocab.vectors.shape == hs_model.vectors.shape
    doc = nlp("Police said the fire")
    for token in doc:
        np.testing.assert_array_equal(
            token.vector, hs_model.vectors[hs_model.key_to_index[token.text]]
        )
    other = nlp("Police said the bushfire")
    assert 0 < doc.similarity(other) <= 1


def test_normalized_model(normalized_model: HSModel, tmp_path: Path) -> None:
    """Tokens are normalised as the corpus was: lowercased, punctuation dropped, numbers <num>;
    vectors are found for any casing (Vectors.attr = LOWER)."""
    normalized_model.to_disk(tmp_path / "model")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"model_path": str(tmp_path / "model")})
    doc = nlp("The Government said, in 2001, that the United Nations")
    model = normalized_model
    assert "United" not in model and "united" in model
    assert nlp.vocab.vectors.attr == spacy.attrs.LOWER
    np.testing.assert_array_equal(doc[9].vector, model.vectors[model.key_to_index["united"]])
    assert doc[9].has_vector and nlp.vocab["UNITED"].has_vector
    # "," is dropped: unscorable and not in any context; "2001" is read as "<num>".
    assert doc[3]._.hs_logprob is None
    words = ["the", "government", "said", "in", "<num>", "that", "the", "united", "nations"]
    assert all(w in model for w in words)
    expected = model.log_prob_next("<num>", words[:4], head="cbow")
    assert doc[5]._.hs_logprob == pytest.approx(expected, rel=1e-6)
    expected = model.log_prob_next("united", words[:7], head="cbow")  # the last window of them
    assert doc[9]._.hs_logprob == pytest.approx(expected, rel=1e-6)
    assert_pairs(doc._.hs_next, model.predict_next(words, head="cbow"))


def test_context_size_setting(model_dir: Path, hs_model: HSModel) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir), "context_size": 1})
    doc = nlp("Police said the man was arrested")
    assert doc[4]._.hs_logprob == pytest.approx(hs_model.log_prob_next("was", ["man"]), rel=1e-6)
    assert_pairs(doc._.hs_next, hs_model.predict_next(["arrested"]))


def test_pipe_batches_equal_single_calls(nlp: spacy.Language) -> None:
    texts = TEXTS + ["", "zzqx"] + TEXTS[::-1]
    piped = [values(doc) for doc in nlp.pipe(texts, batch_size=3)]
    for text, got in zip(texts, piped):
        assert_same_values(values(nlp(text)), got)


class ListFormHead(TreeHead):
    """The CBOW head with its hidden vectors computed through its list form
    (``heads.cbow.hidden_from_ids``, one list per context) instead of the compiled matrix form;
    a head the model carries under a name of its own, which the component selects it by."""

    name = "list_form"
    predicts_sentence_start = False

    def __init__(self, model: HSModel) -> None:
        super().__init__(model.tree)
        self._model = model

    @property
    def context_size(self) -> int:
        return int(self._model.settings["window"])

    @property
    def output_weights(self) -> np.ndarray:
        return self._model.inner_node_weights

    @property
    def config(self) -> dict:
        return {"architecture": "tests.ListFormHead.v1"}

    def hidden(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lists = [[i for i in row if i >= 0][-self.context_size :] for row in context_ids.tolist()]
        return hidden_from_ids(self._model, lists)


def test_matrix_and_list_forms_give_the_same_values(hs_model: HSModel) -> None:
    """The eager values through the CBOW head's compiled matrix forms equal, bit for bit, those
    through its list form ``hidden_from_ids`` and HSModel's own batch API."""
    model = copy.copy(hs_model)
    model.trained_head = ListFormHead(hs_model)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    fast = HSPredictor(nlp.vocab, model=model, head="cbow", set_vectors=False)
    slow = HSPredictor(nlp.vocab, model=model, head="list_form", set_vectors=False)
    texts = [*TEXTS, "", "zzqx", "Police said. The the the the the the the the fire"]
    fast_docs = list(fast.pipe(nlp.pipe(texts), batch_size=4))
    slow_docs = list(slow.pipe(nlp.pipe(texts), batch_size=4))
    for a, b in zip(fast_docs, slow_docs):
        assert [t._.hs_logprob for t in a] == [t._.hs_logprob for t in b]
        assert a._.hs_next == b._.hs_next and a._.hs_perplexity == b._.hs_perplexity
    window = hs_model.settings["window"]
    for doc in fast_docs:
        tokens = [t for t in doc if t._.hs_logprob is not None]
        contexts = [known(hs_model, doc[t.sent.start : t.i])[-window:] for t in tokens]
        expected = hs_model.log_prob_next_batch([t.text for t in tokens], contexts, head="cbow")
        assert [t._.hs_logprob for t in tokens] == expected.tolist()
        for t in doc:  # None exactly where unknown or without a known word before it
            scorable = t.text in hs_model and known(hs_model, doc[t.sent.start : t.i])
            assert (t._.hs_logprob is not None) == bool(scorable)


def test_token_contexts_respect_sentence_starts(nlp: spacy.Language, hs_model: HSModel) -> None:
    """Each token's context (what its log-probability reads) is the last ``context_size`` known
    words before it in its sentence; the lazy per-position contexts agree."""
    component = nlp.get_pipe("hs_predictor")
    size = hs_model.settings["window"]
    doc = nlp(" ".join(TEXTS) + " Police said. The the the zzqx the the the fire, said")
    assert len(list(doc.sents)) > 3
    contexts = component.token_contexts(doc)
    assert contexts.shape == (len(doc), size)
    ids = [hs_model.key_to_index.get(component.normal_form(t.lex) or "", -1) for t in doc]
    for token in doc:
        expected = [i for i in ids[token.sent.start : token.i] if i >= 0][-size:]
        assert contexts[token.i].tolist() == [-1] * (size - len(expected)) + expected
        assert component.context_ids(doc, token.sent.start, token.i) == expected


def test_docs_without_sentences_use_the_whole_doc(model_dir: Path, hs_model: HSModel) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    doc = nlp(TEXTS[0])
    assert not doc.has_annotation("SENT_START")
    token = doc[11]  # "The", first word of the second sentence
    context = known(hs_model, doc[:11])
    assert token._.hs_logprob == pytest.approx(hs_model.log_prob_next("The", context), rel=1e-6)


def test_empty_and_unknown_text(nlp: spacy.Language) -> None:
    for text in ("", "   ", "zzqx qqzx xxqz", "zzqx. qqzx!"):
        doc = nlp(text)
        assert doc._.hs_next == []
        assert doc._.hs_perplexity is None
        assert all(t._.hs_logprob is None for t in doc)
        assert all(t._.hs_next == [] for t in doc)
        assert doc[:]._.hs_next == []
    # One known word: predictions after it, but nothing is scorable.
    doc = nlp("zzqx Police")
    assert doc._.hs_next and doc._.hs_perplexity is None


def test_eager_false_computes_on_access(model_dir: Path, nlp: spacy.Language) -> None:
    lazy = spacy.blank("en")
    lazy.add_pipe("sentencizer")
    lazy.add_pipe("hs_predictor", config={"model_path": str(model_dir), "eager": False})
    doc = lazy(TEXTS[0])
    assert set(doc.user_data[DATA_KEY]) == {"component", "orths"}
    cached = doc[1]._.hs_next
    assert_same_values(values(nlp(TEXTS[0])), values(doc))
    assert doc.user_data[DATA_KEY]["token_next"][1] == [list(p) for p in cached]


# -- bad input ---------------------------------------------------------------------------------


def test_no_model_says_how_to_give_one() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor")
    with pytest.raises(ValueError, match="has no model.*model_path.*from_disk"):
        nlp("some text")
    with pytest.raises(ValueError, match="has no model"):
        nlp.initialize()


def test_missing_model_path_is_reported_on_use(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor", config={"model_path": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match="nowhere.*does not exist"):
        nlp("some text")


def test_corrupt_model_directory(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    data = (broken / "vectors.npy").read_bytes()
    (broken / "vectors.npy").write_bytes(data[: len(data) // 2])
    nlp = spacy.blank("en")
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        nlp.add_pipe("hs_predictor", config={"model_path": str(broken)})
    (broken / "meta.json").write_text("{not json", encoding="utf8")
    component = nlp.add_pipe("hs_predictor", name="other")
    with pytest.raises(ModelFileError):
        component.from_disk(broken)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"context_size": 0}, "context_size must be a positive integer"),
        ({"head": "left"}, re.escape("head must be one of the model's heads (auto, cbow)")),
        ({"head": "directional"}, "has no 'directional' next-word head"),
    ],
)
def test_bad_settings(model_dir: Path, config: dict, match: str) -> None:
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir), **config})


def test_language_mismatch_warns(normalized_model: HSModel) -> None:
    nlp = spacy.blank("de")
    component = nlp.add_pipe("hs_predictor")
    with pytest.warns(UserWarning, match="trained on 'en' text"):
        component.set_model(normalized_model)


# -- loading, saving, serialization -------------------------------------------------------------


def test_save_and_load_without_the_model_directory(
    hs_model: HSModel, tmp_path: Path, nlp: spacy.Language
) -> None:
    model_dir = tmp_path / "model"
    hs_model.to_disk(model_dir)
    source = spacy.blank("en")
    source.add_pipe("sentencizer")
    source.add_pipe("hs_predictor", config={"model_path": str(model_dir), "top_k": 5})
    expected = values(source(TEXTS[0]))
    source.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "hs_predictor" / "model" / "meta.json").exists()
    shutil.rmtree(model_dir)
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("hs_predictor").top_k == 5
    assert_same_values(expected, values(loaded(TEXTS[0])))
    assert loaded.vocab.vectors.shape == hs_model.vectors.shape
    np.testing.assert_array_equal(loaded.vocab["Police"].vector, nlp.vocab["Police"].vector)


def test_to_bytes_round_trip(nlp: spacy.Language) -> None:
    copy = spacy.blank("en")
    copy.add_pipe("sentencizer")
    copy.add_pipe("hs_predictor")
    copy.from_bytes(nlp.to_bytes())
    assert_same_values(values(nlp(TEXTS[1])), values(copy(TEXTS[1])))
    # exclude is honoured: without "model" nothing is written or read.
    component = nlp.get_pipe("hs_predictor")
    empty = HSPredictor(spacy.blank("en").vocab).from_bytes(component.to_bytes(exclude=["model"]))
    assert empty.model is None
    empty.from_bytes(component.to_bytes(), exclude=["model"])
    assert empty.model is None



@pytest.mark.parametrize("data", [b"", b"\x81\xa5model", b"not msgpack at all", None])
def test_from_bytes_of_bad_bytes_is_a_coded_error(data: bytes) -> None:
    """from_bytes(b"") raised msgpack's raw "Unpack failed: incomplete input"."""
    component = HSPredictor(spacy.blank("en").vocab)
    with pytest.raises(PipelineError, match=r"\[E309\] The 'hs_predictor' component cannot read"):
        component.from_bytes(data)
    assert component.model is None


def test_from_disk_accepts_a_model_directory(model_dir: Path, nlp: spacy.Language) -> None:
    other = spacy.blank("en")
    other.add_pipe("sentencizer")
    other.add_pipe("hs_predictor").from_disk(model_dir)
    assert_same_values(values(nlp(TEXTS[2])), values(other(TEXTS[2])))


def test_initialize_from_config(model_dir: Path, nlp: spacy.Language) -> None:
    config = Config().from_str(
        "\n".join(
            [
                "[nlp]",
                'lang = "en"',
                'pipeline = ["sentencizer", "hs_predictor"]',
                "[components]",
                "[components.sentencizer]",
                'factory = "sentencizer"',
                "[components.hs_predictor]",
                'factory = "hs_predictor"',
                "[initialize]",
                "[initialize.components]",
                "[initialize.components.hs_predictor]",
                f"model_path = {json.dumps(str(model_dir))}",
            ]
        )
    )
    built = spacy.util.load_model_from_config(config, auto_fill=True)
    assert built.get_pipe("hs_predictor").model is None
    built.initialize()
    assert_same_values(values(nlp(TEXTS[3])), values(built(TEXTS[3])))


def test_pickled_component_answers_the_same(nlp: spacy.Language) -> None:
    component = nlp.get_pipe("hs_predictor")
    copy = pickle.loads(pickle.dumps(component))
    assert copy.instance_id == component.instance_id
    doc = nlp(TEXTS[0])
    doc.user_data.clear()
    assert_same_values(values(nlp(TEXTS[0])), values(copy(doc)))


# -- multiprocessing, DocBin, several pipelines ------------------------------------------------


def test_n_process_2_gives_the_same_values(nlp: spacy.Language) -> None:
    texts = TEXTS * 3
    single = [values(doc) for doc in nlp.pipe(texts, batch_size=2)]
    multi = [values(doc) for doc in nlp.pipe(texts, batch_size=2, n_process=2)]
    assert len(multi) == len(single)
    for a, b in zip(single, multi):
        assert_same_values(a, b)


def test_docbin_round_trip_keeps_values(nlp: spacy.Language) -> None:
    docs = list(nlp.pipe(TEXTS))
    for doc in docs:
        _ = doc[2]._.hs_next  # cached lazily, stored too
    expected = [values(doc) for doc in docs]
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    for a, doc in zip(expected, restored):
        assert_same_values(a, values(doc))


def test_entry_point_without_importing_spacy_hs(model_dir: Path, nlp: spacy.Language) -> None:
    script = f"""
import json, spacy
nlp = spacy.blank("en")
nlp.add_pipe("sentencizer")
nlp.add_pipe("hs_predictor", config={{"model_path": {str(model_dir)!r}}})
doc = nlp({TEXTS[0]!r})
print(json.dumps({{"next": doc._.hs_next, "log_probs": [t._.hs_logprob for t in doc]}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    got = json.loads(result.stdout.strip().splitlines()[-1])
    doc = nlp(TEXTS[0])
    assert [w for w, _ in got["next"]] == [w for w, _ in doc._.hs_next]
    assert got["log_probs"] == pytest.approx([t._.hs_logprob for t in doc])


def test_a_lowercased_gensim_model_reads_capitalised_text(
    lee_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """gensim tutorials lowercase their corpus; ``HSModel.from_gensim`` of such a model has no
    normaliser settings, and capitalised words are looked up lowercased (said once, in a log)."""
    from gensim.models import Word2Vec

    lowered = tmp_path / "lee.lower.txt"
    lowered.write_text(lee_path.read_text(encoding="utf8").lower(), encoding="utf8")
    w2v = Word2Vec(
        corpus_file=str(lowered),
        vector_size=16,
        min_count=3,
        epochs=2,
        workers=1,
        hs=1,
        negative=0,
        seed=1,
    )
    model = HSModel.from_gensim(w2v)
    assert "normalizer" not in model.settings and model.is_lowercase()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    with caplog.at_level(logging.INFO, logger="spacy_hs"):
        component = nlp.add_pipe("hs_predictor")
        component.set_model(model)
    assert sum("looked up lowercased" in r.getMessage() for r in caplog.records) == 1
    doc = nlp("The President of the United States said")
    assert doc[1]._.hs_logprob == pytest.approx(model.log_prob_next("president", ["the"]))
    assert doc[2:5]._.hs_next and doc[4].has_vector
    np.testing.assert_array_equal(doc[4].vector, model.vectors[model.key_to_index["united"]])
    # Saying how the text was normalised replaces the guess.
    explicit = HSModel.from_gensim(w2v, normalizer={"lowercase": True, "punct": "keep"})
    assert explicit.settings["normalizer"]["punct"] == "keep"


@pytest.fixture(scope="module")
def headed_model(hs_model: HSModel, lee_path: Path) -> HSModel:
    """``hs_model`` with a directional head, trained briefly."""
    from spacy_hs.training.head import attach_head, train_head

    model = copy.copy(hs_model)
    model.settings = dict(hs_model.settings)  # attach_head saves the tuned cache there
    head = train_head(model, lee_path, None, epochs=1, context_size=3, workers=1, progress=False)
    attach_head(model, head, export_fine_tuned_vectors=False)
    return model


def assert_same_predictions(
    found: list[tuple[str, float]], expected: list[tuple[str, float]]
) -> None:
    assert [w for w, _ in found] == [w for w, _ in expected]
    assert [p for _, p in found] == pytest.approx([p for _, p in expected], rel=1e-9)


def test_the_directional_head_scores_every_known_word(headed_model: HSModel) -> None:
    """A sentence's first word has a probability under the directional head (P(w | sentence
    start)), and counts in the perplexity, as in KenLM or SRILM; not under the CBOW head."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    # The heads alone: headed_model has a tuned document cache, which "auto" would mix in.
    directional = HSPredictor(nlp.vocab, model=headed_model, set_vectors=False, cache=None)
    cbow = HSPredictor(nlp.vocab, model=headed_model, head="cbow", set_vectors=False, cache=None)
    text = "Police said the fire. The minister was there."
    doc = directional(nlp(text))
    known = [t for t in doc if t.text in headed_model]
    assert all(t._.hs_logprob is not None for t in known)
    assert doc[0]._.hs_logprob == pytest.approx(headed_model.log_prob_next("Police", []))
    sentence_2 = next(s for s in doc.sents if s.start > 0)
    assert doc[sentence_2.start]._.hs_logprob == pytest.approx(
        headed_model.log_prob_next(doc[sentence_2.start].text, [])
    )
    log_probs = [t._.hs_logprob for t in known]
    assert doc._.hs_perplexity == pytest.approx(math.exp(-sum(log_probs) / len(log_probs)))
    cbow_doc = cbow(nlp(text))
    assert cbow_doc[0]._.hs_logprob is None and cbow_doc[sentence_2.start]._.hs_logprob is None
    # Empty and all-unknown docs: the directional head predicts a first word, CBOW nothing.
    # The component's batch path and predict_next sum the same terms in another order: equal
    # words, probabilities equal up to rounding (not bit for bit).
    assert_same_predictions(directional(nlp(""))._.hs_next, headed_model.predict_next([], 10))
    assert_same_predictions(
        directional(nlp("zzqx qqzx"))._.hs_next, headed_model.predict_next(["zzqx"], 10)
    )
    assert cbow(nlp(""))._.hs_next == [] and cbow(nlp("zzqx"))._.hs_next == []
    with pytest.warns(UserWarning, match="out of vocabulary"):
        assert headed_model.predict_next(["zzqx"], head="cbow") == []


def test_unknown_words_score_as_unk(hs_model: HSModel) -> None:
    words = [*hs_model.words[:-1], "<unk>"]  # the rarest word becomes <unk>
    model = HSModel(
        words,
        hs_model.counts,
        hs_model.vectors,
        hs_model.tree,
        hs_model.inner_node_weights,
        settings=hs_model.settings,
    )
    unk = model.key_to_index["<unk>"]
    with pytest.warns(UserWarning, match="'centrust' is not in the model's vocabulary: scored"):
        value = model.log_prob_next("centrust", ["the", "fire"])
    assert value == model.log_prob_next(unk, ["the", "fire"])
    with pytest.raises(KeyError, match="Unknown word 'centrust'"):
        model.log_prob_next("centrust", ["the", "fire"], unknown=None)
    batch = model.log_prob_next_batch(["centrust", "fire"], [["the"], ["the"]])
    assert batch[0] == pytest.approx(model.log_prob_next("<unk>", ["the"]))
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    component = HSPredictor(nlp.vocab, model=model, set_vectors=False)
    doc = component(nlp("the fire centrust was"))
    assert doc[2]._.hs_logprob == pytest.approx(model.log_prob_next("<unk>", ["the", "fire"]))
    assert doc._.hs_unknown == 1
    assert doc[3]._.hs_logprob == pytest.approx(model.log_prob_next("was", ["the", "fire"]))
    plain = HSPredictor(nlp.vocab, model=model, unknown_word=None, set_vectors=False)
    doc = plain(nlp("the fire centrust was"))
    # Counted though unscored (KenLM's OOVs), and left out of the perplexity.
    assert doc[2]._.hs_logprob is None and doc._.hs_unknown == 1
    scored = [t._.hs_logprob for t in doc if t._.hs_logprob is not None]
    assert doc._.hs_perplexity == pytest.approx(math.exp(-sum(scored) / len(scored)))


# -- the document cache and the per-token measures ---------------------------------------------

CACHE = {"size": 60, "weight": 0.25}
STORIES = [
    "The fire moved towards the town. Firefighters said the fire was out of control. "
    "The fire destroyed homes near the town.",
    "Police said the man was arrested. The man was charged. Police will say more.",
    "Storm",
    "",
    "The minister said the government would send troops. The troops arrived, the minister said.",
]


@pytest.fixture(scope="module")
def cached_model(hs_model: HSModel, lee_path: Path) -> HSModel:
    """A copy of ``hs_model`` with a directional head (one thread: reproducible) and a saved
    document cache."""
    from spacy_hs.training.head import attach_head, train_head

    model = HSModel.from_bytes(hs_model.to_bytes())
    head = train_head(
        model, lee_path, None, epochs=1, context_size=3, workers=1, progress=False,
        tune_cache=False,
    )
    attach_head(model, head, export_fine_tuned_vectors=False)
    model.settings["cache"] = dict(CACHE)
    return model


def cache_nlp(model: HSModel, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"set_vectors": False, **config}).set_model(model)
    return nlp


def all_values(doc: Doc) -> tuple:
    return (
        [t._.hs_logprob for t in doc],
        doc._.hs_next,
        doc._.hs_perplexity,
        [t._.hs_next for t in doc],
    )


def test_a_repeated_word_scores_higher_with_the_cache(cached_model: HSModel) -> None:
    text = "The fire moved towards the town. Firefighters said the fire was near the town."
    nlp, plain_nlp = cache_nlp(cached_model), cache_nlp(cached_model, cache=None)
    with_cache = nlp(text)  # "auto": the saved cache
    without = plain_nlp(text)
    second_fire = [t.i for t in with_cache if t.text == "fire"][1]
    assert with_cache[second_fire]._.hs_logprob > without[second_fire]._.hs_logprob
    assert with_cache[0]._.hs_logprob == without[0]._.hs_logprob  # nothing cached yet
    assert with_cache._.hs_perplexity < without._.hs_perplexity
    # The values are the core's: one Document read through the head with the cache.
    component = nlp.get_pipe("hs_predictor")
    ids = [cached_model.key_to_index.get(component.normal_form(t.lex), -1) for t in with_cache]
    kept = [i for i, t in zip(ids, with_cache) if component.normal_form(t.lex) is not None]
    lengths = [
        sum(component.normal_form(t.lex) is not None for t in sentence)
        for sentence in with_cache.sents
    ]
    expected = cached_model.document(np.array(kept, np.int32), lengths).log_probs()
    found = [t._.hs_logprob for t in with_cache if component.normal_form(t.lex) is not None]
    np.testing.assert_allclose(
        [np.nan if x is None else x for x in found], expected, rtol=1e-12
    )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_the_cache_never_leaks_between_docs(cached_model: HSModel, batch_size: int) -> None:
    nlp = cache_nlp(cached_model)
    alone = [all_values(nlp(text)) for text in STORIES]
    piped = [all_values(doc) for doc in nlp.pipe(STORIES, batch_size=batch_size)]
    assert piped == alone
    if batch_size == 2:
        multi = [all_values(doc) for doc in nlp.pipe(STORIES, batch_size=2, n_process=2)]
        assert multi == alone


def test_measures_equal_brute_force(cached_model: HSModel) -> None:
    """hs_surprisal, hs_entropy and hs_rank from the whole mixture, computed here by the
    formula: the head's distribution and the counts of the doc's known words so far."""
    nlp = cache_nlp(cached_model)
    component = nlp.get_pipe("hs_predictor")
    doc = nlp(STORIES[0] + " Zorblaxian fire crews said the town was safe.")
    history: list[int] = []
    checked = 0
    for token in doc:
        word = component.normal_form(token.lex)
        if word is None:
            assert token._.hs_surprisal is token._.hs_rank is token._.hs_entropy is None
            continue
        context = [
            w for w in (component.normal_form(t.lex) for t in doc[token.sent.start : token.i])
            if w is not None and w in cached_model
        ][-3:]
        probs = cached_model.probabilities_next(context)
        if history:
            window = history[-CACHE["size"] :]
            cache = np.bincount(window, minlength=len(cached_model)) / len(window)
            probs = (1 - CACHE["weight"]) * probs + CACHE["weight"] * cache
        if word in cached_model:
            target = cached_model.key_to_index[word]
            assert token._.hs_surprisal == pytest.approx(-math.log2(probs[target]), rel=1e-6)
            assert token._.hs_rank == 1 + int((probs > probs[target] * (1 + 1e-9)).sum())
            history.append(target)
        else:  # out of the vocabulary: no rank; a prediction at its slot if it has context
            assert token._.hs_surprisal is None and token._.hs_rank is None
            if not context:
                assert token._.hs_entropy is None
                continue
        entropy = -(probs * np.log2(probs)).sum()
        assert token._.hs_entropy == pytest.approx(entropy, rel=1e-6)
        assert token._.hs_surprisal is None or token._.hs_surprisal == pytest.approx(
            -token._.hs_logprob / math.log(2)
        )
        checked += 1
    assert checked > 20
    ranks = [t._.hs_rank for t in doc if t._.hs_rank is not None]
    assert min(ranks) == 1 and max(ranks) > 10


def test_span_next_reads_the_docs_history(cached_model: HSModel) -> None:
    nlp = cache_nlp(cached_model)
    doc = nlp(STORIES[0])
    span = doc[doc[8].sent.start + 1 : doc[8].sent.start + 4]  # "said the fire" of sentence 2
    component = nlp.get_pipe("hs_predictor")
    context = [component.normal_form(t.lex) for t in span]
    before = [component.normal_form(t.lex) for t in doc[: span.end]]
    history = [cached_model.key_to_index[w] for w in before if w in cached_model]
    probs = (1 - CACHE["weight"]) * cached_model.probabilities_next(context[-3:])
    probs += CACHE["weight"] * np.bincount(history, minlength=len(cached_model)) / len(history)
    expected = np.argsort(-probs, kind="stable")[: component.top_k]
    assert [w for w, _ in span._.hs_next] == [cached_model.words[i] for i in expected]
    np.testing.assert_allclose([p for _, p in span._.hs_next], probs[expected], rtol=1e-6)
    # Without the cache, the span's words alone, as before.
    plain_nlp = cache_nlp(cached_model, cache=None)  # kept: docs find their component
    plain = plain_nlp(STORIES[0])
    assert plain[span.start : span.end]._.hs_next == [
        tuple(pair) for pair in cached_model.predict_next(context[-3:], component.top_k)
    ]


def test_measures_survive_a_docbin_once_computed(cached_model: HSModel) -> None:
    nlp = cache_nlp(cached_model)
    doc = nlp(STORIES[1])
    expected = [(t._.hs_rank, t._.hs_entropy, t._.hs_surprisal) for t in doc]
    data = DocBin(docs=[doc], store_user_data=True).to_bytes()
    nlp.get_pipe("hs_predictor").set_model(cached_model)  # docs no longer find it
    (restored,) = DocBin().from_bytes(data).get_docs(nlp.vocab)
    assert [(t._.hs_rank, t._.hs_entropy, t._.hs_surprisal) for t in restored] == expected
    fresh = DocBin(docs=[nlp.get_pipe("hs_predictor")(nlp.make_doc("Police said"))])
    (bare,) = DocBin(store_user_data=True).from_bytes(fresh.to_bytes()).get_docs(nlp.vocab)
    with pytest.raises(PipelineError, match="hs_predictor"):
        _ = bare[1]._.hs_rank  # no user_data: E304, as for every hs_* value


@pytest.mark.parametrize("cache", ["on", {"size": 0, "weight": 0.1}, {"size": 10}, 3])
def test_bad_cache_settings_fail_at_construction(cached_model: HSModel, cache) -> None:
    nlp = spacy.blank("en")
    with pytest.raises(ConfigError, match=r"\[E027\]"):
        nlp.add_pipe("hs_predictor", config={"cache": cache})


def test_a_bad_saved_cache_fails_at_model_load(cached_model: HSModel) -> None:
    broken = HSModel.from_bytes(cached_model.to_bytes())
    broken.settings["cache"] = {"size": -5, "weight": 0.1}
    with pytest.raises(ConfigError, match=r"\[E027\]"):
        cache_nlp(broken)


def test_an_old_model_has_no_cache_and_scores_as_before() -> None:
    old = HSModel.from_disk(Path(__file__).parent / "fixtures" / "model_v1")
    auto, off = cache_nlp(old), cache_nlp(old, cache=None)
    assert auto.get_pipe("hs_predictor").documents([]).cache is None
    for text in STORIES:
        assert all_values(auto(text)) == all_values(off(text))
    doc = auto("in the government he said")
    assert doc[2]._.hs_logprob == pytest.approx(
        old.log_prob_next("government", ["in", "the"]), rel=1e-9
    )
