"""The inline SVG of the view: a doc's histograms (rank buckets, surprisal, entropy) and the
surprisal scale's legend. Plain SVG elements with numbers and fixed labels only; every piece
of text still goes through ``escape``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from .options import ViewOptions
from .surprisal import DocSurprisal

WIDTH, HEIGHT = 250, 120
TOP, BOTTOM, LEFT, RIGHT = 22, 24, 8, 8  # margins inside the chart
BAR_GAP = 2
NEUTRAL = "#8da0cb"


@dataclass(frozen=True)
class Bar:
    count: int
    color: str
    label: str  # what the bar counts, for its <title>


def doc_panels(result: DocSurprisal, options: ViewOptions) -> str:
    """The three histograms of one doc, side by side."""
    return (
        '<div class="hs-panels">'
        + rank_histogram(result, options)
        + surprisal_histogram(result, options)
        + entropy_histogram(result)
        + "</div>"
    )


def rank_histogram(result: DocSurprisal, options: ViewOptions) -> str:
    """Scored tokens per rank bucket, in the buckets' colours."""
    counts = [0] * (len(options.thresholds) + 1)
    for rank in result.ranks:
        if rank is not None:
            counts[options.bucket(rank)] += 1
    labels = options.bucket_labels()
    bars = [
        Bar(n, color, f"rank {label}") for n, color, label in zip(counts, options.colors, labels)
    ]
    ticks = [(i + 0.5, label.replace("top ", "≤")) for i, label in enumerate(labels)]
    return bar_chart("Rank of the actual word", bars, ticks, "hs-hist-rank")


def surprisal_histogram(result: DocSurprisal, options: ViewOptions) -> str:
    """Scored tokens per 1-bit bin of surprisal, up to the top of the colour scale."""
    top = options.scale_max(result.vocab_size)
    return _bits_histogram(
        "Surprisal (bits)",
        [s for s in result.surprisals if s is not None],
        math.ceil(top),
        "hs-hist-surprisal",
        overflow=True,
    )


def entropy_histogram(result: DocSurprisal) -> str:
    """Positions per 1-bit bin of the next-word distribution's entropy (at most log2 V)."""
    return _bits_histogram(
        "Entropy of the prediction (bits)",
        [e for e in result.entropies if e is not None],
        math.ceil(math.log2(max(result.vocab_size, 2))),
        "hs-hist-entropy",
        overflow=False,
    )


def _bits_histogram(
    title: str, values: Sequence[float], n_bins: int, css_class: str, *, overflow: bool
) -> str:
    counts = [0] * (n_bins + (1 if overflow else 0))
    for value in values:
        counts[min(max(int(value), 0), len(counts) - 1)] += 1
    bars = [Bar(n, NEUTRAL, f"{i}–{i + 1} bits") for i, n in enumerate(counts[:n_bins])]
    if overflow:
        bars.append(Bar(counts[-1], NEUTRAL, f"over {n_bins} bits"))
    step = max(1, n_bins // 4)
    ticks = [(float(b), str(b)) for b in range(0, n_bins + 1, step)]
    if overflow:
        ticks.append((n_bins + 0.5, "+"))
    return bar_chart(title, bars, ticks, css_class)


def bar_chart(
    title: str, bars: Sequence[Bar], ticks: Sequence[tuple[float, str]], css_class: str
) -> str:
    """A small bar chart: bar i spans [i, i + 1) on the x axis; ticks are (x, label)."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(bars), 1)
    peak = max((bar.count for bar in bars), default=0)
    total = sum(bar.count for bar in bars)
    parts = [
        f'<svg class="hs-hist {css_class}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}: {total:,} positions</title>",
        f'<text class="hs-hist-title" x="{LEFT}" y="14">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_height}" stroke="#999"/>',
    ]
    for i, bar in enumerate(bars):
        height = plot_height * bar.count / peak if peak else 0.0
        parts.append(
            f'<rect x="{LEFT + i * slot + BAR_GAP / 2:.1f}" y="{TOP + plot_height - height:.1f}" '
            f'width="{max(slot - BAR_GAP, 1):.1f}" height="{height:.1f}" fill="{bar.color}">'
            f"<title>{escape(bar.label)}: {bar.count:,}</title></rect>"
        )
    if peak:
        parts.append(
            f'<text class="hs-hist-peak" x="{WIDTH - RIGHT}" y="{TOP - 2}" '
            f'text-anchor="end">max {peak:,}</text>'
        )
    for x, label in ticks:
        parts.append(
            f'<text class="hs-hist-tick" x="{LEFT + x * slot:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def surprisal_legend(options: ViewOptions, top: float, gradient_id: str) -> str:
    """The continuous surprisal scale: a gradient bar from 0 bits to ``top`` bits."""
    width, height, bar_height = 260, 34, 12
    n = len(options.surprisal_colors)
    stops = "".join(
        f'<stop offset="{i / (n - 1):.3f}" stop-color="{color}"/>'
        for i, color in enumerate(options.surprisal_colors)
    )
    ticks = "".join(
        f'<text x="{10 + (width - 20) * t:.1f}" y="{bar_height + 16}" text-anchor="middle">'
        f"{top * t:.3g}</text>"
        for t in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    return (
        f'<svg class="hs-scale" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="surprisal scale, 0 to {top:.3g} bits">'
        f'<defs><linearGradient id="{gradient_id}">{stops}</linearGradient></defs>'
        f'<rect x="10" y="2" width="{width - 20}" height="{bar_height}" '
        f'fill="url(#{gradient_id})" stroke="#999"/>{ticks}</svg>'
    )
