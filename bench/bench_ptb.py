"""Penn Treebank next-word benchmark: the directional head against the other predictors.

One run: every model is trained on PTB `train`, the directional head stops early on `valid`,
and everything is scored on `test`. Perplexity is over every token including the
end-of-sentence token `<eos>` (the standard PTB setup; `<unk>` is a vocabulary word), with each
line a sentence: its first word is predicted from an empty context (sentence start).

Rows:
* gensim `predict_output_word` on an hs=1, negative=5 CBOW model: the softmax over the negative
  sampling output layer (`syn1neg`), computed as gensim does, batched (checked against gensim
  on a sample);
* the CBOW-style HS head of an spacy-hs model (hs=1, negative=0): `HSModel.predict_next` /
  `log_prob_next_batch` with `head="cbow"`;
* unigram and an interpolated bigram (weight tuned on `valid`);
* the directional head (`spacy_hs.training.head.train_head`) through the same exact API,
  `head="directional"`;
* the directional head interpolated with the bigram (tuned on `valid`): not a tree distribution,
  so not servable with exact tree search; shown as the size of that lever;
* published PTB test perplexities (Mikolov 2012, thesis, Table 4.1), labelled as published.

The CBOW and gensim rows cannot predict a sentence's first word (no context); they fall back to
the unigram there, so their perplexity is defined over the same tokens.

    OPENBLAS_NUM_THREADS=1 python bench/bench_ptb.py        # about 11 minutes on 2 CPU cores
    # diagonal against full C_i (d = 200, as measured for the choice; about 15 minutes):
    OPENBLAS_NUM_THREADS=1 python bench/bench_ptb.py --compare-full --vector-size 200 \
        --l2 0.1 --dropout 0.4 --epochs 12
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PUBLISHED = [  # Mikolov (2012), Statistical Language Models Based on Neural Networks, Table 4.1
    ("KN3 (published)", 148.3),
    ("KN5 (published)", 141.2),
    ("log-bilinear LM (published)", 144.5),
    ("feed-forward NNLM (published)", 140.2),
    ("RNNLM (published)", 124.7),
]
EOS = "<eos>"


def write_splits(directory: Path) -> dict[str, Path]:
    """PTB splits as token files, `<eos>` appended to every line (so gensim's vocabulary has
    it and the head predicts it)."""
    import treebank

    paths = {}
    for split in ("train", "valid", "test"):
        path = directory / f"ptb.{split}.txt"
        lines = [line.split() for line in treebank.penn[split].split("\n")]
        path.write_text("".join(" ".join([*t, EOS]) + "\n" for t in lines if t), encoding="utf8")
        paths[split] = path
    return paths


def read_ids(path: Path, key_to_index: dict[str, int]) -> list[np.ndarray]:
    return [
        np.array([key_to_index[w] for w in line.split()], dtype=np.int64)
        for line in path.read_text(encoding="utf8").splitlines()
    ]


def positions(sentences: list[np.ndarray], size: int) -> tuple[list[list[int]], np.ndarray]:
    """Every token as (its last ``size`` words before it in the sentence, the token)."""
    contexts, targets = [], []
    for ids in sentences:
        row = ids.tolist()
        for t, word in enumerate(row):
            contexts.append(row[max(0, t - size) : t])
            targets.append(word)
    return contexts, np.array(targets)


def hits(top_ids: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    return float((top_ids[:, 0] == targets).mean()), float(
        (top_ids[:, :10] == targets[:, None]).any(axis=1).mean()
    )


class Bigram:
    """P(w | v) = lam * count(v, w) / count(v) + (1 - lam) * P_unigram(w); v = <s> (id V) at a
    sentence start."""

    def __init__(self, sentences: list[np.ndarray], n_words: int):
        from scipy.sparse import coo_matrix

        self.n_words = n_words
        unigram = np.bincount(np.concatenate(sentences), minlength=n_words).astype(np.float64)
        self.unigram = unigram / unigram.sum()
        prev = np.concatenate([np.r_[n_words, s[:-1]] for s in sentences])
        nxt = np.concatenate(sentences)
        counts = coo_matrix((np.ones(len(nxt)), (prev, nxt)), shape=(n_words + 1, n_words)).tocsr()
        counts.sum_duplicates()
        self.counts = counts
        self.totals = np.asarray(counts.sum(axis=1)).ravel()
        self.lam = 0.5

    @staticmethod
    def previous(sentences: list[np.ndarray], n_words: int) -> np.ndarray:
        return np.concatenate([np.r_[n_words, s[:-1]] for s in sentences])

    def bigram_probs(self, prev: np.ndarray, targets: np.ndarray) -> np.ndarray:
        pair = np.asarray(self.counts[prev, targets]).ravel()
        totals = self.totals[prev]
        return np.divide(pair, totals, out=np.zeros_like(pair), where=totals > 0)

    def probs(self, prev: np.ndarray, targets: np.ndarray, lam: float | None = None) -> np.ndarray:
        lam = self.lam if lam is None else lam
        ml = self.bigram_probs(prev, targets)
        seen = self.totals[prev] > 0
        return np.where(seen, lam * ml, 0.0) + np.where(seen, 1 - lam, 1.0) * self.unigram[targets]

    def tune(self, prev: np.ndarray, targets: np.ndarray) -> float:
        grid = np.linspace(0.05, 0.95, 19)
        scores = [np.log(self.probs(prev, targets, lam)).mean() for lam in grid]
        self.lam = float(grid[int(np.argmax(scores))])
        return self.lam

    def top_k(self, prev: np.ndarray, k: int = 10, chunk: int = 512) -> np.ndarray:
        unique, inverse = np.unique(prev, return_inverse=True)
        top = np.empty((len(unique), k), dtype=np.int64)
        for start in range(0, len(unique), chunk):
            rows = unique[start : start + chunk]
            seen = (self.totals[rows] > 0)[:, None]
            ml = self.counts[rows].toarray() / np.maximum(self.totals[rows], 1)[:, None]
            dist = np.where(seen, self.lam * ml + (1 - self.lam) * self.unigram, self.unigram)
            part = np.argpartition(-dist, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
            top[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        return top[inverse.ravel()]


def gensim_ns_scores(
    gensim_model, contexts: list[list[int]], targets: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """gensim's predict_output_word, batched: softmax(mean of context vectors . syn1neg)."""
    vectors, out = gensim_model.wv.vectors, gensim_model.syn1neg
    log_probs = np.full(len(targets), np.nan)
    top = np.full((len(targets), 10), -1, dtype=np.int64)
    rows = np.array([i for i, c in enumerate(contexts) if c])
    for start in range(0, len(rows), chunk):
        batch = rows[start : start + chunk]
        hidden = np.stack([vectors[contexts[i]].sum(axis=0) for i in batch])
        if gensim_model.cbow_mean:
            hidden /= np.array([len(contexts[i]) for i in batch])[:, None]
        scores = hidden @ out.T
        scores -= scores.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(scores).sum(axis=1))
        log_probs[batch] = scores[np.arange(len(batch)), targets[batch]] - log_z
        part = np.argpartition(-scores, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        top[batch] = np.take_along_axis(part, order, axis=1)
    return log_probs, top


def check_against_gensim(gensim_model, contexts, top: np.ndarray, n: int = 200) -> None:
    words = gensim_model.wv.index_to_key
    for i in [i for i, c in enumerate(contexts) if c][:n]:
        expected = gensim_model.predict_output_word([words[j] for j in contexts[i]], topn=10)
        if [w for w, _ in expected] != [words[j] for j in top[i]]:
            raise AssertionError(f"batched predict_output_word differs from gensim at {i}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vector-size", type=int, default=400, help="gensim vector_size (d)")
    parser.add_argument("--gensim-epochs", type=int, default=5, help="gensim training epochs")
    parser.add_argument("--context-size", type=int, default=5, help="head: K previous words")
    parser.add_argument("--full", action="store_true", help="head: full rather than diagonal C_i")
    parser.add_argument(
        "--compare-full", action="store_true", help="train both diagonal and full C_i heads"
    )
    parser.add_argument("--epochs", type=int, default=10, help="head: maximum epochs")
    parser.add_argument("--batch-size", type=int, default=1024, help="head: batch size")
    parser.add_argument("--learn-rate", type=float, default=0.004, help="head: Adam step size")
    parser.add_argument("--dropout", type=float, default=0.5, help="head: context dropout")
    parser.add_argument("--l2", type=float, default=0.15, help="head: Adam weight decay")
    parser.add_argument("--patience", type=int, default=2, help="head: early-stopping patience")
    parser.add_argument("--no-fine-tune", action="store_true", help="head: freeze input vectors")
    parser.add_argument("--workers", type=int, default=2, help="gensim worker threads")
    parser.add_argument("--out", type=Path, default=None, help="keep data and model here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    workdir = args.out or Path(tempfile.mkdtemp(prefix="bench_ptb."))
    workdir.mkdir(parents=True, exist_ok=True)
    paths = write_splits(workdir)
    timings: dict[str, tuple[float, float]] = {}
    model, ns_gensim, head_models = train_models(args, paths, timings)
    if args.out:
        next(iter(head_models.values())).to_disk(workdir / "model")

    ids = {s: read_ids(paths[s], model.key_to_index) for s in ("train", "valid", "test")}
    n_words = len(model)
    window = int(model.settings["window"])
    test_contexts, test_targets = positions(ids["test"], window)
    valid_contexts, valid_targets = positions(ids["valid"], window)
    results: list[tuple[str, float, float | None, float | None]] = []
    speeds: dict[str, float] = {}

    # unigram and bigram
    bigram = Bigram(ids["train"], n_words)
    unigram_log = np.log(bigram.unigram[test_targets])
    top_unigram = np.tile(np.argsort(-bigram.unigram, kind="stable")[:10], (len(test_targets), 1))
    results.append(("unigram", _ppl(unigram_log), *hits(top_unigram, test_targets)))
    lam = bigram.tune(Bigram.previous(ids["valid"], n_words), valid_targets)
    test_prev = Bigram.previous(ids["test"], n_words)
    bigram_test = bigram.probs(test_prev, test_targets)
    name = f"interpolated bigram (lambda={lam:.2f})"
    results.append((name, _ppl(np.log(bigram_test)), *hits(bigram.top_k(test_prev), test_targets)))

    # gensim predict_output_word (negative sampling); the unigram at sentence starts
    ns_log, ns_top = gensim_ns_scores(ns_gensim, test_contexts, test_targets)
    check_against_gensim(ns_gensim, test_contexts, ns_top)
    no_context = np.isnan(ns_log)
    ns_log[no_context] = unigram_log[no_context]
    ns_top[no_context] = top_unigram[no_context]
    name = "gensim predict_output_word (NS, hs=1 negative=5)"
    results.append((name, _ppl(ns_log), *hits(ns_top, test_targets)))

    # the CBOW-style HS head (the unigram at sentence starts) and the directional heads
    name = f"spacy-hs CBOW head (window {window})"
    scores, speeds[name] = _score_head(
        model, "cbow", test_contexts, test_targets, unigram_log, top_unigram
    )
    results.append((name, *scores))
    for label, head_model in head_models.items():
        size = head_model.head.context_size
        name = f"spacy-hs directional head ({label} C_i, K={size})"
        contexts = [c[-size:] for c in test_contexts]
        scores, speeds[name] = _score_head(head_model, "directional", contexts, test_targets)
        results.append((name, *scores))

    # the directional head mixed with the bigram: the size of that lever (not tree-exact)
    head_model = next(iter(head_models.values()))
    size = head_model.head.context_size
    valid_head = np.exp(
        head_model.log_prob_next_batch(
            valid_targets.tolist(), [c[-size:] for c in valid_contexts], head="directional"
        )
    )
    valid_bigram = bigram.probs(Bigram.previous(ids["valid"], n_words), valid_targets)
    grid = np.linspace(0.5, 1.0, 26)
    mix = grid[np.argmax([np.log(w * valid_head + (1 - w) * valid_bigram).mean() for w in grid])]
    test_head = np.exp(
        head_model.log_prob_next_batch(
            test_targets.tolist(), [c[-size:] for c in test_contexts], head="directional"
        )
    )
    name = f"directional + bigram, mixed {mix:.2f} (not tree-exact)"
    results.append((name, _ppl(np.log(mix * test_head + (1 - mix) * bigram_test)), None, None))

    _print_tables(results, speeds, timings, head_models, load_before)


def train_models(args: argparse.Namespace, paths: dict[str, Path], timings: dict) -> tuple:
    """The spacy-hs model (hs=1, negative=0), the gensim NS model, and the directional heads."""
    from gensim.models import Word2Vec

    from spacy_hs import HSModel
    from spacy_hs.training.head import attach_head, train_head

    def timed(name, fn):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = fn()
        timings[name] = (time.perf_counter() - wall, _cpu_seconds() - cpu)
        return result

    common = dict(
        corpus_file=str(paths["train"]),
        vector_size=args.vector_size,
        window=5,
        min_count=1,  # keeps PTB's 10k vocabulary (with <eos>) exactly
        sg=0,
        epochs=args.gensim_epochs,
        workers=args.workers,
        seed=0,
    )
    hs_gensim = timed("gensim hs=1 negative=0", lambda: Word2Vec(hs=1, negative=0, **common))
    ns_gensim = timed("gensim hs=1 negative=5", lambda: Word2Vec(hs=1, negative=5, **common))
    model = HSModel.from_gensim(hs_gensim)
    if len(model) != 10000:
        raise AssertionError(f"expected PTB's 10,000 words, got {len(model)}")
    heads = [("diagonal", True), ("full", False)] if args.compare_full else []
    heads = heads or [("full", False) if args.full else ("diagonal", True)]
    head_models = {}
    for label, diagonal in heads:
        head_model = HSModel.from_gensim(hs_gensim)
        options = dict(
            context_size=args.context_size,
            diagonal=diagonal,
            epochs=args.epochs,
            learn_rate=args.learn_rate,
            batch_size=args.batch_size,
            patience=args.patience,
            dropout=args.dropout,
            l2=args.l2,
            fine_tune_vectors=not args.no_fine_tune,
            seed=0,
        )
        timed(
            f"directional head ({label} C_i)",
            lambda m=head_model, o=options: attach_head(
                m, train_head(m, paths["train"], paths["valid"], **o)
            ),
        )
        head_models[label] = head_model
    return model, ns_gensim, head_models


def _score_head(model, head, contexts, targets, fallback_log=None, fallback_top=None):
    """(perplexity, hit@1, hit@10) through HSModel's public API, and microseconds per exact
    top-10 query (predict_next_batch, Python included)."""
    log_probs = model.log_prob_next_batch(targets.tolist(), contexts, head=head)
    start = time.perf_counter()
    found = model.predict_next_batch(contexts, topn=10, head=head)
    microseconds = 1e6 * (time.perf_counter() - start) / len(contexts)
    top = np.full((len(targets), 10), -1, dtype=np.int64)
    for i, words in enumerate(found):
        if words:
            top[i] = [model.key_to_index[w] for w, _ in words]
    missing = np.isnan(log_probs)
    if missing.any():
        log_probs[missing] = fallback_log[missing]
        top[missing] = fallback_top[missing]
    return (_ppl(log_probs), *hits(top, targets)), microseconds


def _ppl(log_probs: np.ndarray) -> float:
    return float(np.exp(-np.mean(log_probs)))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _print_tables(results, speeds, timings, head_models, load_before) -> None:
    directional = next(r for r in results if r[0].startswith("spacy-hs directional"))[1]
    print(
        "\nPenn Treebank test (82,430 tokens incl. <eos>); trained on train, the head stopped "
        "early on valid\n"
    )
    print("| predictor | perplexity | ppl / directional | hit@1 | hit@10 |")
    print("|---|---|---|---|---|")
    for name, ppl, hit1, hit10 in results:
        h1 = "-" if hit1 is None else f"{hit1:.3f}"
        h10 = "-" if hit10 is None else f"{hit10:.3f}"
        print(f"| {name} | {ppl:.1f} | {ppl / directional:.2f} | {h1} | {h10} |")
    for name, ppl in PUBLISHED:
        print(f"| {name} | {ppl:.1f} | {ppl / directional:.2f} | - | - |")
    print("\nExact top-10 through the tree (predict_next_batch, Python included):\n")
    print("| head | microseconds / query | ratio |")
    print("|---|---|---|")
    cbow = next(v for k, v in speeds.items() if "CBOW" in k)
    for name, microseconds in speeds.items():
        print(f"| {name} | {microseconds:.1f} | {microseconds / cbow:.2f} |")
    print("\nTraining (wall and process CPU seconds):\n")
    print("| stage | wall s | CPU s | tokens/s (wall) | epochs run (best) | best valid ppl |")
    print("|---|---|---|---|---|---|")
    for name, (wall, cpu) in timings.items():
        label = name[name.find("(") + 1 : name.find(" C_i")] if "head" in name else None
        extra = "- | - | -"
        if label in head_models:
            meta = head_models[label].meta["head"]
            extra = (
                f"{meta['tokens_per_second']:,.0f} | {len(meta['heldout_perplexity'])} "
                f"({meta['best_epoch']}) | {meta['best_heldout_perplexity']:.1f}"
            )
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {extra} |")
    after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nLoad average (1/5/15 min) before: {' '.join(f'{x:.1f}' for x in load_before)}, "
        f"after: {after}; {os.cpu_count()} CPUs, shared with other work: wall times are "
        "pessimistic."
    )
    print(f"\nReproduce: {Path(sys.executable).name} {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
