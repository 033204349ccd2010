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
from spacy_hs.pipeline.component import HSPredictor
from spacy_hs.pipeline.extensions import DATA_KEY, component_of, measures, register_extensions


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


# -- values belong to their tokens: retokenizing, crafted DocBins, one token's measures ------


def _fresh(nlp: spacy.Language, doc: Doc) -> Doc:
    """The same tokens (and sentence starts) as a new Doc, processed by the component."""
    words = [t.text for t in doc]
    copy = Doc(nlp.vocab, words=words, spaces=[bool(t.whitespace_) for t in doc])
    for token, source in zip(copy, doc):
        token.is_sent_start = source.is_sent_start
    return nlp.get_pipe("hs_predictor")(copy)


def _measures(doc: Doc) -> list[tuple]:
    return [(t._.hs_logprob, t._.hs_rank, t._.hs_entropy, t._.hs_next) for t in doc]


def test_retokenizing_recomputes_the_values_for_the_new_tokens(nlp: spacy.Language) -> None:
    """After a merge (as merge_entities does) values were read from the wrong positions ("said"
    got the value of "States"), and rank, entropy and log-prob raised IndexError."""
    text = "The president of the United States said that he would go to the town."
    merged = nlp(text)
    said = merged[6]._.hs_logprob
    with merged.retokenize() as retokenizer:
        retokenizer.merge(merged[4:6])
    assert merged[5].text == "said" and merged[5]._.hs_logprob != said
    assert _measures(merged) == _measures(_fresh(nlp, merged))
    assert merged._.hs_perplexity == _fresh(nlp, merged)._.hs_perplexity
    split = nlp(text)
    _ = [t._.hs_rank for t in split]  # computed before the split, then recomputed
    with split.retokenize() as retokenizer:
        retokenizer.split(split[1], ["presi", "dent"], heads=[(split[1], 1), split[0]])
    assert _measures(split) == _measures(_fresh(nlp, split))


def test_a_same_length_retokenization_is_noticed(nlp: spacy.Language) -> None:
    doc = nlp("The president of the United States said that he would go.")
    before = _measures(doc)
    with doc.retokenize() as retokenizer:  # one token fewer, then one more: same length
        retokenizer.merge(doc[4:6])
    with doc.retokenize() as retokenizer:
        retokenizer.split(doc[1], ["presi", "dent"], heads=[(doc[1], 1), doc[0]])
    assert len(doc) == len(before)
    assert doc._.hs_next == _fresh(nlp, doc)._.hs_next
    assert _measures(doc) == _measures(_fresh(nlp, doc))


def test_a_crafted_docbin_is_recomputed_or_refused(model_dir: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    doc = nlp(TEXTS[2])
    expected = [t._.hs_logprob for t in doc]
    doc.user_data[DATA_KEY]["log_probs"] = tuple(expected[:2])  # fewer values than tokens
    doc.user_data[DATA_KEY]["ranks"] = (1,)
    data = DocBin(docs=[doc], store_user_data=True).to_bytes()
    (restored,) = DocBin().from_bytes(data).get_docs(nlp.vocab)
    assert [t._.hs_logprob for t in restored] == expected
    assert restored[-1]._.hs_rank == doc_rank(nlp, TEXTS[2])
    vocab = nlp.vocab
    del nlp
    gc.collect()
    (orphan,) = DocBin().from_bytes(data).get_docs(vocab)
    with pytest.raises(PipelineError, match=r"\[E308\] .*do not fit its tokens"):
        _ = orphan[-1]._.hs_logprob


def doc_rank(nlp: spacy.Language, text: str) -> int | None:
    return nlp(text)[-1]._.hs_rank


def test_one_tokens_rank_costs_one_tokens_work(nlp: spacy.Language) -> None:
    """doc[0]._.hs_rank ranked every token first (68.5 s on a 100k-token Doc)."""
    doc = nlp(" ".join([TEXTS[0]] * 20))
    data = doc.user_data[DATA_KEY]
    rank, entropy = doc[3]._.hs_rank, doc[3]._.hs_entropy
    assert "ranks" not in data and set(data["token_measures"]) == {3}
    assert (rank, entropy) == _measures(_fresh(nlp, doc))[3][1:3]
    whole = measures(doc)  # the surprisal view's call: every token at once
    assert whole["ranks"][3] == rank and whole["entropies"][3] == pytest.approx(entropy)
    first = nlp(TEXTS[0])
    ranks = [t._.hs_rank for t in first]
    kept = DocBin(docs=[first], store_user_data=True).to_bytes()
    (restored,) = DocBin().from_bytes(kept).get_docs(nlp.vocab)
    assert [t._.hs_rank for t in restored] == ranks


def test_hs_word_is_the_word_the_model_scored(normalized_model: HSModel) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor").set_model(normalized_model)
    doc = nlp("The Fire moved 1984 zzqxv, towards the town.")
    words = [t._.hs_word for t in doc]
    assert words[:3] == ["the", "fire", "moved"]  # the normal form, lowercased
    assert words[3] == "<num>" and words[5] is None and words[-1] is None  # punctuation
    assert words[4] is None and doc[4]._.hs_logprob is None  # unknown, no <unk> in the model
    unk = HSPredictor(nlp.vocab, model=with_unk(normalized_model), set_vectors=False)
    assert [t._.hs_word for t in unk(nlp("The zzqxv town"))] == ["the", "<unk>", "town"]
    assert "token._.hs_word" in nlp.get_pipe_meta("hs_predictor").assigns


def with_unk(model: HSModel) -> HSModel:
    """``model`` with an ``<unk>`` word: its least frequent word renamed."""
    assert "<unk>" not in model.key_to_index
    words = [*model.words[:-1], "<unk>"]
    parts = (model.counts, model.vectors, model.tree, model.inner_node_weights)
    return HSModel(words, *parts, settings=model.settings)
