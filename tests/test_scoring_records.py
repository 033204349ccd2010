"""spacy_hs.scoring.records: `score_documents` gives the component's own figures per document."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import spacy

from spacy_hs import score_documents
from spacy_hs.errors import PipelineError
from spacy_hs.scoring.records import DocumentScore, json_line


@pytest.fixture(scope="module")
def nlp(scoring_pipeline_dir: Path) -> spacy.Language:
    return spacy.load(scoring_pipeline_dir)


def test_records_are_the_components_attributes(nlp: spacy.Language, lee_path: Path) -> None:
    texts = lee_path.read_text(encoding="utf-8").splitlines()[:40]
    texts += ["", "Zzyzx qwxv.", "The the the."]  # empty, nothing known, repeats
    records = list(score_documents(nlp, texts, per_token=True, batch_size=7))
    assert [r.id for r in records] == list(range(len(texts)))
    for text, record in zip(texts, records):
        doc = nlp(text)  # alone, not in a batch
        log_probs = [t._.hs_logprob for t in doc if t._.hs_logprob is not None]
        assert record.tokens == len(log_probs)
        assert record.unknown == doc._.hs_unknown
        assert record.token_text == [t.text for t in doc]
        assert record.token_surprisal == [t._.hs_surprisal for t in doc]
        if not log_probs:
            assert record.perplexity is None and record.surprisal is None
            continue
        assert record.perplexity == pytest.approx(doc._.hs_perplexity, rel=1e-9)
        assert record.surprisal == pytest.approx(math.log2(record.perplexity), rel=1e-9)
    assert records[-3].tokens == 0 and records[-3].perplexity is None
    assert sum(r.tokens for r in records[:40]) > 5000


def test_ids_and_laziness(nlp: spacy.Language) -> None:
    # An endless stream: records come batch by batch, never after reading everything. A
    # sentence start has no context for this head: 2 of the 3 words are scored.
    texts = itertools.cycle(["One sentence here.", "And another one."])
    records = score_documents(nlp, texts, ids=itertools.count(100), batch_size=4)
    first, second = next(records), next(records)
    assert (first.id, second.id) == (100, 101) and first.tokens == second.tokens == 2


def test_a_pipeline_without_the_component_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"\[E901\].*no hs_predictor"):
        next(score_documents(spacy.blank("en"), ["Some text."]))


def test_json_line_is_compact_utf8_in_a_fixed_order() -> None:
    record = DocumentScore("día", 2, 12.5, 3.64, 0, bucket="head").to_dict()
    line = json_line(record)
    assert line == '{"id":"día","tokens":2,"perplexity":12.5,"surprisal":3.64,"unknown":0,' \
        '"bucket":"head"}\n'
    assert json.loads(line) == record
