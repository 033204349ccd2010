"""Per-token rank, surprisal, entropy and top-k (spacy_hs.view.surprisal), checked against the
model's own exact answers through other paths: ``log_prob_next`` and the best-first tree search."""

from __future__ import annotations

import math
import tracemalloc

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from spacy_hs import HSModel
from spacy_hs.corpus.normalize import TokenNormalizer
from spacy_hs.errors import PipelineError
from spacy_hs.view.surprisal import (
    DROPPED,
    NO_CONTEXT,
    OOV,
    SCORED,
    doc_surprisal,
    doc_surprisals,
)

# Lee test stories (gensim's lee.cor, not in the training corpus lee_background.cor), with
# punctuation, numbers, capitals and a made-up word, over several sentences.
TEXT = (
    "The national executive of the strife-torn Democrats last night appointed little-known "
    "West Australian senator Brian Greig as interim leader. In a move to reassert control "
    "over the party's seven senators, the national executive rejected the bid by 12 votes to "
    "4. Zorblaxian officials said nothing."
)


def make_nlp(model: HSModel, head: str = "auto", cache=None) -> Language:
    """The heads alone by default (``directional_model`` has a tuned document cache): these
    tests check the view against the heads' other paths."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"head": head, "cache": cache}).set_model(model)
    return nlp


@pytest.fixture(scope="module", params=["cbow", "directional"])
def scored(request: pytest.FixtureRequest, normalized_model: HSModel, directional_model: HSModel):
    """(model, head, nlp, doc, result) for both heads."""
    head = request.param
    model = normalized_model if head == "cbow" else directional_model
    nlp = make_nlp(model, head)
    doc = nlp(TEXT)
    return model, head, nlp, doc, doc_surprisal(doc, top_k=5)


def known_context(model: HSModel, doc: Doc, i: int) -> list[str]:
    """The normalised in-vocabulary words before token i in its sentence (computed here, with
    the normaliser itself, not through the component)."""
    normalizer = TokenNormalizer(model.settings["normalizer"])
    words = [normalizer.norm(t) for t in doc[doc[i].sent.start : i]]
    return [w for w in words if w is not None and w in model]


def word_of(model: HSModel, token) -> str | None:
    return TokenNormalizer(model.settings["normalizer"]).norm(token)


def test_statuses_follow_the_component(scored) -> None:
    model, head, _, doc, result = scored
    assert len(result) == len(doc)
    for token, status in zip(doc, result.status):
        word = word_of(model, token)
        if token._.hs_logprob is not None:
            assert status == SCORED
        elif word is None:
            assert status == DROPPED
        elif word not in model:
            assert status == OOV
        else:
            assert status == NO_CONTEXT
    # The text exercises every kind (the CBOW head cannot score a sentence's first word).
    expected = {SCORED, DROPPED, OOV} | ({NO_CONTEXT} if head == "cbow" else set())
    assert expected <= set(result.status)
    assert doc[0].is_sent_start and result.status[0] in (NO_CONTEXT, SCORED)
    assert result.status[_index(doc, "Zorblaxian")] == OOV
    assert result.status[_index(doc, ",")] == DROPPED


def _index(doc: Doc, text: str) -> int:
    return next(t.i for t in doc if t.text == text)


def test_log_probs_agree_with_the_component_and_log_prob_next(scored) -> None:
    model, head, _, doc, result = scored
    assert result.log_probs == [t._.hs_logprob for t in doc]
    checked = 0
    for i, status in enumerate(result.status):
        if status != SCORED:
            assert result.ranks[i] is None
            continue
        expected = model.log_prob_next(word_of(model, doc[i]), known_context(model, doc, i), head)
        assert result.log_probs[i] == pytest.approx(expected, abs=1e-5)
        checked += 1
    assert checked >= 20


def test_ranks_are_exact_by_tree_search(scored) -> None:
    """rank r means: the best-first search's top r ends with the word, its top r - 1 lacks it."""
    model, head, _, doc, result = scored
    positions = [i for i, s in enumerate(result.status) if s == SCORED]
    assert any(result.ranks[i] > 10 for i in positions)  # not only easy words
    for i in positions[:25]:
        word, context, rank = word_of(model, doc[i]), known_context(model, doc, i), result.ranks[i]
        top = [w for w, _ in model.predict_next(context, top_k=rank, head=head)]
        assert top[-1] == word
        assert word not in top[:-1]


def test_entropy_is_over_the_whole_vocabulary(scored) -> None:
    model, head, _, doc, result = scored
    positions = [i for i, s in enumerate(result.status) if s == SCORED][:5]
    for i in positions:
        probs = [p for _, p in model.predict_next(known_context(model, doc, i), len(model), head)]
        assert len(probs) == len(model) and sum(probs) == pytest.approx(1.0, abs=1e-6)
        entropy = -sum(p * math.log2(p) for p in probs if p > 0)
        assert result.entropies[i] == pytest.approx(entropy, abs=1e-6)
        # GLTR's "entropy" of the renormalised top 10 is another, much smaller number.
        top10 = [p / sum(probs[:10]) for p in probs[:10]]
        assert -sum(p * math.log2(p) for p in top10) < entropy - 1


def test_top_k_is_the_prediction_after_the_previous_token(scored) -> None:
    """The predictions at token i are Token._.hs_next of token i - 1, in the same sentence."""
    _, _, _, doc, result = scored
    checked = 0
    for i in range(1, len(doc)):
        if result.status[i] != SCORED or doc[i].is_sent_start:
            continue
        expected = doc[i - 1]._.hs_next[:5]
        assert list(result.top_words[i]) == [w for w, _ in expected]
        assert list(result.top_probs[i]) == pytest.approx([p for _, p in expected], rel=1e-5)
        checked += 1
    assert checked >= 10


def test_out_of_vocabulary_tokens_get_the_prediction_but_no_rank(scored) -> None:
    _, _, _, doc, result = scored
    j = _index(doc, "Greig")  # after "west australian senator brian"
    assert result.status[j] == OOV and result.ranks[j] is None and result.log_probs[j] is None
    assert len(result.top_words[j]) == 5 and result.entropies[j] > 0
    i = _index(doc, "Zorblaxian")  # a sentence's first word: no context word before it
    assert result.status[i] == OOV and result.top_words[i] == () and result.entropies[i] is None
    k = _index(doc, ",")  # never predicted
    assert result.status[k] == DROPPED and result.top_words[k] == ()
    assert result.entropies[k] is None


def test_doc_summary(scored) -> None:
    _, _, _, doc, result = scored
    assert result.perplexity == doc._.hs_perplexity
    assert result.mean_surprisal == pytest.approx(math.log2(doc._.hs_perplexity))
    words = len(doc) - result.counts[DROPPED]
    assert result.coverage == result.counts[SCORED] / words
    assert sum(result.counts.values()) == len(doc)
    span = result.slice(3, 12)
    assert span.status == result.status[3:12]
    scored_lps = [lp for lp in span.log_probs if lp is not None]
    assert span.perplexity == pytest.approx(math.exp(-sum(scored_lps) / len(scored_lps)))


def test_chunks_bound_memory_and_change_nothing(normalized_model: HSModel) -> None:
    nlp = make_nlp(normalized_model)
    doc = nlp(TEXT)
    whole = doc_surprisal(doc)
    one_row = doc_surprisals([doc], chunk_elements=1)[0]  # one row of V at a time
    assert one_row.ranks == whole.ranks
    assert one_row.entropies == pytest.approx(whole.entropies)
    assert one_row.top_words == whole.top_words

    def peak(text: str) -> int:
        doc = nlp(text)
        tracemalloc.start()
        doc_surprisals([doc], chunk_elements=8 * len(normalized_model))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak

    short, long = peak(TEXT), peak(" ".join([TEXT] * 8))
    # 8 times the positions; without chunks the (positions, V) float64 block would be 8x.
    rows_bytes = 8 * len(normalized_model) * 8
    assert long < short + 4 * rows_bytes


def test_a_component_that_scores_first_words_is_followed(directional_model: HSModel) -> None:
    """Status and rank come from the component's log-probs: the directional head scores a
    sentence's first word (P(w | sentence start)), so the view shows it as scored, with the
    rank of the word in the sentence-start distribution."""
    nlp = make_nlp(directional_model)
    doc = nlp("The president said it.")
    first = directional_model.log_prob_next("the", [], head="directional")
    assert doc[0]._.hs_logprob == pytest.approx(first)
    result = doc_surprisal(doc)
    assert result.status[0] == SCORED and result.log_probs[0] == pytest.approx(first)
    top = [w for w, _ in directional_model.predict_next([], result.ranks[0], "directional")]
    assert top[-1] == "the" and "the" not in top[:-1]


def test_docs_from_several_pipelines_in_one_call(
    normalized_model: HSModel, directional_model: HSModel
) -> None:
    cbow, directional = make_nlp(normalized_model, "cbow"), make_nlp(directional_model)
    docs = [cbow(TEXT), directional(TEXT), cbow("The man said.")]
    results = doc_surprisals(docs)
    assert [r.head for r in results] == ["cbow", "directional", "cbow"]
    assert results[0].ranks == doc_surprisal(docs[0]).ranks
    assert results[0].ranks != results[1].ranks


def test_errors_name_the_fix(normalized_model: HSModel) -> None:
    blank = spacy.blank("en")
    with pytest.raises(PipelineError, match=r"add_pipe\('hs_predictor'"):
        doc_surprisal(blank("No component here."))
    with pytest.raises(PipelineError, match="Doc or Span"):
        doc_surprisals(["a string"])  # type: ignore[list-item]
    nlp = make_nlp(normalized_model)
    doc = nlp(TEXT)
    with pytest.raises(PipelineError, match="top_k"):
        doc_surprisal(doc, top_k=0)
    nlp.get_pipe("hs_predictor").set_model(normalized_model)  # a new model: docs lose it
    with pytest.raises(PipelineError, match=r"nlp.get_pipe\('hs_predictor'\)\(doc\)"):
        doc_surprisal(doc)
