"""Preprocessing throughput and memory: the Dask engine against the local engine.

All systems run in the same process and the same run, alternating, on the same file: the bundled
default corpus (Wikipedia sample + Lee) repeated to at least ``--min-mb`` MB.

- local, ``n_process=1`` and ``n_process=2``: `spacy_hs.preprocess.preprocess`;
- dask, 1 and 2 workers: the same call with ``engine=DaskEngine(workers=N)``, end to end: it
  starts its ``LocalCluster`` (one single-threaded worker process per worker), tokenizes in
  units of ``--chunk-mb`` MB, merges the shards and shuts the cluster down.

tokens/s counts the tokens written (token file + held-out file), the same for every system, over
the wall time of the whole call. Every system must write byte-identical files; the script checks.

Targets: dask 2 workers >= 1.6x dask 1 worker; dask 1 worker >= 0.85x local ``n_process=1``.

Memory: peak RSS (``ru_maxrss``) of each worker process, read on the workers at the end of a run
on a fresh 2-worker cluster, for the corpus and for 5 times the corpus. Target: flat.

    python bench/bench_preprocess_dask.py [--min-mb 20] [--chunk-mb 1] [--repeat 2]

The corpus is small next to the default ``--chunk-mb 32`` (made for corpora of GBs), so the units
here are smaller, to give the workers a few dozen units as a large corpus would.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import spacy

from spacy_hs.corpus import extract_default_corpus
from spacy_hs.preprocess import preprocess
from spacy_hs.preprocess_dask import DaskEngine

SYSTEMS = {
    "local-1": ("local engine, n_process=1", {"n_process": 1}),
    "local-2": ("local engine, n_process=2", {"n_process": 2}),
    "dask-1": ("dask engine, 1 worker", {"workers": 1}),
    "dask-2": ("dask engine, 2 workers", {"workers": 2}),
}


def build_corpus(directory: Path, min_mb: float, copies: int = 1) -> tuple[Path, int]:
    """The default corpus repeated to at least ``min_mb`` MB (times ``copies``): (path, repeats)."""
    sources = [c.path for c in extract_default_corpus(directory / "default")]
    text = "".join(Path(s).read_text(encoding="utf-8") for s in sources)
    repeats = -(-int(min_mb * 1e6) // len(text.encode())) * copies
    path = directory / f"corpus-x{repeats}.txt"
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(repeats):
            out.write(text)
    return path, repeats


def busy_cpu_seconds() -> tuple[float, float]:
    """(CPU seconds used by the whole machine, by this process and its finished children)."""
    import resource

    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    machine = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # not idle/iowait
    ours = sum(
        getattr(resource.getrusage(who), attr)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for attr in ("ru_utime", "ru_stime")
    )
    return machine, ours


def run_system(
    key: str, corpus: Path, out_dir: Path, chunk_mb: float
) -> tuple[float, int, str, float]:
    """(wall seconds, tokens written, digest of the files, cores used by other programs meanwhile)
    of one preprocess call."""
    _, options = SYSTEMS[key]
    output, heldout = out_dir / f"{key}.tok.txt", out_dir / f"{key}.heldout.txt"
    engine = None
    if key.startswith("dask"):
        engine = DaskEngine(workers=options["workers"], chunk_mb=chunk_mb)
        options = {}
    machine, ours = busy_cpu_seconds()
    start = time.perf_counter()
    result = preprocess(corpus, output, heldout=heldout, progress=False, engine=engine, **options)
    wall = time.perf_counter() - start
    machine_after, ours_after = busy_cpu_seconds()
    others = max(0.0, (machine_after - machine) - (ours_after - ours)) / wall
    tokens = result.meta["stats"]["tokens"] + result.heldout_meta["stats"]["tokens"]
    digest = hashlib.md5()
    for path in (output, heldout):
        digest.update(path.read_bytes())
        path.unlink()
    for meta in (result.meta, result.heldout_meta):
        stats = {k: v for k, v in meta["stats"].items() if k != "seconds"}
        digest.update(repr(sorted(stats.items())).encode())
    return wall, tokens, digest.hexdigest(), others


def cluster_start_seconds(n_workers: int) -> float:
    """Seconds to start and stop the engine's LocalCluster alone (no work), for reference."""
    import distributed

    start = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit=0,
            silence_logs=logging.ERROR,
            preload=["spacy_hs.preprocess_dask"],
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        client.run(os.getpid)
    return time.perf_counter() - start


def worker_peak_rss(corpus: Path, out_dir: Path, chunk_mb: float) -> tuple[list[float], float]:
    """(peak RSS in MB of each worker, tokens/s) of a run on a fresh 2-worker LocalCluster."""
    import resource

    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit=0,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        engine = DaskEngine(scheduler=cluster.scheduler_address, chunk_mb=chunk_mb)
        output = out_dir / "memory.tok.txt"
        start = time.perf_counter()
        result = preprocess(corpus, output, progress=False, engine=engine)
        rate = result.meta["stats"]["tokens"] / (time.perf_counter() - start)
        output.unlink()
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return sorted(kb / 1024 for kb in peaks.values()), rate  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min-mb", type=float, default=20.0, help="corpus size, at least")
    parser.add_argument("--chunk-mb", type=float, default=1.0, help="Dask unit size")
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs of each system")
    parser.add_argument("--memory-copies", type=int, default=5, help="the larger memory corpus")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        corpus, repeats = build_corpus(tmp_dir, args.min_mb)
        size = corpus.stat().st_size
        walls: dict[str, list[float]] = {key: [] for key in SYSTEMS}
        digests: dict[str, set[str]] = {key: set() for key in SYSTEMS}
        others: dict[str, list[float]] = {key: [] for key in SYSTEMS}
        for _ in range(args.repeat):
            for key in SYSTEMS:
                wall, tokens, digest, other = run_system(key, corpus, tmp_dir, args.chunk_mb)
                walls[key].append(wall)
                digests[key].add(digest)
                others[key].append(other)
        starts = {n: cluster_start_seconds(n) for n in (1, 2)}
        memory = {}
        if not args.no_memory:
            memory[1] = worker_peak_rss(corpus, tmp_dir, args.chunk_mb)
            big, _ = build_corpus(tmp_dir, args.min_mb, copies=args.memory_copies)
            big_size = big.stat().st_size
            corpus.unlink()
            memory[args.memory_copies] = worker_peak_rss(big, tmp_dir, args.chunk_mb)
    units = -(-size // int(args.chunk_mb * 1e6))
    print(
        f"corpus: the default corpus x{repeats}, {size / 1e6:.1f} MB, {tokens:,} tokens written; "
        f"dask units of {args.chunk_mb:g} MB (about {units})"
    )
    rate = {key: tokens / statistics.median(w) for key, w in walls.items()}
    print(
        f"{'system':<30}{'wall s (median)':>16}{'tokens/s':>12}   wall of each run "
        "(cores busy with other programs meanwhile)"
    )
    for key, (name, _) in SYSTEMS.items():
        each = " ".join(f"{w:.2f} ({o:.1f})" for w, o in zip(walls[key], others[key]))
        print(f"{name:<30}{statistics.median(walls[key]):>16.2f}{rate[key]:>12,.0f}   {each}")
    print(
        f"cluster start + shutdown alone (no work): 1 worker {starts[1]:.2f} s, "
        f"2 workers {starts[2]:.2f} s"
    )
    ratios = [
        ("dask 2 workers / dask 1 worker", "dask-2", "dask-1", "target >= 1.6x"),
        ("dask 1 worker / local n_process=1", "dask-1", "local-1", "target >= 0.85x"),
        ("local n_process=2 / local n_process=1", "local-2", "local-1", ""),
        ("dask 2 workers / local n_process=2", "dask-2", "local-2", ""),
    ]
    for name, a, b, target in ratios:
        print(f"{name:<40}{rate[a] / rate[b]:>6.2f}x   {target}")
    same = len(set().union(*digests.values())) == 1
    print(f"output of every system and run byte-identical: {'yes' if same else 'NO'}")
    if memory:
        (n1, (peaks1, rate1)), (n5, (peaks5, rate5)) = sorted(memory.items())
        print("peak RSS per worker (2 workers, fresh cluster per corpus):")
        print(
            f"  x{n1} corpus ({size / 1e6:.0f} MB): "
            + ", ".join(f"{p:.0f} MB" for p in peaks1)
            + f"   ({rate1:,.0f} tokens/s)"
        )
        print(
            f"  x{n5} corpus ({big_size / 1e6:.0f} MB): "
            + ", ".join(f"{p:.0f} MB" for p in peaks5)
            + f"   ({rate5:,.0f} tokens/s)"
        )
        print(f"  ratio of the largest peaks: {max(peaks5) / max(peaks1):.2f}x (target: flat)")
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, spaCy {spacy.__version__}")
    print("reproduce: python bench/bench_preprocess_dask.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
