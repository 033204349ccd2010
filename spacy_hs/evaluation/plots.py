"""The evaluation's plots: the training loss per epoch, and next-word metrics per head."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Warnings
from ..util import atomic_file
from .common import check_plots_dir

PLOTS_EXTRA = 'pip install "spacy-hs[plots]"'
LOSS_PLOT = "loss.png"
NEXT_WORD_PLOT = "next_word.png"
# Plots carry this in their PNG "Software" text chunk: a later run may replace them.
PLOT_SOFTWARE = "spacy-hs"


def write_plots(metrics: dict[str, Any], plots_dir: str | Path) -> list[Path]:
    """Draw ``loss.png`` (loss per epoch) and ``next_word.png`` (hit@1, hit@10 and perplexity
    of each head against the baselines), each written atomically. Returns the files written;
    none (with a warning) without matplotlib."""
    try:
        # The Agg canvas directly, not pyplot: no global backend switch, no GUI, no leaks.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        warnings.warn(Warnings.W200.format(command=PLOTS_EXTRA), stacklevel=2)
        return []
    plots_dir = Path(plots_dir)
    check_plots_dir(plots_dir)
    written = []
    loss = (metrics.get("loss") or {}).get("per_epoch")
    if loss:
        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        epochs = range(1, len(loss) + 1)
        ax.plot(epochs, loss, marker="o")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title("Training loss per epoch")
        ax.set_xticks(list(epochs))
        ax.grid(alpha=0.3)
        written.append(_save_figure(fig, plots_dir / LOSS_PLOT))
    else:
        warnings.warn(Warnings.W202, stacklevel=2)
    bars = _next_word_bars(metrics.get("next_word"))
    if bars:
        fig = Figure(figsize=(13, 4.5))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 3)
        labels = [label for label, _ in bars]
        colors = [f"C{i}" for i in range(len(bars))]
        for ax, key, title in zip(
            axes,
            ("hit_at_1", "hit_at_10", "perplexity"),
            (
                "hit@1 (higher is better)",
                "hit@10 (higher is better)",
                "perplexity (lower is better)",
            ),
        ):
            values = [m[key] if m[key] is not None else float("nan") for _, m in bars]
            rects = ax.bar(range(len(bars)), values, color=colors)
            ax.bar_label(rects, fmt="%.3f" if key != "perplexity" else "%.0f", fontsize=8)
            ax.set_xticks(range(len(bars)), labels, rotation=20, ha="right", fontsize=8)
            ax.set_title(title)
            if key != "perplexity":
                ax.set_ylim(0, max(1e-9, np.nanmax(values)) * 1.2)
            else:
                ax.set_yscale("log")
                plain = FuncFormatter(lambda v, _: f"{v:g}")
                ax.yaxis.set_major_formatter(plain)
                ax.yaxis.set_minor_formatter(plain)
            ax.grid(axis="y", alpha=0.3)
        nw = metrics["next_word"]
        fig.suptitle(
            f"Next-word prediction on {Path(nw['heldout']).name}: "
            f"{nw['n_scored']} positions ({nw['coverage']:.0%} of tokens)"
        )
        fig.tight_layout()
        written.append(_save_figure(fig, plots_dir / NEXT_WORD_PLOT))
    return written


def _next_word_bars(next_word: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    if not next_word:
        return []
    predictors = dict(next_word["predictors"])
    unigram = predictors.pop("unigram")
    gensim = predictors.pop("gensim_predict_output_word", None) or {}
    bars = [(head_label(name), result) for name, result in predictors.items()]  # the heads
    bars.append(("unigram", unigram))
    if gensim.get("available") and gensim.get("n_scored"):
        n = gensim["n_scored"]
        bars.append((f"gensim predict_output_word\n(NS, {n} positions)", gensim))
        for name, result in gensim["same_positions"].items():
            bars.append((f"{head_label(name)}\n(same {n} positions)", result))
    return bars


def head_label(name: str) -> str:
    """How plots and tables name a head."""
    return f"HS {name} head"


def _save_figure(fig: Any, path: Path) -> Path:
    with atomic_file(path, "wb", not_ours=_plot_not_ours) as file:
        fig.savefig(file, format="png", dpi=110, metadata={"Software": PLOT_SOFTWARE})
    return path


def _plot_not_ours(target: Path, temporary: Path) -> str | None:
    """An existing plot may be replaced if spacy-hs drew it: its PNG says so."""
    if _png_software(target).startswith(PLOT_SOFTWARE):
        return None
    return f"it is not a plot drawn by spacy-hs (no {PLOT_SOFTWARE!r} in its PNG metadata)"


def _png_software(path: Path) -> str:
    """The "Software" text of a PNG file ("" if none, or not a PNG): the chunks before the
    image data, read a few bytes at a time."""
    try:
        with path.open("rb") as file:
            if file.read(8) != b"\x89PNG\r\n\x1a\n":
                return ""
            for _ in range(64):
                head = file.read(8)
                if len(head) < 8 or head[4:] == b"IDAT":
                    return ""
                length = int.from_bytes(head[:4], "big")
                if head[4:] == b"tEXt" and length < 4096:
                    key, _, value = file.read(length).partition(b"\0")
                    if key == b"Software":
                        return value.decode("latin-1")
                    file.seek(4, 1)
                else:
                    file.seek(length + 4, 1)
    except OSError:
        return ""
    return ""
