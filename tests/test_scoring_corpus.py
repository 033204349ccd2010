"""spacy_hs.scoring.corpus: `score_corpus` writes records, buckets, the kept documents and
Parquet, atomically."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from spacy_hs.errors import ConfigError, InputError, OutputError
from spacy_hs.scoring import score_corpus
from spacy_hs.scoring.buckets import Cutoffs


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory, heldout_documents: list[str]) -> Path:
    path = tmp_path_factory.mktemp("documents") / "ptb.jsonl"
    texts = heldout_documents[:150] + ["", "zzxq"]  # two without a perplexity
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_buckets_from_percentiles_and_kept_documents(
    scoring_pipeline_dir: Path, documents: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    plain = score_corpus(scoring_pipeline_dir, [documents], tmp_path / "plain.jsonl")
    summary = score_corpus(
        scoring_pipeline_dir, [documents], output, buckets="30,60", max_perplexity=1e9,
        chunk_chars=5000,
    )  # fmt: skip
    records = _records(output)
    assert summary.documents == len(records) == 152 and summary.tokens > 10_000
    # The same records as without buckets, each with its bucket added last.
    without = _records(tmp_path / "plain.jsonl")
    assert [{k: v for k, v in r.items() if k != "bucket"} for r in records] == without
    assert plain.cutoffs is None and not (tmp_path / "plain.jsonl.cutoffs.json").exists()
    perplexities = sorted(r["perplexity"] for r in records[:150])
    cutoffs = summary.cutoffs
    assert cutoffs.sample == 150 and cutoffs.percentiles == (30, 60)
    assert perplexities[44] <= cutoffs.head <= perplexities[45]
    assert json.loads((tmp_path / "scores.jsonl.cutoffs.json").read_text())["head"] == cutoffs.head
    for record in records:
        expected = Cutoffs(cutoffs.head, cutoffs.tail).bucket(record["perplexity"])
        assert record.get("bucket") == expected
    assert summary.buckets == {"head": 45, "middle": 45, "tail": 60, "none": 2}
    # The kept file: the documents with a perplexity, their text after the id.
    kept = _records(tmp_path / "scores.kept.jsonl")
    assert summary.kept == len(kept) == 150 and list(kept[0])[:3] == ["id", "text", "tokens"]
    source = _records(documents)
    assert [k["text"] for k in kept] == [source[k["id"]]["text"] for k in kept]


def test_given_cutoffs_and_a_perplexity_filter(
    scoring_pipeline_dir: Path, documents: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.jsonl"
    score_corpus(scoring_pipeline_dir, [documents], first, buckets="50,90")
    cutoffs_file = tmp_path / "first.jsonl.cutoffs.json"
    # Another shard, cut at the first one's perplexities: here the same corpus, the same cut.
    head = json.loads(cutoffs_file.read_text())["head"]
    second = tmp_path / "second.jsonl"
    summary = score_corpus(
        scoring_pipeline_dir, [documents], second, cutoffs=str(cutoffs_file),
        max_perplexity=head, kept=tmp_path / "low.jsonl",
    )  # fmt: skip
    assert second.read_bytes() == first.read_bytes() and summary.cutoffs.head == head
    low = {r["id"] for r in _records(tmp_path / "low.jsonl")}
    records = _records(first)
    assert low == {r["id"] for r in records if r["perplexity"] and r["perplexity"] <= head}
    assert {r["id"] for r in records if r.get("bucket") == "head"} <= low
    assert 70 <= len(low) <= 80  # half of the 150 with a perplexity


def test_parquet_has_the_same_records(
    scoring_pipeline_dir: Path, documents: Path, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    score_corpus(scoring_pipeline_dir, [documents], tmp_path / "s.jsonl", per_token=True)
    score_corpus(scoring_pipeline_dir, [documents], tmp_path / "s.parquet", per_token=True)
    rows = pq.read_table(tmp_path / "s.parquet").to_pylist()
    records = _records(tmp_path / "s.jsonl")
    assert rows == [{**r, "id": str(r["id"])} for r in records]
    assert len(rows[0]["token_text"]) == len(rows[0]["token_surprisal"]) > 100


def test_without_pyarrow_parquet_says_how_to_install(
    scoring_pipeline_dir: Path, documents: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` fails
    with pytest.raises(ConfigError, match=r"\[E908\].*spacy-hs\[parquet\]"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path / "s.parquet")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_line_stops_the_run_and_writes_nothing(
    scoring_pipeline_dir: Path, documents: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "in" / "bad.jsonl"
    bad.parent.mkdir()
    lines = documents.read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join(lines[:120] + ["{oops"] + lines[120:]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"\[E902\] Line 121 of .*bad.jsonl is not valid JSON"):
        score_corpus(scoring_pipeline_dir, [bad], out / "scores.jsonl", chunk_chars=2000)
    assert not out.exists()  # no output, no temporary, not even the directory
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = score_corpus(scoring_pipeline_dir, [bad], out / "scores.jsonl", skip_bad=True)
    assert summary.skipped == 1 and summary.documents == 152
    assert any("Skipped 1 bad input line" in str(w.message) for w in caught)
    assert [r["id"] for r in _records(out / "scores.jsonl")][119:122] == [119, 121, 122]


def test_bad_outputs_and_options(scoring_pipeline_dir: Path, documents: Path, tmp_path: Path):
    with pytest.raises(OutputError, match=r"\[E180\]"):
        score_corpus(scoring_pipeline_dir, [documents], documents)
    with pytest.raises(OutputError, match=r"\[E907\]"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path)
    with pytest.raises(OutputError, match=r"\[E918\]"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path / "a.jsonl", max_perplexity=9,
                     kept=tmp_path / "a.jsonl")  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[E911\]"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path / "a", buckets="1,2",
                     cutoffs="1,2")  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[E913\]"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path / "a", kept=tmp_path / "b")
    with pytest.raises(ConfigError, match=r"\[E912\] max_perplexity must be"):
        score_corpus(scoring_pipeline_dir, [documents], tmp_path / "a", max_perplexity=-1)
    assert list(tmp_path.iterdir()) == []
