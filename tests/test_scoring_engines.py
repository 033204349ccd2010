"""spacy_hs.scoring.engines on real worker processes and real Dask clusters: every engine and
number of workers writes the same bytes, and a worker killed mid-job loses no document.

The corpus is Penn Treebank's validation set (unseen by the Lee model), half as JSON Lines and
half as gzip-compressed plain text, cut into small chunks so that even this corpus makes a few
dozen tasks.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import spacy

from spacy_hs.scoring import LocalEngine, score_corpus

distributed = pytest.importorskip("distributed")

from spacy_hs.scoring import DaskEngine, engines  # noqa: E402

CHUNK_CHARS = 15_000  # about 30 chunks
TIMEOUT = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, heldout_documents: list[str]) -> list[Path]:
    root = tmp_path_factory.mktemp("score-corpus")
    half = len(heldout_documents) // 2
    jsonl = root / "part1.jsonl"
    records = [{"id": f"ptb-{i}", "text": t} for i, t in enumerate(heldout_documents[:half])]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    plain = root / "part2.txt.gz"
    plain.write_bytes(gzip.compress("\n\n".join(heldout_documents[half:]).encode()))
    return [jsonl, plain]


def _score(pipeline: Path, corpus: list[Path], output: Path, engine) -> bytes:
    summary = score_corpus(pipeline, corpus, output, engine=engine, chunk_chars=CHUNK_CHARS)
    assert summary.documents > 0
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]  # nothing else
    return output.read_bytes()


@pytest.fixture(scope="module")
def expected(
    scoring_pipeline_dir: Path, corpus: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """The records of one local process."""
    output = tmp_path_factory.mktemp("local-1") / "scores.jsonl"
    return _score(scoring_pipeline_dir, corpus, output, LocalEngine(workers=1))


def test_one_process_gives_each_documents_own_perplexity(
    expected: bytes, scoring_pipeline_dir: Path, heldout_documents: list[str]
) -> None:
    records = [json.loads(line) for line in expected.decode().splitlines()]
    half = len(heldout_documents) // 2
    assert [r["id"] for r in records] == [f"ptb-{i}" for i in range(half)] + list(
        range(half, len(heldout_documents))
    )
    nlp = spacy.load(scoring_pipeline_dir)
    for text, record in zip(heldout_documents, records):
        doc = nlp(text)  # alone, not in a batch
        assert record["perplexity"] == pytest.approx(doc._.hs_perplexity, rel=1e-6)
        assert record["unknown"] == doc._.hs_unknown
    assert sum(r["tokens"] for r in records) > 40_000


def test_dask_local_cluster_writes_the_same_bytes(
    expected: bytes, scoring_pipeline_dir: Path, corpus: list[Path], tmp_path: Path
) -> None:
    found = _score(scoring_pipeline_dir, corpus, tmp_path / "scores.jsonl", DaskEngine(workers=2))
    assert found == expected


def test_local_processes_write_the_same_bytes(
    expected: bytes, scoring_pipeline_dir: Path, corpus: list[Path], tmp_path: Path
) -> None:
    found = _score(scoring_pipeline_dir, corpus, tmp_path / "scores.jsonl", LocalEngine(2))
    assert found == expected


def test_a_killed_worker_loses_no_document(
    expected: bytes, scoring_pipeline_dir: Path, corpus: list[Path], tmp_path: Path
) -> None:
    """SIGKILL one worker of a 2-worker LocalCluster once a few chunks are done and it holds
    chunks of the job: its nanny starts a new worker, the scheduler gives the chunks to the
    workers alive, and the output is the one-process output, every document once."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, memory_limit=0,
        worker_dashboard_address=None,
    )  # fmt: skip
    killed: list[tuple[int, list[str]]] = []
    done = threading.Event()

    def kill_a_busy_worker(client) -> None:
        seen: set[str] = set()
        deadline = time.monotonic() + TIMEOUT
        while not done.is_set() and time.monotonic() < deadline:
            processing = {
                worker: [k for k in keys if str(k).startswith("spacy-hs-score-")]
                for worker, keys in client.processing().items()
            }
            seen.update(k for keys in processing.values() for k in keys)
            busy = [(worker, keys) for worker, keys in processing.items() if keys]
            # The job submits 5 chunks, then one per chunk done: 8 seen, 3 done at least.
            if len(seen) >= 8 and busy:
                worker, keys = busy[0]
                pid = client.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, keys))
                return
            time.sleep(0.01)

    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            killer = threading.Thread(target=kill_a_busy_worker, args=(client,))
            killer.start()
            try:
                engine = DaskEngine(scheduler=cluster.scheduler_address, timeout=TIMEOUT)
                found = _score(scoring_pipeline_dir, corpus, tmp_path / "scores.jsonl", engine)
            finally:
                done.set()
                killer.join()
            assert len(killed) == 1, "no worker was seen with chunks of the job"
            pid, keys = killed[0]
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            assert keys and len(cluster.workers) == 2
            # A worker loads the pipeline once for all its chunks (the new one: once, or not at
            # all if it joined after the last chunk was given out).
            loaded = client.run(lambda: engines.pipelines_loaded)
            assert 1 in loaded.values() and max(loaded.values()) == 1, loaded
    finally:
        cluster.close()
    assert found == expected
