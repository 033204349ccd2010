"""The settings of the surprisal view (``render(..., options={...})``), validated once.

Colours are written into the page's style sheet and script, so they are restricted to hex
notation (``#rgb`` or ``#rrggbb``): nothing else can reach the CSS from an option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, Errors
from .surprisal import DEFAULT_TOP_K

STYLES = ("rank", "surprisal")
# GLTR's buckets (Strobelt & Gehrmann 2019): the actual word in the top 10, 100, 1000, beyond.
DEFAULT_THRESHOLDS = (10, 100, 1000)
# GLTR's colours for them: green, yellow, red, violet.
DEFAULT_COLORS = ("#adff80", "#ffea80", "#ff9280", "#e5b0ff")
# The continuous surprisal scale, from 0 bits to ``surprisal_max``: pale yellow to red.
DEFAULT_SURPRISAL_COLORS = ("#ffffcc", "#fed976", "#fd8d3c", "#f03b20")
MAX_TOP_K = 100
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@dataclass(frozen=True)
class ViewOptions:
    """thresholds: increasing rank limits of the colour buckets (GLTR: 10, 100, 1000); a rank
        up to thresholds[0] falls in the first bucket, one above the last in the last.
    colors: one hex colour per bucket, len(thresholds) + 1 of them.
    surprisal_colors: two or more hex colours, the surprisal scale from 0 bits upwards.
    surprisal_max: the surprisal in bits at the top of the scale; None: log2 of the
        vocabulary size, the surprisal of a uniform guess (a word worse than that is red).
    top_k: how many predictions the tooltip shows (at most 100).
    """

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    colors: tuple[str, ...] = DEFAULT_COLORS
    surprisal_colors: tuple[str, ...] = DEFAULT_SURPRISAL_COLORS
    surprisal_max: float | None = None
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> ViewOptions:
        """Validate user options; unknown keys and bad values raise ``ConfigError``."""
        options = dict(options or {})
        names = list(cls.__dataclass_fields__)
        unknown = [key for key in options if key not in names]
        if unknown:
            raise ConfigError(
                Errors.E710.format(keys=", ".join(map(repr, unknown)), valid=", ".join(names))
            )
        thresholds = options.get("thresholds", DEFAULT_THRESHOLDS)
        if (
            not _is_sequence(thresholds)
            or not thresholds
            or not all(_is_int(t) and t >= 1 for t in thresholds)
            or any(a >= b for a, b in zip(thresholds, thresholds[1:]))
        ):
            raise ConfigError(Errors.E711.format(value=thresholds))
        thresholds = tuple(int(t) for t in thresholds)
        # Default colours fit the default thresholds only.
        default_colors = DEFAULT_COLORS if len(thresholds) == 3 else None
        colors = options.get("colors", default_colors)
        if colors is None or not _is_colors(colors) or len(colors) != len(thresholds) + 1:
            raise ConfigError(Errors.E712.format(value=colors, n=len(thresholds) + 1))
        surprisal_colors = options.get("surprisal_colors", DEFAULT_SURPRISAL_COLORS)
        if not _is_colors(surprisal_colors) or len(surprisal_colors) < 2:
            raise ConfigError(Errors.E713.format(value=surprisal_colors))
        surprisal_max = options.get("surprisal_max")
        if surprisal_max is not None and (
            isinstance(surprisal_max, bool)
            or not isinstance(surprisal_max, (int, float))
            or not math.isfinite(surprisal_max)
            or surprisal_max <= 0
        ):
            raise ConfigError(Errors.E714.format(value=surprisal_max))
        top_k = options.get("top_k", DEFAULT_TOP_K)
        if not _is_int(top_k) or not 1 <= top_k <= MAX_TOP_K:
            raise ConfigError(Errors.E715.format(value=top_k, max=MAX_TOP_K))
        return cls(
            thresholds=thresholds,
            colors=tuple(map(_long_hex, colors)),
            surprisal_colors=tuple(map(_long_hex, surprisal_colors)),
            surprisal_max=None if surprisal_max is None else float(surprisal_max),
            top_k=int(top_k),
        )

    def bucket(self, rank: int) -> int:
        """The colour bucket of a 1-based rank: 0 up to thresholds[0], ..., len(thresholds)."""
        for index, threshold in enumerate(self.thresholds):
            if rank <= threshold:
                return index
        return len(self.thresholds)

    def bucket_labels(self) -> list[str]:
        """Bucket names: "top 10", "top 100", "top 1000", "beyond" for the default thresholds."""
        return [f"top {t:,}" for t in self.thresholds] + ["beyond"]

    def scale_max(self, vocab_size: int) -> float:
        """The top of the surprisal scale in bits."""
        if self.surprisal_max is not None:
            return self.surprisal_max
        return math.log2(max(vocab_size, 2))


def check_style(style: Any) -> str:
    if style not in STYLES:
        raise ConfigError(Errors.E716.format(style=style, styles=", ".join(STYLES)))
    return style


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _is_colors(value: Any) -> bool:
    return _is_sequence(value) and all(
        isinstance(c, str) and _HEX_COLOR.fullmatch(c) for c in value
    )


def _long_hex(color: str) -> str:
    """#rgb or #rrggbb as lowercase #rrggbb."""
    color = color.lower()
    return "#" + "".join(c * 2 for c in color[1:]) if len(color) == 4 else color
