"""Time and size of the surprisal view (``spacy_hs.render``), against the targets.

Targets (issue 11): a 1,000-token doc renders, with exact ranks and entropies, in <= 1 s on the
default model; the page of 10 docs of 1,000 tokens is <= 2 MB.

Compared side by side, in the same run, on the same 1,000-token doc (medians of ``--repeats``
interleaved runs, CPU and wall time, one BLAS thread):

* ``nlp(text)``: the pipeline itself (tokenizer, sentencizer, ``hs_predictor``'s eager
  log-probabilities): what the doc costs before any view;
* top-k only: the best-first tree search for the top 5 at every position, what a view without
  ranks and entropies (or with GLTR's truncated ones) would need;
* ``doc_surprisal``: exact rank and entropy at every position, over the whole vocabulary (all V
  log-probabilities per position, in chunks);
* ``render(doc, page=True)``: all of the above plus the page.

The default model (``spacy project run all`` on the bundled corpus) has 13,061 words, d = 100
and a directional head with K = 5. Without ``--model``, a model of that size is built here: the
words of the benchmark text plus filler words, Zipf counts, random weights, one epoch on the
text, and an untrained directional head (the cost of the exact distribution does not depend on
the weights). With ``--model`` (an HSModel or pipeline directory, e.g. ``training/hs_model``)
that model is used.

    python bench/bench_render.py
    python bench/bench_render.py --model training/hs_model
"""

from __future__ import annotations

import os

# Single-threaded BLAS: per-doc latency on one core; set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import gensim  # noqa: E402
import numpy as np  # noqa: E402
import spacy  # noqa: E402
from _quick import QUICK_HELP  # noqa: E402
from bench_pipeline import build_model  # noqa: E402
from spacy.language import Language  # noqa: E402

from spacy_hs import render  # noqa: E402
from spacy_hs.heads.directional import DirectionalHead  # noqa: E402
from spacy_hs.pipeline.package import build_pipeline, load_predictor_pipeline  # noqa: E402
from spacy_hs.view.surprisal import SCORED, doc_surprisal  # noqa: E402

TEST_DATA = Path(gensim.__file__).parent / "test" / "test_data"
DEFAULT_WORDS = 13_061  # the default workflow's vocabulary (docs/benchmarks.md)
TIME_TARGET = 1.0  # seconds per 1,000-token doc
SIZE_TARGET = 2_000_000  # bytes for 10 docs of 1,000 tokens
DOC_TOKENS = 1000
N_DOCS = 10


def stories() -> list[str]:
    """Lee news stories: the 50 test ones (lee.cor) first, then the 300 background ones."""
    lines = []
    for name in ("lee.cor", "lee_background.cor"):
        text = (TEST_DATA / name).read_bytes().decode("utf8", errors="replace")
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def docs_of(nlp: Language, texts: list[str], n_docs: int, n_tokens: int) -> list[str]:
    """``n_docs`` texts of exactly ``n_tokens`` spaCy tokens, cut from consecutive stories."""
    tokenizer = nlp.tokenizer
    joined = " ".join(texts)
    docs, start = [], 0
    for _ in range(n_docs):
        doc = tokenizer(joined[start : start + 12 * n_tokens])
        if len(doc) <= n_tokens:
            raise SystemExit("not enough text for the requested docs")
        end = start + doc[n_tokens].idx
        text = joined[start:end].rstrip()
        while len(tokenizer(text)) > n_tokens:  # a cut inside a token can split it in two
            text = text[: text.rstrip().rfind(" ")].rstrip()
        docs.append(text)
        start = end
    return docs


def median_times(
    functions: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (CPU seconds of this process, wall seconds) of each function, the runs
    interleaved so that a burst of load on the machine hits them all alike. The work is
    single-threaded, so CPU time is what the wall time is on an idle machine; on a shared one
    the wall time also counts the waits for a core."""
    for function in functions.values():
        function()  # warm-up: caches, lazy imports
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in functions}
    for _ in range(repeats):
        for label, function in functions.items():
            cpu, wall = time.process_time(), time.perf_counter()
            function()
            times[label].append((time.process_time() - cpu, time.perf_counter() - wall))
    return {
        label: (statistics.median(c for c, _ in values), statistics.median(w for _, w in values))
        for label, values in times.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="HSModel or pipeline directory to use")
    parser.add_argument("--words", type=int, default=DEFAULT_WORDS, help="built model: V")
    parser.add_argument("--dim", type=int, default=100, help="built model: vector size d")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per system")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args(argv)
    if args.quick:
        args.words, args.dim, args.repeats = 2_000, 16, 1

    command = "python bench/bench_render.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    print("# surprisal view: render time of a 1,000-token doc and size of a 10-doc page")
    print(f"# command: {command.strip()}")
    print(
        f"# one BLAS thread; python {platform.python_version()}, numpy {np.__version__}, "
        f"spacy {spacy.__version__}, {platform.processor() or platform.machine()}"
    )
    texts = stories()
    if args.model is not None:
        nlp, component = load_predictor_pipeline(args.model)
        origin = f"{args.model}"
    else:
        model = build_model(texts, args.words, args.dim, train_epochs=1)
        model.trained_head = DirectionalHead.from_hs_model(
            model, context_size=5, diagonal=True, fine_tune_vectors=True
        )
        nlp = build_pipeline(model)
        component = nlp.get_pipe("hs_predictor")
        origin = "built here (Zipf counts, random weights, 1 epoch, untrained directional head)"
    model = component.model
    head = component.head
    print(
        f"# model: {origin}: V = {len(model):,}, d = {model.vector_size}, head "
        f"{head.name} (K = {component.context_size or head.context_size})"
    )
    doc_texts = docs_of(nlp, texts, N_DOCS, DOC_TOKENS)
    doc = nlp(doc_texts[0])
    result = doc_surprisal(doc)
    print(
        f"# doc: {len(doc):,} tokens, {result.counts[SCORED]:,} scored, "
        f"{sum(r is not None for r in result.entropies):,} with an exact entropy; "
        f"perplexity {result.perplexity:.1f}\n"
    )

    top_k_positions = _top_k_only(component, doc)
    systems = {
        "nlp(text): the pipeline, before any view": lambda: nlp(doc_texts[0]),
        "top-5 only at every position (tree search)": top_k_positions,
        "doc_surprisal: exact ranks and entropies": lambda: doc_surprisal(doc),
        "render(doc, page=True)": lambda: render(doc, page=True, jupyter=False),
    }
    times = median_times(systems, args.repeats)
    render_time, render_wall = times["render(doc, page=True)"]
    print(f"{'system (1,000-token doc)':<45} {'CPU s':>7} {'wall s':>7} {'CPU vs render':>13}")
    print("-" * 75)
    for label, (cpu, wall) in times.items():
        print(f"{label:<45} {cpu:>7.3f} {wall:>7.3f} {cpu / render_time:>12.2f}x")
    tracemalloc.start()
    render(doc, page=True, jupyter=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"peak memory of render (tracemalloc): {peak / 1e6:.1f} MB")
    verdict = "met" if render_time <= TIME_TARGET else "NOT met"
    print(
        f"target render <= {TIME_TARGET:.1f} s: {render_time:.3f} s CPU "
        f"({render_wall:.3f} s wall), {verdict}\n"
    )

    docs = list(nlp.pipe(doc_texts))
    start = time.perf_counter()
    page = render(docs, page=True, jupyter=False)
    seconds = time.perf_counter() - start
    minified = render(docs, page=True, minify=True, jupyter=False)
    n_tokens = sum(len(d) for d in docs)
    print(f"{'page: 10 docs':<28} {'tokens':>7} {'bytes':>11} {'bytes/token':>11} {'gzip':>10}")
    print("-" * 71)
    for label, html in (("render(page=True)", page), ("render(page=True, minify)", minified)):
        size = len(html.encode("utf8"))
        zipped = len(gzip.compress(html.encode("utf8")))
        print(f"{label:<28} {n_tokens:>7,} {size:>11,} {size / n_tokens:>11.1f} {zipped:>10,}")
    size = len(page.encode("utf8"))
    verdict = "met" if size <= SIZE_TARGET else "NOT met"
    print(f"render time of the 10 docs: {seconds:.2f} s")
    print(f"target page <= {SIZE_TARGET / 1e6:.0f} MB: {size / 1e6:.2f} MB, {verdict}")


def _top_k_only(component, doc) -> Callable[[], object]:
    """The best-first top-5 at each position (no rank, no entropy): contexts as render's."""
    head = component.head

    def run() -> object:
        return head.top_k(component.token_contexts(doc), 5)

    return run


if __name__ == "__main__":
    main()
