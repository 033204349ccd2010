"""Penn Treebank next-word benchmark: the configs/ptb.cfg recipe, an ablation of its levers, and
KenLM's modified Kneser-Ney 5-gram, measured in one run.

The standard protocol: Mikolov's split (the `treebank` package), one sentence per line with
`<eos>` appended as a word, `<unk>` a word of the 10,000-word vocabulary, every token scored
(82,430 test tokens), a sentence's first word from the sentence start. Settings are chosen on
`valid` (`--heldout`: early stopping and the learning-rate schedule); `test` is scored once per
row, through the saved model's public API (`HSModel.from_disk`, `log_prob_next_batch`,
`predict_next_batch`).

Rows:
* the recipe: `spacy-hs train ptb.train.txt OUT --heldout ptb.valid.txt --config configs/ptb.cfg`
  run as a command, gensim included (its wall time is the recipe's training time);
* the ablation, on the same gensim model: each lever of the recipe off in turn (n-gram
  features; order 4; the table size curve), the previous default (configs/default.cfg's
  directional head, `ngram_orders = 0`) and today's configs/default.cfg head;
* the recipe with the document cache its training tuned on `valid` (``spacy_hs.cache``):
  ``log_prob_stream(test, cache="auto")`` over the test set as one stream, in order;
  and each test sentence as its own document (first 5, 10 words, whole) with and without it;
* the CBOW-style head of the same model (no head training; the unigram at sentence starts);
* the recurrent recipe, configs/ptb_recurrent.cfg (embeddings and an LSTM, with the n-gram
  node term: RNNME), trained by `spacy-hs train` as a command, gensim included; scored as the
  test set as one stream (`log_prob_stream`, the LSTM's state carried across sentences),
  without and with its document cache; hit@1 and the top-10 latency from `HSModel.document`;
* KenLM `lmplz -o 5` on the same training file (`<unk>` renamed, as lmplz reserves it),
  scored by `query`, when both are on the PATH; else its published figure.

Columns: test perplexity and its ratio to KN5's, hit@1, head training seconds, the median
latency of one exact top-10 query (`predict_next`, Python included), the model directory's size.
Then the scoring throughput of `log_prob_stream` over the test set (one thread) beside KenLM's
`query`.

    OPENBLAS_NUM_THREADS=1 python bench/bench_ptb.py            # ~15 minutes on 2 cores
    OPENBLAS_NUM_THREADS=1 python bench/bench_ptb.py --recipe-only  # the recipe and KN5 only
    python bench/bench_ptb.py --quick    # tiny settings and data, seconds: the script runs
    OPENBLAS_NUM_THREADS=1 python bench/bench_ptb.py --recurrent  # the recurrent recipe, KN5
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _quick import QUICK_HELP

ROOT = Path(__file__).resolve().parent.parent
EOS = "<eos>"
PUBLISHED = [  # Mikolov (2012), thesis, Table 4.1; Zaremba et al. (2014)
    ("KN5 (published)", 141.2),
    ("RNNLM (published)", 124.7),
    ("LSTM, 2 layers, small (published)", 114.5),
]


# --quick: tiny settings; the first QUICK_LINES lines of train, and its first hundred lines as
# valid and test (so that every test word is in the vocabulary).
QUICK_LINES = 2000
QUICK_OVERRIDES = {
    "word2vec.vector_size": 16,
    "word2vec.epochs": 1,
    "head.epochs": 1,
    "head.table_size": 1 << 16,
    "head.workers": 1,
}


def write_splits(directory: Path, quick: bool = False) -> dict[str, Path]:
    """PTB splits as token files, `<eos>` appended to every line."""
    import treebank

    paths = {}
    for split in ("train", "valid", "test"):
        path = directory / f"ptb.{split}.txt"
        if quick:
            text = treebank.penn["train"].split("\n")[: QUICK_LINES if split == "train" else 100]
        else:
            text = treebank.penn[split].split("\n")
        lines = [line.split() for line in text]
        path.write_text("".join(" ".join([*t, EOS]) + "\n" for t in lines if t), encoding="utf8")
        paths[split] = path
    return paths


def sentences(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf8").splitlines()]


def score(model_dir: Path, test: list[list[str]], head: str = "auto") -> dict[str, float]:
    """Test perplexity and hit@1 through the saved model's public API, the median latency of
    one exact top-10 query, and the model directory's size."""
    from spacy_hs import HSModel

    model = HSModel.from_disk(model_dir)
    contexts = [line[:t] for line in test for t in range(len(line))]
    words = [w for line in test for w in line]
    log_probs = model.log_prob_next_batch(words, contexts, head=head)
    top = model.predict_next_batch(contexts, top_k=1, head=head)  # warn=False: CBOW's starts
    predicted = [found[0][0] if found else None for found in top]
    missing = np.isnan(log_probs)
    if missing.any():  # the CBOW head has no sentence starts: the unigram there
        counts = model.counts / model.counts.sum()
        log_probs[missing] = np.log(
            counts[[model.key_to_index[w] for w in np.array(words)[missing]]]
        )
        predicted = [p if p is not None else model.words[0] for p in predicted]
    latencies = []
    for context in contexts[:: max(1, len(contexts) // 2000)]:
        start = time.perf_counter()
        model.predict_next_batch([context], top_k=10, head=head)
        latencies.append(time.perf_counter() - start)
    return {
        "perplexity": math.exp(-float(np.mean(log_probs))),
        "hit1": float(np.mean([p == w for p, w in zip(predicted, words)])),
        "topk_us": 1e6 * float(np.median(latencies)),
        "size_mb": sum(f.stat().st_size for f in model_dir.iterdir()) / 1e6,
    }


def score_with_cache(model_dir: Path, test: list[list[str]]) -> dict[str, float] | None:
    """The recipe with its document cache (tuned on valid by training): test perplexity by
    ``log_prob_stream(test, cache="auto")``, the test set as one stream in its order; hit@1
    and the median top-10 latency at one position (a full cache) from ``HSModel.document``,
    beside the same without the cache."""
    from spacy_hs import HSModel

    model = HSModel.from_disk(model_dir)
    cache = model.cache_settings()
    if cache is None:
        return None
    log_probs = model.log_prob_stream(test, cache="auto")
    ids = np.array([model.key_to_index[w] for s in test for w in s], dtype=np.int32)
    lengths = np.array([len(s) for s in test])
    document = model.document(ids, lengths, cache="auto")
    top, _ = document.top_k_at(np.arange(len(ids)), 1)
    positions = range(cache.size, len(ids), max(1, len(ids) // 2000))
    latencies = {}
    for name, doc in (("cache", document), ("plain", model.document(ids, lengths, cache=None))):
        times = []
        for position in positions:
            start = time.perf_counter()
            doc.top_k_at(np.array([position]), 10)
            times.append(time.perf_counter() - start)
        latencies[name] = 1e6 * float(np.median(times))
    return {
        "perplexity": math.exp(-float(np.mean(log_probs))),
        "hit1": float((top[:, 0] == ids).mean()),
        "topk_us": latencies["cache"],
        "topk_plain_us": latencies["plain"],
        "size": cache.size,
        "weight": cache.weight,
        "ramp": cache.ramp,
        "delay": cache.delay,
        "short": short_documents(model_dir, test),
        "size_mb": sum(f.stat().st_size for f in model_dir.iterdir()) / 1e6,
    }


SHORT_CUTS = (5, 10, None)  # each test sentence as its own document: its first 5, 10 words, all


def short_documents(model_dir: Path, test: list[list[str]]) -> list[tuple[str, float, float]]:
    """Each test sentence as its own document (the cache starts empty at each), cut to 5 and
    10 words and whole: (cut, test perplexity with the saved cache, without a cache)."""
    from spacy_hs import HSModel
    from spacy_hs.document import Documents

    model = HSModel.from_disk(model_dir)
    rows = []
    for cut in SHORT_CUTS:
        cut_test = [s[:cut] for s in test if s]
        ids = np.array([model.key_to_index[w] for s in cut_test for w in s], dtype=np.int32)
        lengths = np.array([len(s) for s in cut_test])
        perplexities = []
        for cache in ("auto", None):
            documents = Documents(
                ids,
                lengths,
                model.head("auto"),
                model.cache_settings(cache),
                n_words=len(model),
                document_lengths=lengths,
            )
            perplexities.append(math.exp(-float(np.mean(documents.log_probs()))))
        rows.append((f"first {cut} words" if cut else "whole sentence", *perplexities))
    return rows


def score_stream(model_dir: Path, test: list[list[str]], cache: object) -> dict[str, float]:
    """A head that reads the test set as one stream (the recurrent head): test perplexity by
    ``log_prob_stream(test, cache=cache)``; hit@1 and the median top-10 latency at one
    position from ``HSModel.document`` (the same history)."""
    from spacy_hs import HSModel

    model = HSModel.from_disk(model_dir)
    log_probs = model.log_prob_stream(test, cache=cache)
    ids = np.array([model.key_to_index[w] for s in test for w in s], dtype=np.int32)
    lengths = np.array([len(s) for s in test])
    document = model.document(ids, lengths, cache=cache)
    top, _ = document.top_k_at(np.arange(len(ids)), 1)
    times = []
    for position in range(1000, len(ids), max(1, len(ids) // 2000)):
        start = time.perf_counter()
        document.top_k_at(np.array([position]), 10)
        times.append(time.perf_counter() - start)
    settings = model.cache_settings(cache)
    return {
        "perplexity": math.exp(-float(np.mean(log_probs))),
        "hit1": float((top[:, 0] == ids).mean()),
        "topk_us": 1e6 * float(np.median(times)),
        "size_mb": sum(f.stat().st_size for f in model_dir.iterdir()) / 1e6,
        **(
            {
                "size": settings.size,
                "weight": settings.weight,
                "ramp": settings.ramp,
                "delay": settings.delay,
                "short": short_documents(model_dir, test),
            }
            if settings
            else {}
        ),
    }


def cache_label(cached: dict[str, Any]) -> str:
    """The saved cache's settings, as a row label's parenthesis."""
    return (
        f"(N = {cached['size']}, λ_max = {cached['weight']:.2f}, c = {cached['ramp']:g}, "
        f"m = {cached['delay']})"
    )


def recurrent_rows(
    paths: dict[str, Path], config: Path, workdir: Path, test: list[list[str]]
) -> tuple[list[tuple[str, dict[str, float], float]], float, float]:
    """The recurrent recipe trained by `spacy-hs train`: its rows without and with
    the document cache, its wall seconds (gensim included) and its stream's tokens/s."""
    from spacy_hs import HSModel

    wall = train_recipe(paths, config, workdir / "recurrent")
    model_dir = workdir / "recurrent" / "hs_model"
    head_s = HSModel.from_disk(model_dir).meta["head"]["train_seconds"]
    rows = [
        (
            f"recurrent: {config.name} (LSTM + n-gram node term)",
            score_stream(model_dir, test, None),
            head_s,
        )
    ]
    cached = score_stream(model_dir, test, "auto")
    if "size" in cached:
        label = f"recurrent + document cache {cache_label(cached)}"
        rows.append((label, cached, head_s))
    return rows, wall, stream_speed(model_dir, test, repeats=2)


def stream_speed(model_dir: Path, test: list[list[str]], repeats: int = 5) -> float:
    """Tokens per second of ``log_prob_stream`` over the test set (best of ``repeats``)."""
    from spacy_hs import HSModel

    model = HSModel.from_disk(model_dir)
    n_tokens, best = sum(len(s) for s in test), math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.log_prob_stream(test)
        best = min(best, time.perf_counter() - start)
    return n_tokens / best


def kenlm(paths: dict[str, Path], workdir: Path) -> dict[str, float] | None:
    """KN5 by lmplz, scored by query: perplexity, tokens/s, training seconds, binary size."""
    if not (shutil.which("lmplz") and shutil.which("query") and shutil.which("build_binary")):
        return None
    renamed = {}
    for split, path in paths.items():  # lmplz reserves <unk>: PTB's <unk> is a word
        renamed[split] = workdir / f"kenlm.{split}.txt"
        text = path.read_text(encoding="utf8").replace("<unk>", "UNK").replace(f" {EOS}\n", "\n")
        renamed[split].write_text(text, encoding="utf8")
    arpa, binary = workdir / "kn5.arpa", workdir / "kn5.bin"
    start = time.perf_counter()
    with renamed["train"].open("rb") as source, arpa.open("wb") as out:
        subprocess.run(
            ["lmplz", "-o", "5"], stdin=source, stdout=out, check=True, stderr=subprocess.DEVNULL
        )
    subprocess.run(["build_binary", str(arpa), str(binary)], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with renamed["test"].open("rb") as source:
        out = subprocess.run(
            ["query", "-v", "summary", str(binary)],
            stdin=source,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    perplexity = float(out.split("Perplexity including OOVs:")[1].split()[0])
    many = workdir / "kenlm.test50.txt"  # one pass is too short to time
    many.write_text(renamed["test"].read_text(encoding="utf8") * 50, encoding="utf8")
    n_tokens = 50 * sum(len(line.split()) + 1 for line in renamed["test"].open(encoding="utf8"))
    best = math.inf
    for _ in range(3):
        with many.open("rb") as source:
            start = time.perf_counter()
            subprocess.run(
                ["query", "-v", "summary", str(binary)],
                stdin=source,
                capture_output=True,
                check=True,
            )
            best = min(best, time.perf_counter() - start)
    return {
        "perplexity": perplexity,
        "tokens_per_s": n_tokens / best,
        "train_s": seconds,
        "size_mb": binary.stat().st_size / 1e6,
    }


def train_recipe(paths: dict[str, Path], config: Path, out: Path, quick: bool = False) -> float:
    """`spacy-hs train` with the recipe; its wall seconds (gensim included)."""
    overrides = [f"--{key}={value}" for key, value in QUICK_OVERRIDES.items()] if quick else []
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy_hs",
            "train",
            str(paths["train"]),
            str(out),
            "--heldout",
            str(paths["valid"]),
            "--config",
            str(config),
            "--save-gensim",
            *overrides,
        ],
        check=True,
        stdout=subprocess.DEVNULL if quick else None,
    )
    return time.perf_counter() - start


def train_variant(
    gensim_path: Path, paths: dict[str, Path], config: Path, out: Path, **head: object
) -> float:
    """The recipe's head with some settings changed, on the recipe's gensim model; saved to
    ``out``. Returns the head's training seconds."""
    from gensim.models import Word2Vec

    from spacy_hs import HSModel
    from spacy_hs.training.config import head_settings, load_config, resolve_config
    from spacy_hs.training.head import attach_head, train_head

    settings = head_settings(resolve_config(load_config(config))["head"], **head)
    model = HSModel.from_gensim(Word2Vec.load(str(gensim_path)))
    start = time.perf_counter()
    attach_head(
        model,
        train_head(model, paths["train"], paths["valid"], settings, progress=False),
        export_fine_tuned_vectors=settings.export_fine_tuned_vectors,
    )
    seconds = time.perf_counter() - start
    model.to_disk(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb.cfg")
    parser.add_argument("--recipe-only", action="store_true", help="the recipe and KN5 only")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    parser.add_argument(
        "--recurrent-config", type=Path, default=ROOT / "configs" / "ptb_recurrent.cfg"
    )
    parser.add_argument(
        "--recurrent", action="store_true", help="the recurrent recipe and KN5 only (~30 min)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep data and models here")
    args = parser.parse_args()
    workdir = args.out or Path(tempfile.mkdtemp(prefix="bench_ptb."))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(args, workdir)
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> None:
    paths = write_splits(workdir, quick=args.quick)
    test = sentences(paths["test"])
    if not args.quick:
        assert sum(len(s) for s in test) == 82430, "not the standard PTB test set"

    rows: list[tuple[str, dict[str, float], float]] = []
    if args.recurrent:
        rows, wall, stream = recurrent_rows(paths, args.recurrent_config, workdir, test)
        print_tables(rows, kenlm(paths, workdir), {"recurrent": (wall, stream)})
        return
    recipe_s = train_recipe(paths, args.config, workdir / "recipe", quick=args.quick)
    recipe_dir = workdir / "recipe" / "hs_model"
    from spacy_hs import HSModel

    recipe_head_s = HSModel.from_disk(recipe_dir).meta["head"]["train_seconds"]
    rows.append(
        (f"recipe: {args.config.name} (n-gram head)", score(recipe_dir, test), recipe_head_s)
    )
    cached = score_with_cache(recipe_dir, test)
    if cached is not None:
        label = f"recipe + document cache {cache_label(cached)}"
        rows.append((label, cached, recipe_head_s))
    if not (args.recipe_only or args.quick):
        gensim_path = workdir / "recipe" / "word2vec.model"
        variants = [
            ("  n-gram features off (directional head, same training)", {"ngram_orders": 0}),
            ("  orders 1-3 instead of 1-4", {"ngram_orders": 3}),
            ("  table 2**26", {"table_size": 1 << 26}),
            ("  table 2**24", {"table_size": 1 << 24}),
            ("  table 2**22", {"table_size": 1 << 22}),
        ]
        for label, head in variants:
            out = workdir / f"variant{len(rows)}"
            seconds = train_variant(gensim_path, paths, args.config, out, **head)
            rows.append((label, score(out, test), seconds))
        out = workdir / "directional_default"
        seconds = train_variant(
            gensim_path,
            paths,
            ROOT / "configs" / "default.cfg",
            out,
            eos_token=None,
            ngram_orders=0,
            tune_cache=False,
        )
        rows.append(
            (
                "  the directional head of the previous default (ngram_orders = 0)",
                score(out, test),
                seconds,
            )
        )
        out = workdir / "default_head"
        seconds = train_variant(
            gensim_path, paths, ROOT / "configs" / "default.cfg", out, eos_token=None
        )
        rows.append(
            ("  configs/default.cfg's head (n-gram, orders 1-3, 2**23)", score(out, test), seconds)
        )
        rows.append(("  CBOW-style head (gensim's own)", score(recipe_dir, test, "cbow"), 0.0))
    speed = stream_speed(recipe_dir, test, repeats=1 if args.quick else 5)
    recipes = {"n-gram": (recipe_s, speed)}
    if not (args.recipe_only or args.quick):
        recurrent, wall, stream = recurrent_rows(paths, args.recurrent_config, workdir, test)
        rows.extend(recurrent)
        recipes["recurrent"] = (wall, stream)
    print_tables(rows, kenlm(paths, workdir), recipes)


def print_tables(rows, kn5, recipes: dict[str, tuple[float, float]]) -> None:
    """The tables; ``recipes``: each recipe's `spacy-hs train` wall seconds (gensim and head)
    and its `log_prob_stream` tokens/s."""
    reference = kn5["perplexity"] if kn5 else 141.2
    source = "measured" if kn5 else "published; lmplz not on the PATH"
    print(
        f"\nPenn Treebank test, 82,430 tokens (<eos> included). KN5: {reference:.1f} ({source}).\n"
    )
    print("| model | test ppl | / KN5 | hit@1 | head training s | top-10 µs | model MB |")
    print("|---|---|---|---|---|---|---|")
    for label, r, seconds in rows:
        print(
            f"| {label} | {r['perplexity']:.1f} | {r['perplexity'] / reference:.3f} | "
            f"{r['hit1']:.3f} | {seconds:.0f} | {r['topk_us']:.1f} | {r['size_mb']:.0f} |"
        )
    if kn5:
        print(
            f"| KenLM lmplz -o 5 (modified Kneser-Ney) | {kn5['perplexity']:.1f} | 1.000 | - | "
            f"{kn5['train_s']:.0f} | - | {kn5['size_mb']:.0f} |"
        )
    for label, ppl in PUBLISHED:
        print(f"| {label} | {ppl:.1f} | {ppl / reference:.3f} | - | - | - | - |")
    for name, (wall, _) in recipes.items():
        print(f"\nThe {name} recipe's `spacy-hs train` (gensim and head): {wall:.0f} s wall.")
    for label, r, _ in rows:
        if "topk_plain_us" in r:
            print(
                f"Top-10 at one position, document cache full: {r['topk_us']:.1f} µs against "
                f"{r['topk_plain_us']:.1f} µs without the cache "
                f"({r['topk_us'] / r['topk_plain_us']:.2f}x; `Document.top_k_at`)."
            )
        if "short" in r:
            print(f"\nEach test sentence as its own document (`Documents`), {label}:\n")
            print("| test documents | ppl, cache auto | ppl, no cache |")
            print("|---|---|---|")
            for name, with_cache, without in r["short"]:
                print(f"| {name} | {with_cache:.2f} | {without:.2f} |")
    print("\nScoring the test set (tokens/s, one thread):\n")
    print("| scorer | tokens/s | ratio |")
    print("|---|---|---|")
    stream = next(iter(recipes.values()))[1]
    for name, (_, speed) in recipes.items():
        print(f"| HSModel.log_prob_stream ({name} recipe) | {speed:,.0f} | {speed / stream:.2f} |")
    if kn5:
        print(f"| KenLM query | {kn5['tokens_per_s']:,.0f} | {kn5['tokens_per_s'] / stream:.2f} |")
    print(f"\nReproduce: OPENBLAS_NUM_THREADS=1 python {' '.join(sys.argv)}")


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
