"""The extension attributes and how a Doc finds its component (``pipeline/extensions.py``):
values kept in the Doc, coded errors that say how to fix a Doc without values, several
pipelines in one process, registering once."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from test_component import TEXTS, assert_pairs

from spacy_hs import HSModel
from spacy_hs.errors import PipelineError
from spacy_hs.pipeline.extensions import DATA_KEY, component_of, register_extensions


def test_component_of_names_the_doc_and_the_fix(nlp: spacy.Language, model_dir: Path) -> None:
    doc = nlp(TEXTS[2])
    assert component_of(doc) is nlp.get_pipe("hs_predictor")
    with pytest.raises(PipelineError, match=r"\[E304\] Doc 'Police said' .*add_pipe"):
        component_of(spacy.blank("en")("Police said"))
    other = spacy.blank("en")
    other.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    orphan = other("Police said the")
    del other
    gc.collect()
    with pytest.raises(PipelineError, match=r"\[E305\] .*'Police said the' .*get_pipe"):
        component_of(orphan)


def test_lazy_values_are_cached_in_the_doc(nlp: spacy.Language) -> None:
    doc = nlp(TEXTS[1])
    first = doc[2]._.hs_next
    assert doc.user_data[DATA_KEY]["token_next"][2] == [list(pair) for pair in first]
    assert doc[1:3]._.hs_next
    assert "1:3" in doc.user_data[DATA_KEY]["span_next"]


def test_a_docbin_without_user_data_names_store_user_data(hs_model: HSModel) -> None:
    """spaCy users keep Docs in a DocBin; without store_user_data=True the values are gone, and
    the message says so (a None would read as "no scorable token")."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor").set_model(hs_model)
    doc = nlp("Police said the fire was under control.")
    assert doc._.hs_perplexity is not None
    restored = list(DocBin(docs=[doc]).get_docs(nlp.vocab))[0]
    with pytest.raises(PipelineError, match=r"\[E304\] .*store_user_data=True"):
        _ = restored._.hs_perplexity
    kept = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert kept._.hs_perplexity == doc._.hs_perplexity


def test_unprocessed_doc(nlp: spacy.Language) -> None:
    doc = spacy.blank("en")("Police said")
    with pytest.raises(ValueError, match="not processed by an hs_predictor"):
        _ = doc._.hs_next


def test_docbin_values_survive_the_pipeline(model_dir: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    doc = nlp(TEXTS[2])
    cached = doc[1]._.hs_next
    data = DocBin(docs=[doc], store_user_data=True).to_bytes()
    vocab = nlp.vocab
    del nlp, doc
    gc.collect()
    restored = next(DocBin().from_bytes(data).get_docs(vocab))
    assert restored._.hs_next and restored._.hs_perplexity
    assert restored[1]._.hs_next == cached  # cached before storing
    with pytest.raises(ValueError, match="not loaded in this process"):
        _ = restored[3]._.hs_next  # needs the component, which is gone


def test_two_pipelines_answer_with_their_own_models(
    model_dir: Path, normalized_model: HSModel, hs_model: HSModel, tmp_path: Path
) -> None:
    normalized_model.to_disk(tmp_path / "normalized")
    first = spacy.blank("en")
    first.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    doc_first = first("Police said the")
    second = spacy.blank("en")
    second.add_pipe("hs_predictor", config={"model_path": str(tmp_path / "normalized")})
    doc_second = second("Police said the")
    # Accessed after the second pipeline exists: each still uses its own model.
    assert_pairs(doc_first._.hs_next, hs_model.predict_next(["Police", "said", "the"]))
    assert_pairs(doc_first[1]._.hs_next, hs_model.predict_next(["Police", "said"]))
    expected = normalized_model.predict_next(["police", "said"])
    assert_pairs(doc_second[1]._.hs_next, expected)
    assert doc_first[1]._.hs_next != doc_second[1]._.hs_next
    assert doc_first[2]._.hs_logprob != doc_second[2]._.hs_logprob


def test_extensions_are_registered_once() -> None:
    assert register_extensions() == []
    assert register_extensions() == []
    original = Doc.get_extension("hs_next")
    try:
        Doc.set_extension("hs_next", default=None, force=True)
        assert register_extensions() == ["Doc._.hs_next"]
        with pytest.raises(ValueError, match="Doc._.hs_next already exist"):
            spacy.blank("en").add_pipe("hs_predictor")
    finally:
        Doc.set_extension("hs_next", getter=original[2], force=True)
    assert register_extensions() == []
