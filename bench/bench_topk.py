"""Per-query latency of spacy-hs's exact top-10 against gensim and full HS enumeration.

Compared, in the same run, on the same contexts (4 words each), single BLAS thread:

* ours: ``HSModel.predict_output_word(context, topn=10)``, a best-first search of the Huffman tree
  (exact: it is checked against full enumeration below);
* gensim: ``Word2Vec.predict_output_word``, which scores the whole vocabulary with the
  negative-sampling layer (``syn1neg``) and a softmax: what gensim users get today;
* full HS: ``HSModel.probabilities`` (one matrix-vector product and one O(V) pass over the tree)
  followed by ``argpartition``: the obvious exact alternative.

Synthetic models at each V: a gensim ``Word2Vec(hs=1, negative=5)`` whose vocabulary comes from
Zipf counts through ``build_vocab_from_freq`` (so gensim builds the Huffman tree), with random
weights. Plus one real model trained here on Penn Treebank (or the Lee corpus).

    python bench/bench_topk.py                          # V = 10k, 100k, 1M and PTB
    python bench/bench_topk.py --sizes 10000,100000     # quicker

Trained next-word heads: ``--heads DIR [DIR ...]`` times ``HSModel.predict_next(context,
top_k=10)`` (the head's own exact best-first search, Python included) for each saved model, on
the same Penn Treebank test contexts (the last 5 words before each token), as ratios to the
first. For example the default directional head against the n-gram head of configs/ptb.cfg,
both trained by ``bench/bench_ptb.py --out DIR``::

    python bench/bench_topk.py --sizes "" --real none \
        --heads DIR/default_head DIR/recipe/hs_model
"""

from __future__ import annotations

import os

# Single-threaded BLAS for per-query latency; must be set before numpy is imported.
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
for _var in THREAD_VARS:
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import gensim  # noqa: E402
import numpy as np  # noqa: E402
from _quick import QUICK_HELP  # noqa: E402
from gensim.models import Word2Vec  # noqa: E402

from spacy_hs import HSModel, _tree_search  # noqa: E402
from spacy_hs.heads.cbow import hidden_from_ids  # noqa: E402

LEE = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
TOPN = 10
CONTEXT_SIZE = 4
BATCH = 50


def log(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def zipf_model(n_words: int, dims: int, dot_std: float, seed: int) -> Word2Vec:
    """A gensim HS + NS model over a Zipf vocabulary, with random weights.

    Counts follow Zipf's law (count of rank r = ceil(5 V / r)), so gensim's Huffman tree has the
    shape of a real corpus's. Input vectors are N(0, (2 / sqrt(d))^2), so the mean of 4 has norm
    about 1; inner-node and NS output weights are N(0, dot_std^2), so the dot products that decide
    each branch have standard deviation about ``dot_std``.
    """
    ranks = np.arange(1, n_words + 1, dtype=np.float64)
    counts = np.ceil(5 * n_words / ranks).astype(np.int64)
    freqs = {f"w{i}": int(c) for i, c in enumerate(counts)}
    model = Word2Vec(
        vector_size=dims, hs=1, negative=5, min_count=1, sample=0, workers=1, seed=seed
    )
    start = time.perf_counter()
    log(f"V={n_words:,}: gensim builds the vocabulary and Huffman tree (1M words take ~40 s)")
    model.build_vocab_from_freq(freqs)
    log(f"V={n_words:,}: built in {time.perf_counter() - start:.1f} s; drawing random weights")
    rng = np.random.default_rng(seed)
    shape = (n_words, dims)
    model.wv.vectors[:] = rng.standard_normal(shape, dtype=np.float32) * (2 / math.sqrt(dims))
    model.syn1[:] = rng.standard_normal(shape, dtype=np.float32) * dot_std
    model.syn1neg[:] = rng.standard_normal(shape, dtype=np.float32) * dot_std
    return model


def ptb_model(dims: int, seed: int) -> tuple[Word2Vec, list[list[str]]]:
    """CBOW trained here on Penn Treebank train (hs=1 and negative=5, so gensim can answer too);
    contexts are the 4 words before each position of PTB valid."""
    import treebank

    train = [line.split() for line in treebank.penn["train"].split("\n") if line.strip()]
    valid = [line.split() for line in treebank.penn["valid"].split("\n") if line.strip()]
    log("training CBOW on PTB train (hs=1, negative=5, 5 epochs)")
    model = Word2Vec(
        train, vector_size=dims, window=4, hs=1, negative=5, min_count=1, epochs=5,
        workers=2, seed=seed,
    )  # fmt: skip
    contexts = [s[i - CONTEXT_SIZE : i] for s in valid for i in range(CONTEXT_SIZE, len(s))]
    return model, contexts


def lee_model(dims: int, seed: int) -> tuple[Word2Vec, list[list[str]]]:
    """CBOW trained here on gensim's Lee corpus; contexts are 4-word windows of the same text."""
    sentences = [line.split() for line in LEE.read_text(encoding="utf8").splitlines()]
    log("training CBOW on the Lee corpus (hs=1, negative=5, 20 epochs)")
    model = Word2Vec(
        sentences, vector_size=dims, window=4, hs=1, negative=5, min_count=2, epochs=20,
        workers=2, seed=seed,
    )  # fmt: skip
    contexts = [s[i - CONTEXT_SIZE : i] for s in sentences for i in range(CONTEXT_SIZE, len(s))]
    return model, contexts


def median_us(function: Callable[[list], object], contexts: Sequence[list]) -> float:
    """Median wall time of one call, in microseconds (medians shrug off the pauses other
    processes on the machine cause)."""
    timer = time.perf_counter_ns
    times = []
    for context in contexts:
        start = timer()
        function(context)
        times.append(timer() - start)
    return float(np.median(times)) / 1000


def full_hs_top(model: HSModel, context: list[str]) -> np.ndarray:
    """Exact top-10 by scoring every word: the O(V) baseline."""
    probs = model.probabilities(context)
    top = np.argpartition(-probs, TOPN)[:TOPN]
    return top[np.argsort(-probs[top])]


def check_exact(model: HSModel, contexts: Sequence[list[str]]) -> None:
    """Our top-10 has the same words and probabilities as full enumeration (near-ties may swap)."""
    for context in contexts:
        probs = model.probabilities(context)
        ours = model.predict_output_word(context, TOPN)
        expected = probs[full_hs_top(model, context)]
        got = np.array([p for _, p in ours])
        ids = [model.key_to_index[w] for w, _ in ours]
        if not (np.allclose(got, expected, rtol=1e-5, atol=0) and np.allclose(probs[ids], got)):
            raise AssertionError(f"top-{TOPN} differs from full enumeration for {context}")


def perplexity(model: HSModel, contexts: Sequence[list[str]]) -> float:
    """Median exp(entropy) of the HS distribution: 1 is one-hot, V is uniform."""
    values = []
    for context in contexts:
        probs = model.probabilities(context)
        nonzero = probs[probs > 0]
        values.append(math.exp(-float(np.sum(nonzero * np.log(nonzero)))))
    return float(np.median(values))


def bench_one(
    label: str,
    gensim_model: Word2Vec,
    contexts: Sequence[list[str]],
    n_fast: int,
    n_slow: int,
    rng: np.random.Generator,
) -> dict[str, float | str]:
    log(f"{label}: copying the HS layer from gensim")
    model = HSModel.from_gensim(gensim_model)
    order = rng.permutation(len(contexts))
    fast = [contexts[i] for i in order[:n_fast]]
    slow = fast[:n_slow]
    log(f"{label}: checking exactness on {len(slow)} contexts")
    check_exact(model, slow)
    hidden, has_context = hidden_from_ids(model, [model.word_ids(c) for c in fast])
    _, _, expanded = _tree_search.top_k(
        hidden[has_context], model.inner_node_weights, model.tree.children, model.tree.root, TOPN
    )
    log(f"{label}: timing")
    for context in fast[:50]:  # warm-up
        model.predict_output_word(context, TOPN)
    ours = median_us(lambda c: model.predict_output_word(c, TOPN), fast)
    chunks = [fast[i : i + BATCH] for i in range(0, len(fast) - BATCH + 1, BATCH)]
    ours_batch = median_us(lambda c: model.predict_output_word_batch(c, TOPN), chunks) / BATCH
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gensim_us = median_us(lambda c: gensim_model.predict_output_word(c, topn=TOPN), slow)
    full = median_us(lambda c: full_hs_top(model, c), slow)
    depths = model.tree.depths()
    return {
        "model": label,
        "V": len(model),
        "mean depth": float(np.average(depths, weights=model.counts)),
        "perplexity": perplexity(model, slow[:20]),
        "nodes": float(expanded.mean()),
        "ours": ours,
        "batch": ours_batch,
        "gensim": gensim_us,
        "full": full,
    }


def print_table(rows: list[dict[str, float | str]]) -> None:
    header = (
        f"{'model':<10} {'V':>9} {'log2 V':>6} {'depth':>5} {'perpl.':>7} {'nodes':>6} "
        f"{'nodes/log2V':>11} {'ours us':>8} {'batch us':>8} {'gensim us':>10} "
        f"{'full-HS us':>10} {'gensim/ours':>11} {'full/ours':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        log2 = math.log2(row["V"])
        print(
            f"{row['model']:<10} {row['V']:>9,} {log2:>6.1f} {row['mean depth']:>5.1f} "
            f"{row['perplexity']:>7.0f} {row['nodes']:>6.0f} {row['nodes'] / log2:>11.1f} "
            f"{row['ours']:>8.1f} {row['batch']:>8.1f} {row['gensim']:>10.0f} "
            f"{row['full']:>10.0f} {row['gensim'] / row['ours']:>10.0f}x "
            f"{row['full'] / row['ours']:>8.0f}x"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="comma-separated vocabulary sizes of the synthetic Zipf models",
    )
    parser.add_argument("--dims", type=int, default=100, help="vector size d")
    parser.add_argument(
        "--dot-std",
        type=float,
        default=1.0,
        help="std of the synthetic inner-node dot products (sets how peaked the distributions are)",
    )
    parser.add_argument("--queries", type=int, default=2000, help="contexts timed for our top-10")
    parser.add_argument(
        "--slow-queries",
        type=int,
        default=100,
        help="contexts timed for gensim and full enumeration (they take milliseconds each)",
    )
    parser.add_argument(
        "--real",
        choices=["ptb", "lee", "none"],
        default="ptb",
        help="the real trained model: Penn Treebank, gensim's Lee corpus, or none",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--heads",
        nargs="*",
        type=Path,
        default=[],
        help="saved models whose trained heads to time (predict_next, top-10), on PTB test",
    )
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.dims, args.queries, args.slow_queries = "2000", 16, 50, 5
        args.real = "none"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    command = "python bench/bench_topk.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"# exact HS top-{TOPN}: spacy-hs vs gensim predict_output_word vs full HS enumeration")
    print(f"# command: {command.strip()}")
    print(
        f"# single BLAS thread: {', '.join(THREAD_VARS)} set to 1 before numpy was imported; "
        f"python {platform.python_version()}, numpy {np.__version__}, gensim {gensim.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"# synthetic models: Zipf counts (count of rank r = ceil(5 V / r)), d={args.dims}, "
        f"input vectors N(0, (2/sqrt(d))^2), syn1 and syn1neg N(0, {args.dot_std}^2): "
        f"dot products of a {CONTEXT_SIZE}-word mean context have std ~{args.dot_std}"
    )
    print(
        f"# latencies: median per query over {args.queries} contexts of {CONTEXT_SIZE} words "
        f"(ours), {args.slow_queries} (gensim, full HS); 'batch' = predict_output_word_batch "
        f"on {BATCH} contexts at a time, median per call / {BATCH}"
    )
    print(
        f"# exactness: on every model our top-{TOPN} is checked against full enumeration "
        f"(same probabilities rank by rank, within 1e-5 relative) for the {args.slow_queries} "
        "gensim contexts; the run stops if one differs"
    )
    print(
        "# nodes = mean inner nodes expanded by the best-first search; perpl. = median "
        "perplexity of the HS distribution (1 = one-hot, V = uniform); depth = mean Huffman "
        "depth weighted by count"
    )
    rng = np.random.default_rng(args.seed)
    rows = []
    for n_words in sizes:
        model = zipf_model(n_words, args.dims, args.dot_std, args.seed)
        p = np.array([model.wv.get_vecattr(i, "count") for i in range(n_words)], dtype=np.float64)
        ids = rng.choice(n_words, size=(args.queries, CONTEXT_SIZE), p=p / p.sum())
        contexts = [[model.wv.index_to_key[i] for i in row] for row in ids]
        rows.append(bench_one("zipf", model, contexts, args.queries, args.slow_queries, rng))
        del model
    if args.real != "none":
        model, contexts = (ptb_model if args.real == "ptb" else lee_model)(args.dims, args.seed)
        rows.append(bench_one(args.real, model, contexts, args.queries, args.slow_queries, rng))
    if rows:
        print_table(rows)
    if args.heads:
        bench_heads(args.heads, args.queries)


def bench_heads(model_dirs: Sequence[Path], queries: int) -> None:
    """Median latency of one exact top-10 query of each saved model's trained head."""
    import treebank

    lines = [line.split() + ["<eos>"] for line in treebank.penn["test"].split("\n") if line.split()]
    contexts = [line[max(0, t - 5) : t] for line in lines for t in range(len(line))]
    contexts = contexts[:: max(1, len(contexts) // queries)][:queries]
    print(f"\n# trained heads: median of {len(contexts)} PTB test contexts, predict_next top-10")
    print("| model | head | d | microseconds / query | ratio |")
    print("|---|---|---|---|---|")
    first = None
    for directory in model_dirs:
        model = HSModel.from_disk(directory)
        microseconds = median_us(lambda c, m=model: m.predict_next(c, top_k=TOPN), contexts)
        first = first or microseconds
        print(
            f"| {directory} | {model.head().name} | {model.vector_size} | "
            f"{microseconds:.1f} | {microseconds / first:.2f} |"
        )


if __name__ == "__main__":
    main()
