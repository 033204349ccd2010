"""What the evaluation modules share: checks of their inputs, JSON-safe numbers, progress."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from ..corpus import tokenfile
from ..errors import Errors, InputError, InputNotFoundError, OutputError, Warnings
from ..hs_model import HSModel
from ..progress import Progress
from ..util import special_file


def check_plots_dir(plots_dir: Path) -> None:
    if plots_dir.exists() and not plots_dir.is_dir():
        raise OutputError(Errors.E186.format(path=plots_dir))


def check_heldout(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E200.format(path=path))
    tokenfile.check_path(path, "Held-out file")  # a directory, a FIFO, a device (/dev/null)
    if path.stat().st_size == 0:
        raise InputError(Errors.E201.format(path=path))
    return path


def check_normalizer(model: HSModel, heldout: Path) -> None:
    """Warn if the held-out file was normalised differently from the training corpus."""
    expected = model.settings.get("normalizer")
    if expected is None:
        return
    found = (tokenfile.read_meta(heldout) or {}).get("normalizer")
    if found is not None and found != expected:
        warnings.warn(
            Warnings.W201.format(path=heldout, found=found, expected=expected), stacklevel=3
        )


def check_file(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E208.format(path=path, option=option))
    check_readable(path, option)
    return path


def check_readable(path: Path, option: str) -> None:
    """InputError unless ``path`` is a regular file this process may read: checked before it
    is opened, so that a FIFO never blocks and a directory is not called missing."""
    kind = "a directory" if path.is_dir() else special_file(path)
    if kind is not None:
        raise InputError(Errors.E210.format(option=option, path=path, kind=kind))
    if not os.access(path, os.R_OK):
        reason = "permission denied (PermissionError)"
        raise InputError(Errors.E185.format(path=path, reason=reason))


def finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def progress(path: Path | None, show: bool, desc: str, total: int | None = None) -> Progress:
    """Progress over a file's bytes (or ``total`` queries); silent unless ``show``."""
    if path is not None:
        return Progress(desc, total=path.stat().st_size, unit="bytes", enabled=show)
    return Progress(desc, total=total, unit="queries", enabled=show)
