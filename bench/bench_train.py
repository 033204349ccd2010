"""Overhead of `spacy-hs train` over raw gensim, measured side by side in one run.

    python bench/bench_train.py                       # PTB train (887k words), 3 repeats
    python bench/bench_train.py --cli                 # also both as command-line processes
    python bench/bench_train.py --loss-probe          # what gensim's own running loss reports

spacy-hs: ``spacy_hs.training.train.train`` with configs/default.cfg, everything included (config,
corpus checks, vocabulary scan with the loss sample, training with the per-epoch loss, the
HSModel conversion and the atomic write of the model directory).
gensim: ``Word2Vec(corpus_file=..., **same parameters)``, training only, nothing written.
The next-word head is off (``head.enabled = false``): its training is work gensim does not do,
measured against gensim's by bench/bench_head_train.py (``--with-head`` includes it here).

The two run alternately (A B, then B A, ...), so drifting machine load hits both alike.
Target: <= 5% overhead.
"""

from __future__ import annotations

import argparse
import math
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _quick import QUICK_HELP

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CFG = REPO / "configs" / "default.cfg"


def write_ptb(directory: Path, repeat: int, lines: int | None = None) -> Path:
    """Penn Treebank's training split (the `treebank` package; its first ``lines`` lines),
    `repeat` times, one sentence per line."""
    import treebank

    text = "\n".join(treebank.penn["train"].strip().split("\n")[:lines]) + "\n"
    path = directory / f"ptb.train.x{repeat}.txt"
    path.write_text(text * repeat, encoding="utf8")
    return path


# Each measurement is (wall seconds, CPU seconds of all the process's threads). CPU time is
# much less sensitive to other jobs competing for the cores, so both are reported.
Timing = tuple[float, float]


def time_spacy_hs(corpus: Path, output: Path, overrides: dict) -> tuple[Timing, dict]:
    from spacy_hs.training.train import train

    wall, cpu = time.perf_counter(), time.process_time()
    model = train(corpus, output, DEFAULT_CFG, overrides)
    return (time.perf_counter() - wall, time.process_time() - cpu), model.meta


def time_gensim(corpus: Path, params: dict) -> Timing:
    from gensim.models import Word2Vec

    wall, cpu = time.perf_counter(), time.process_time()
    Word2Vec(corpus_file=str(corpus), **params)
    return time.perf_counter() - wall, time.process_time() - cpu


def vocab_scan(corpus: Path, params: dict, sample: bool) -> float:
    """Seconds for gensim's build_vocab, with or without spacy-hs's loss sampler."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    from spacy_hs.training.config import LOSS_SAMPLE
    from spacy_hs.training.word2vec import LossSampler

    model = Word2Vec(**params)
    start = time.perf_counter()
    if sample:
        sampler = LossSampler(LOSS_SAMPLE, params["window"])
        model.build_vocab(corpus_iterable=sampler(LineSentence(str(corpus))))
        sampler.examples(model.wv.key_to_index, params["sg"], params["cbow_mean"])
    else:
        model.build_vocab(corpus_file=str(corpus))
    return time.perf_counter() - start


def cli_commands(corpus: Path, output: Path, overrides: dict, params: dict) -> tuple[list, list]:
    spacy_hs = [sys.executable, "-m", "spacy_hs", "train", str(corpus), str(output)]
    spacy_hs += ["--config", str(DEFAULT_CFG)]
    spacy_hs += [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    code = (
        f"from gensim.models import Word2Vec; Word2Vec(corpus_file={str(corpus)!r}, **{params!r})"
    )
    return spacy_hs, [sys.executable, "-c", code]


def time_process(command: list[str]) -> Timing:
    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    wall, cpu = time.perf_counter(), children_cpu()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - wall, children_cpu() - cpu


def compare(name: str, spacy_hs: list[Timing], gensim: list[Timing]) -> None:
    print(f"\n{name}")
    header = ("repeat", "spacy-hs wall", "gensim wall", "ratio", "spacy-hs CPU", "gensim CPU")
    print(
        f"{header[0]:>6} {header[1]:>14} {header[2]:>12} {header[3]:>6}"
        f" {header[4]:>13} {header[5]:>11} {header[3]:>6}"
    )
    for i, ((a, a_cpu), (b, b_cpu)) in enumerate(zip(spacy_hs, gensim), 1):
        print(
            f"{i:>6} {a:>14.2f} {b:>12.2f} {a / b:>6.3f} {a_cpu:>13.2f} {b_cpu:>11.2f}"
            f" {a_cpu / b_cpu:>6.3f}"
        )
    for index, kind in ((0, "wall"), (1, "CPU")):
        a = statistics.median(t[index] for t in spacy_hs)
        b = statistics.median(t[index] for t in gensim)
        paired = statistics.median(x[index] / y[index] for x, y in zip(spacy_hs, gensim))
        print(
            f"overhead, {kind} time: {100 * (a / b - 1):+.1f}% (medians {a:.2f} s vs {b:.2f} s), "
            f"{100 * (paired - 1):+.1f}% (median of paired ratios); target <= +5%"
        )


def loss_probe(corpus: Path, params: dict, epochs: int) -> None:
    """gensim's running loss (compute_loss=True) with 1 and with all workers, per-epoch
    differences, against the float32 spacing at the running total."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class Differences(CallbackAny2Vec):
        def __init__(self) -> None:
            self.totals: list[float] = []

        def on_epoch_end(self, model: Word2Vec) -> None:
            self.totals.append(model.get_latest_training_loss())

    print(f"\ngensim's own loss (compute_loss=True), {epochs} epochs, {corpus.name}")
    print(f"{'workers':>8} {'seconds':>8}  per-epoch differences of get_latest_training_loss()")
    for workers in sorted({1, params["workers"]}):
        callback = Differences()
        start = time.perf_counter()
        Word2Vec(
            corpus_file=str(corpus),
            **{**params, "workers": workers, "epochs": epochs},
            compute_loss=True,
            callbacks=[callback],
        )
        seconds = time.perf_counter() - start
        differences = np.diff([0.0, *callback.totals])
        print(f"{workers:>8} {seconds:>8.2f}  {[f'{d:,.0f}' for d in differences]}")
        total = callback.totals[-1]
        print(
            f"{'':>17} running total {total:,.0f}: float32 spacing there is "
            f"{float(np.spacing(np.float32(total))):g} (gensim adds -log sigmoid per tree "
            "node, mostly < 1)"
        )
    start = time.perf_counter()
    Word2Vec(corpus_file=str(corpus), **{**params, "workers": params["workers"], "epochs": epochs})
    print(f"{'':>17} same run without compute_loss: {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="token file (default: PTB train)")
    parser.add_argument("--ptb-repeat", type=int, default=1, help="PTB train repeated N times")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each system")
    parser.add_argument("--epochs", type=int, help="override word2vec.epochs")
    parser.add_argument("--workers", type=int, help="override word2vec.workers (0: all cores)")
    parser.add_argument("--cli", action="store_true", help="also time both as processes")
    parser.add_argument("--loss-probe", action="store_true", help="probe gensim's own loss")
    parser.add_argument("--with-head", action="store_true", help="train the next-word head too")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs, args.workers = 1, 1, 1

    from gensim import __version__ as gensim_version

    from spacy_hs.training.config import available_cores, load_config, word2vec_params

    overrides: dict = {} if args.with_head else {"head.enabled": False}
    if args.quick:
        overrides.update({"word2vec.vector_size": 16, "training.loss_sample": 100})
    if args.epochs is not None:
        overrides["word2vec.epochs"] = args.epochs
    if args.workers is not None:
        overrides["word2vec.workers"] = args.workers
    params = word2vec_params(load_config(DEFAULT_CFG, overrides)["word2vec"])

    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        tmp = Path(tmp)
        corpus = args.corpus or write_ptb(tmp, args.ptb_repeat, lines=2000 if args.quick else None)
        words = sum(len(line.split()) for line in corpus.open(encoding="utf8"))
        print(f"corpus: {corpus.name}, {words:,} words; gensim {gensim_version}")
        print(f"cores available: {available_cores()}; config: configs/default.cfg {overrides}")
        shown = {k: params[k] for k in ("sg", "vector_size", "window", "epochs", "workers")}
        print(f"word2vec: {shown}")
        if args.loss_probe:
            loss_probe(corpus, params, epochs=min(params["epochs"], 3))

        time_gensim(corpus, {**params, "epochs": 1})  # warm the page cache and imports
        spacy_hs_times, gensim_times, metas = [], [], []
        for repeat in range(args.repeats):
            order = ("spacy-hs", "gensim") if repeat % 2 == 0 else ("gensim", "spacy-hs")
            for system in order:
                if system == "spacy-hs":
                    seconds, meta = time_spacy_hs(corpus, tmp / "out", overrides)
                    spacy_hs_times.append(seconds)
                    metas.append(meta)
                else:
                    gensim_times.append(time_gensim(corpus, params))
        compare(
            "library: spacy_hs.training.train.train vs gensim Word2Vec(corpus_file=...)",
            spacy_hs_times,
            gensim_times,
        )

        print("\nwhere spacy-hs spends its time (median over repeats, seconds)")
        parts = {
            "vocabulary scan (gensim's) + loss sample": [m["vocab_seconds"] for m in metas],
            "gensim epochs": [sum(e["seconds"] for e in m["epochs"]) for m in metas],
            "per-epoch loss, all epochs": [
                sum(e["loss_seconds"] for e in m["epochs"]) for m in metas
            ],
            "gensim's between-epoch work": [
                m["train_seconds"] - sum(e["seconds"] + e["loss_seconds"] for e in m["epochs"])
                for m in metas
            ],
            "config, checks, HSModel conversion, write": [
                wall - m["vocab_seconds"] - m["train_seconds"]
                for (wall, _), m in zip(spacy_hs_times, metas)
            ],
        }
        for name, values in parts.items():
            print(f"  {name:<44} {statistics.median(values):.3f}")

        # The loss sample is drawn during gensim's vocabulary scan: time that scan with and
        # without it, interleaved, to isolate its cost.
        sampler_cost = statistics.median(
            vocab_scan(corpus, params, sample=True) - vocab_scan(corpus, params, sample=False)
            for _ in range(args.repeats)
        )
        extra = (
            sampler_cost
            + statistics.median(parts["per-epoch loss, all epochs"])
            + statistics.median(parts["config, checks, HSModel conversion, write"])
        )
        gensim_median = statistics.median(wall for wall, _ in gensim_times)
        print(f"  loss sample's cost within the vocabulary scan  {sampler_cost:.3f}")
        print(
            f"direct overhead (loss sample + per-epoch loss + conversion and write) = "
            f"{extra:.3f} s = {100 * extra / gensim_median:.1f}% of gensim's median "
            f"{gensim_median:.2f} s; target <= 5%"
        )
        losses = metas[-1]["loss_history"]
        print(
            f"  loss per epoch (nats, {metas[-1]['loss']['examples']} examples): "
            + " ".join(f"{loss:.3f}" for loss in losses if not math.isnan(loss))
        )

        if args.cli:
            spacy_hs_cmd, gensim_cmd = cli_commands(corpus, tmp / "cli", overrides, params)
            cli_a, cli_b = [], []
            for repeat in range(args.repeats):
                pairs = [(spacy_hs_cmd, cli_a), (gensim_cmd, cli_b)]
                for command, times in pairs if repeat % 2 == 0 else pairs[::-1]:
                    times.append(time_process(command))
            compare(
                "processes: `spacy-hs train` vs python -c 'Word2Vec(corpus_file=...)' "
                "(start-up and imports included)",
                cli_a,
                cli_b,
            )

    command = ["python", "bench/bench_train.py", *sys.argv[1:]]
    print(f"\nreproduce: {shlex.join(command)}")


if __name__ == "__main__":
    main()
