"""Scoring throughput and memory: two Dask workers against one local process.

In one run, on the same corpus (Penn Treebank's training set, repeated to ``--min-words``, cut
into documents of 8 sentences, as JSON Lines), with a pipeline whose model was trained on that
text (gensim CBOW with hierarchical softmax, built here unless ``--pipeline`` is given):

- ``local-1``: `spacy_hs.scoring.score_corpus` with ``LocalEngine(workers=1)`` (this process);
- ``dask-2``: the same with ``DaskEngine(workers=2)``, end to end: the engine starts its
  ``LocalCluster``, each worker loads the pipeline, the cluster is shut down at the end.

Both must write byte-identical files (checked). Printed: wall time, scored tokens/s, the ratio
dask-2 / local-1 (target >= 1.4x on 2 cores); the cluster's fixed cost (start, load, stop) is
measured apart and a ratio without it printed too. Beside them, spaCy tokens per CPU second on
one core, on the same 2,000 documents, of scoring (`score_documents`) and of spaCy's blank
English tokenizer alone (``spacy.blank("en").pipe``): the floor of any spaCy-based scorer.

``--rss``: peak RSS (``ru_maxrss``) of a fresh ``spacy-hs score`` process (one local process)
on the corpus and on 20 times the corpus (target: within 1.1x).

    python bench/bench_score.py [--quick] [--min-words 3000000] [--chunk-mb 1] [--rss]

``--quick`` runs in seconds: a small corpus, a small model (checks the script, not the speed).

On a shared machine other programs take cores from the systems compared: the script prints the
cores they used during each run (from /proc/stat).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
import treebank
from gensim.models import Word2Vec

from spacy_hs import HSModel
from spacy_hs.dask_cluster import DaskCluster
from spacy_hs.pipeline.package import build_pipeline
from spacy_hs.scoring import DaskEngine, LocalEngine, score_corpus

SENTENCES_PER_DOCUMENT = 8
# Starts a command and reports its own peak RSS: a child started straight from this (large)
# process would inherit this process's peak in its ru_maxrss (see tests/isolated.py).
LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def build_corpus(path: Path, min_words: int, copies: int = 1) -> tuple[list[str], int]:
    """PTB train repeated to ``min_words`` (times ``copies``) as JSON Lines documents; returns
    one copy's texts and the words of the file."""
    lines = [line.strip() for line in treebank.penn["train"].splitlines() if line.strip()]
    words = sum(len(line.split()) for line in lines)
    repeats = max(1, -(-min_words // words))
    texts = [
        " ".join(lines[i : i + SENTENCES_PER_DOCUMENT])
        for i in range(0, len(lines), SENTENCES_PER_DOCUMENT)
    ]
    n_words = 0
    with open(path, "w", encoding="utf-8") as f:
        for text in (text for _ in range(repeats * copies) for text in texts):
            f.write(json.dumps({"text": text}) + "\n")
            n_words += len(text.split())
            if n_words >= min_words * copies:
                break
    return texts, n_words


def build_pipeline_dir(path: Path, quick: bool) -> Path:
    """A pipeline around a CBOW HS model trained on PTB train (one epoch)."""
    sentences = [line.split() for line in treebank.penn["train"].splitlines() if line.strip()]
    if quick:
        sentences = sentences[:5000]
    w2v = Word2Vec(
        sentences, vector_size=32 if quick else 100, window=5, min_count=1, sg=0, hs=1,
        negative=0, epochs=1, workers=2, seed=1,
    )  # fmt: skip
    model = HSModel.from_gensim(w2v, settings={"lang": "en"})
    build_pipeline(model, "en").to_disk(path)
    return path


def busy_cpu_seconds() -> tuple[float, float]:
    """(CPU seconds used by the whole machine, by this process and its finished children)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    machine = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    ours = sum(
        getattr(resource.getrusage(who), attr)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for attr in ("ru_utime", "ru_stime")
    )
    return machine, ours


def timed(function, *args, **kwargs) -> tuple[object, float, float, float]:
    """(result, wall seconds, CPU seconds of this process and its finished children, cores
    used by other programs meanwhile)."""
    machine, ours = busy_cpu_seconds()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    wall = time.perf_counter() - start
    machine_after, ours_after = busy_cpu_seconds()
    others = max(0.0, (machine_after - machine) - (ours_after - ours)) / wall
    return result, wall, ours_after - ours, others


def cluster_cost(pipeline: Path) -> float:
    """Seconds to start a 2-worker LocalCluster, load the pipeline on each worker, stop it."""
    from spacy_hs.scoring.engines import load_pipeline

    start = time.perf_counter()
    with DaskCluster(workers=2, preload="spacy_hs.scoring.engines").client(2, False) as client:
        client.run(lambda: bool(load_pipeline(str(pipeline))))
    return time.perf_counter() - start


def per_core(pipeline: Path, texts: list[str]) -> tuple[float, float]:
    """spaCy tokens per CPU second of this process on ``texts``: (scoring them with
    `score_documents`, tokenizing them with spaCy's blank English tokenizer alone)."""
    from spacy_hs.scoring import load_pipeline, score_documents

    blank = spacy.blank("en")
    sum(1 for _ in blank.pipe(texts[:200]))  # warm both up
    nlp = load_pipeline(str(pipeline))
    sum(1 for _ in score_documents(nlp, texts[:200]))
    tokens = sum(len(doc) for doc in blank.tokenizer.pipe(texts))
    start = time.process_time()
    sum(1 for _ in blank.pipe(texts, batch_size=64))
    tokenizer = time.process_time() - start
    start = time.process_time()
    sum(1 for _ in score_documents(nlp, texts))
    scoring = time.process_time() - start
    return tokens / scoring, tokens / tokenizer


def peak_rss(pipeline: Path, corpus: Path, output: Path) -> float:
    """Peak RSS in MB of a fresh `spacy-hs score` process (one local process)."""
    command = [sys.executable, "-m", "spacy_hs", "score", str(pipeline), str(corpus)]
    command += [str(output), "--no-progress"]
    run = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True
    )
    code, kib = run.stdout.split()
    assert code == "0", run.stderr
    output.unlink()
    return int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes")
    parser.add_argument("--min-words", type=int, default=3_000_000)
    parser.add_argument("--chunk-mb", type=float, default=1.0)
    parser.add_argument("--pipeline", type=Path, help="a pipeline to use instead")
    parser.add_argument("--rss", action="store_true", help="also peak RSS at 1x and 20x")
    args = parser.parse_args()
    min_words = 50_000 if args.quick else args.min_words
    chunk_chars = round((0.05 if args.quick else args.chunk_mb) * 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pipeline = args.pipeline or build_pipeline_dir(root / "pipeline", args.quick)
        corpus = root / "corpus.jsonl"
        texts, n_words = build_corpus(corpus, min_words)
        size_mb = corpus.stat().st_size / 1e6
        print(f"Corpus: {n_words:,} words in {size_mb:.1f} MB of JSON Lines; pipeline {pipeline}")
        results = {}
        for key, engine in (("local-1", LocalEngine(1)), ("dask-2", DaskEngine(workers=2))):
            output = root / f"{key}.jsonl"
            summary, wall, cpu, others = timed(
                score_corpus, pipeline, [corpus], output, engine=engine, chunk_chars=chunk_chars
            )
            results[key] = (wall, summary.tokens, output.read_bytes())
            output.unlink()
            print(
                f"{key:8s} {wall:7.1f} s  {summary.tokens / wall:10,.0f} tokens/s  "
                f"{cpu:7.1f} CPU s  ({summary.documents:,} documents; other programs used "
                f"{others:.2f} cores)"
            )
        assert results["local-1"][2] == results["dask-2"][2], "the engines' outputs differ"
        print("Outputs: byte-identical")
        local, dask = results["local-1"][0], results["dask-2"][0]
        cost = cluster_cost(pipeline)
        print(f"dask-2 / local-1: {local / dask:.2f}x  (target >= 1.4x)")
        print(
            f"  without the cluster's fixed cost ({cost:.1f} s: start, load the pipeline, stop): "
            f"{local / max(dask - cost, 1e-9):.2f}x"
        )
        scoring, blank = per_core(pipeline, texts[:2000])
        print(
            f"spaCy tokens per CPU second, one core, the same {min(len(texts), 2000):,} "
            f"documents: scoring {scoring:,.0f}; spaCy's blank tokenizer alone {blank:,.0f} "
            f"(scoring = {scoring / blank:.2f}x the tokenizer)"
        )
        if args.rss:
            peaks = []
            for copies in (1, 20):
                corpus_n = root / f"corpus{copies}.jsonl"
                build_corpus(corpus_n, min_words // 20, copies)
                peaks.append(peak_rss(pipeline, corpus_n, root / "rss.jsonl"))
                corpus_n.unlink()
            print(
                f"Peak RSS of one process: {peaks[0]:.0f} MB at 1x, {peaks[1]:.0f} MB at 20x "
                f"({peaks[1] / peaks[0]:.3f}x; target <= 1.1x)"
            )


if __name__ == "__main__":
    main()
