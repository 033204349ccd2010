"""Head training throughput (directional, and n-gram as configs/ptb.cfg trains it) against
gensim's own HS CBOW training, and its memory.

Part 1, throughput: on one token file (default: Penn Treebank `train`, ~0.93M tokens, from the
`treebank` package), in one run and at the same vector size and thread count:

* gensim ``Word2Vec(corpus_file=..., sg=0, hs=1, negative=0, window=5)``: the seconds of
  ``train()`` alone (the vocabulary is built before), with ``sample=1e-3`` (gensim's and our
  default: frequent words are skipped, so fewer updates per token) and ``sample=0`` (every token
  updates, as the head's every token does);
* the head (spacy_hs.training.head_engine, the engine ``train_head`` uses) on that gensim model: the
  seconds of its training epochs alone, and of the whole run (encoding the token file, the
  held-out perplexity after every epoch: ``train_head``'s wall time): the directional head
  (the engine's defaults), and the n-gram head with configs/ptb.cfg's features and optimiser
  (orders 1-4, a table of 2**28 values, SGD, no dropout).

tokens/s = tokens of the file (gensim: ``corpus_total_words``) x epochs / seconds, for 1 and 2
threads; the ratios are head / gensim and 2 threads / 1 thread. Timings are the best of
``--repeats`` runs (the machine is shared).

Part 2, memory: peak RSS of head training, a whole fresh subprocess per run, on the bundled
default corpus (gensim's Wikipedia sample + Lee, preprocessed by ``spacy-hs preprocess``) and on
the same token file repeated ``--factor`` times, with the same gensim model. The child reports
its own peak (``VmHWM``, the kernel's high-water mark of its address space). Not ``ru_maxrss``
from ``wait4``: exec() carries the peak of the image it replaces, the parent's, into the
child's rusage, so a child of this 700 MB process would report at least 700 MB.

    OPENBLAS_NUM_THREADS=1 python bench/bench_head_train.py            # ~3 minutes
    python bench/bench_head_train.py --input corpus/train.txt --vector-size 100
    python bench/bench_head_train.py --skip-throughput --factor 30     # memory only, ~2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _quick import QUICK_HELP, first_lines, lee_corpus

EPOCHS = 3
CHILD = """
import json, sys, time
from gensim.models import Word2Vec
from spacy_hs import HSModel
from spacy_hs.training.config import head_settings
from spacy_hs.training.head_engine import token_lines, train_head_arrays
model = HSModel.from_gensim(Word2Vec.load(sys.argv[1]))
settings = head_settings(epochs=int(sys.argv[3]), patience=99, workers=int(sys.argv[4]),
                         **json.loads(sys.argv[5]))
arrays, history, _ = train_head_arrays(
    model, lambda: token_lines(sys.argv[2]), None, settings, progress=False
)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
peak_kb = int(status["VmHWM"].split()[0])
print(history["n_train_tokens"], sum(history["epoch_seconds"]), peak_kb)
"""


def gensim_seconds(path: Path, size: int, workers: int, sample: float, epochs: int):
    """(seconds of train(), tokens in the file, the trained model)."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=size,
        window=5,
        min_count=1,
        sg=0,
        hs=1,
        negative=0,
        sample=sample,
        workers=workers,
        seed=0,
    )
    model.build_vocab(corpus_file=str(path))
    start = time.perf_counter()
    model.train(corpus_file=str(path), total_words=model.corpus_total_words, epochs=epochs)
    return time.perf_counter() - start, model.corpus_total_words, model


# The head settings the README's figures were measured with: the directional head with SGD,
# and the n-gram head as configs/ptb.cfg trains it.
DIRECTIONAL = {
    "ngram_orders": 0,
    "optimizer": "sgd",
    "learn_rate": 0.05,
    "dense_learn_rate": 0.004,
}
NGRAM = {
    "ngram_orders": 4,
    "table_size": 1 << 28,
    "table_l2": 1e-6,
    "l2": 0.03,
    "dropout": 0.0,
    "optimizer": "sgd",
    "dense_optimizer": "sgd",
    "learn_rate": 0.04,
    "dense_learn_rate": 0.002,
    "table_learn_rate": 0.1,
}


def head_seconds(
    model, path: Path, workers: int, epochs: int, ngram: bool = False, table_size: int = 1 << 28
) -> tuple[float, float, int]:
    """(seconds of the training epochs, seconds of the whole run, training tokens)."""
    from spacy_hs import HSModel
    from spacy_hs.training.config import head_settings
    from spacy_hs.training.head_engine import token_lines, train_head_arrays

    hs_model = HSModel.from_gensim(model)
    options = {**NGRAM, "table_size": table_size} if ngram else DIRECTIONAL
    settings = head_settings(epochs=epochs, patience=99, workers=workers, **options)
    start = time.perf_counter()
    _, history, _ = train_head_arrays(
        hs_model, lambda: token_lines(path), None, settings, progress=False
    )
    total = time.perf_counter() - start
    return sum(history["epoch_seconds"]), total, history["n_train_tokens"]


def throughput(args: argparse.Namespace, path: Path) -> None:
    rows = {}
    for workers in (1, 2):
        best: dict[str, float] = {}
        for _ in range(args.repeats):
            for sample in (1e-3, 0.0):
                seconds, n_tokens, model = gensim_seconds(
                    path, args.vector_size, workers, sample, args.epochs
                )
                key = f"gensim sample={sample:g}"
                best[key] = max(best.get(key, 0), n_tokens * args.epochs / seconds)
            for kind, ngram in (("directional head", False), ("n-gram head", True)):
                epochs_s, total_s, n_train = head_seconds(
                    model, path, workers, args.epochs, ngram, args.table_size
                )
                key = f"{kind} (epochs)"
                best[key] = max(best.get(key, 0), n_train * args.epochs / epochs_s)
                key = f"{kind} (whole run)"
                best[key] = max(best.get(key, 0), n_train * args.epochs / total_s)
        rows[workers] = best
    print(
        f"\nThroughput on {path.name} ({n_tokens:,} tokens; the head trains on 95%, 5% held "
        f"out), d={args.vector_size}, {args.epochs} epochs, best of {args.repeats}:\n"
    )
    print(
        "| trainer | 1 thread tok/s | 2 threads tok/s | 2 / 1 | directional head / this | "
        "n-gram head / this |"
    )
    print("|---|---|---|---|---|---|")
    head2 = rows[2]["directional head (epochs)"]
    ngram2 = rows[2]["n-gram head (epochs)"]
    for name in rows[1]:
        one, two = rows[1][name], rows[2][name]
        print(
            f"| {name} | {one:,.0f} | {two:,.0f} | {two / one:.2f} | {head2 / two:.2f} | "
            f"{ngram2 / two:.2f} |"
        )


def memory(args: argparse.Namespace, tmp: Path) -> None:
    from gensim.models import Word2Vec

    from spacy_hs.corpus.preprocess import preprocess
    from spacy_hs.corpus.sources import extract_default_corpus

    token_file = tmp / "default.tok.txt"
    if args.quick:
        raw = tmp / "lee.txt"
        raw.write_text(first_lines(lee_corpus().read_text(encoding="utf8"), 100_000), "utf8")
        preprocess([raw], token_file, progress=False)
    else:
        raw_files = extract_default_corpus(tmp / "raw")
        preprocess([c.path for c in raw_files], token_file, progress=False)
    model = Word2Vec(
        corpus_file=str(token_file),
        vector_size=args.vector_size,
        window=5,
        min_count=3,
        sg=0,
        hs=1,
        negative=0,
        workers=2,
        epochs=1 if args.quick else 3,
        seed=0,
    )
    model_path = tmp / "w2v.model"
    model.save(str(model_path))
    rows = []
    for copies in (1, args.factor):
        corpus = tmp / f"corpus{copies}.txt"
        with corpus.open("wb") as out:
            for _ in range(copies):
                with token_file.open("rb") as source:
                    shutil.copyfileobj(source, out)
        start = time.perf_counter()
        process = subprocess.run(
            [sys.executable, "-c", CHILD, str(model_path), str(corpus), "2", str(2)]
            + [json.dumps(DIRECTIONAL)],
            stdout=subprocess.PIPE,
        )
        if process.returncode:
            raise SystemExit("head training failed")
        tokens, _, peak_kb = process.stdout.decode().split()
        rows.append((copies, int(tokens), int(peak_kb) / 1024, time.perf_counter() - start))
        corpus.unlink()
    print(
        f"\nPeak RSS of head training (2 epochs, 2 threads, d={args.vector_size}, "
        f"V={len(model.wv):,}) on the bundled default corpus, preprocessed, and repeated:\n"
    )
    print("| corpus | training tokens | peak RSS MB | wall s |")
    print("|---|---|---|---|")
    for copies, tokens, peak, seconds in rows:
        print(f"| {copies}x | {tokens:,} | {peak:.0f} | {seconds:.1f} |")
    print(f"\n{args.factor}x / 1x peak RSS: {rows[1][2] / rows[0][2]:.3f} (target <= 1.1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, help="token file (default: PTB train)")
    parser.add_argument("--vector-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--factor", type=int, default=10, help="memory: corpus repeats")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--table-size", type=int, default=NGRAM["table_size"], help="n-gram head")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:  # throughput on a slice of PTB train; memory on a slice of the Lee corpus
        args.vector_size, args.epochs, args.repeats, args.factor = 16, 1, 1, 2
        args.table_size = 1 << 16
    print(
        f"# python {platform.python_version()}, {os.cpu_count()} CPUs, load average before: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = args.input
        if path is None and not args.skip_throughput:
            import treebank

            path = tmp / "ptb.train.txt"
            lines = [line.split() for line in treebank.penn["train"].split("\n")]
            lines = lines[:2000] if args.quick else lines
            path.write_text("".join(" ".join(t) + "\n" for t in lines if t), encoding="utf8")
        if not args.skip_throughput:
            throughput(args, path)
        if not args.skip_memory:
            memory(args, tmp)
    print(
        f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
        f"reproduce: python bench/bench_head_train.py {' '.join(sys.argv[1:])}"
    )


if __name__ == "__main__":
    main()
