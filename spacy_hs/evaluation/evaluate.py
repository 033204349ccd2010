"""Evaluate a trained ``HSModel``: word analogies, word similarity, next-word prediction on a
held-out token file, and the training loss, written as a metrics JSON and PNG plots.

Each part has its module: ``vectors`` (analogies and similarity), ``next_word`` (held-out
next-word prediction, through the same core as the pipeline component), ``gensim_baseline``
and ``plots``. This one checks the inputs and outputs first, runs the parts and writes the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import srsly

from ..errors import ConfigError, Errors, OutputError
from ..hs_model import HSModel
from ..util import atomic_file, check_output_location, is_positive_int
from .common import check_heldout, check_plots_dir, finite
from .gensim_baseline import load_gensim_model
from .next_word import DEFAULT_MAX_POSITIONS, next_word_metrics
from .plots import LOSS_PLOT, NEXT_WORD_PLOT, write_plots
from .vectors import analogy_metrics, similarity_metrics


def evaluate(
    model_dir: str | Path,
    heldout: str | Path | None = None,
    output: str | Path | None = None,
    plots_dir: str | Path | None = None,
    *,
    gensim_model: str | Path | None = None,
    max_positions: int = DEFAULT_MAX_POSITIONS,
    analogies: str | Path | None = None,
    similarity: Sequence[str | Path] | None = None,
    show_progress: bool = True,
    vectors: bool = True,
) -> dict[str, Any]:
    """Evaluate the model in ``model_dir`` and return the metrics as a JSON-able dict.

    heldout: a token file for next-word prediction; skipped if None.
    output: where to write the metrics JSON (atomically); not written if None.
    plots_dir: where to write ``loss.png`` and ``next_word.png``; none drawn if None. Needs
        matplotlib (``pip install "spacy-hs[plots]"``); without it, plots are skipped with a
        warning.
    gensim_model: a ``Word2Vec.load``-able file (it is unpickled: pass only your own files) to
        measure gensim's ``predict_output_word`` as a baseline; it needs ``negative > 0``.
    max_positions: at most this many scored positions (a seeded random sample) for the gensim
        baseline, which costs O(V) per position.
    analogies / similarity: test files; default to the ones in gensim's test data.
    vectors: False skips the word-vector tests (analogies, similarity): their metrics are None.
    """
    # Cheap input checks first, so a typo fails before the model loads.
    if heldout is not None:
        heldout = check_heldout(heldout)
    if not is_positive_int(max_positions):
        raise ConfigError(Errors.E207.format(value=max_positions))
    if output is not None and Path(output).is_dir():
        raise OutputError(Errors.E209.format(path=output))
    _check_outputs(
        output, plots_dir, [model_dir, heldout, gensim_model, analogies, *(similarity or [])]
    )
    model = HSModel.from_disk(model_dir)
    gensim_w2v = load_gensim_model(gensim_model) if gensim_model is not None else None
    metrics: dict[str, Any] = {
        "model": model_summary(model, model_dir),
        "loss": loss_metrics(model),
        "analogies": analogy_metrics(model, analogies) if vectors else None,
        "similarity": similarity_metrics(model, similarity) if vectors else None,
        "next_word": None,
    }
    if heldout is not None:
        metrics["next_word"] = next_word_metrics(
            model,
            heldout,
            gensim_model=gensim_w2v,
            max_positions=max_positions,
            show_progress=show_progress,
        )
    if plots_dir is not None:
        metrics["plots"] = [str(p) for p in write_plots(metrics, plots_dir)]
    if output is not None:
        write_json(output, metrics)
    return metrics


def model_summary(model: HSModel, path: str | Path | None = None) -> dict[str, Any]:
    """What was evaluated: the settings that decide the scores."""
    return {
        "path": str(path) if path is not None else None,
        "n_words": len(model),
        "vector_size": model.vector_size,
        "sg": int(model.settings.get("sg", 0)),
        "cbow_mean": int(model.settings.get("cbow_mean", 1)),
        "window": int(model.settings.get("window", 5)),
        "head": model.trained_head.name if model.trained_head is not None else None,
        "normalizer": model.settings.get("normalizer"),
    }


def loss_metrics(model: HSModel) -> dict[str, Any]:
    """The per-epoch training loss from ``model.meta["loss_history"]``, if training kept it."""
    history = model.meta.get("loss_history")
    if not history or any(x is None for x in history):
        return {
            "per_epoch": None,
            "note": "the model's meta has no loss_history (not trained with `spacy-hs train`, "
            "or with training.loss_sample = 0)",
        }
    return {"per_epoch": [float(x) for x in history], "epochs": len(history)}


def _check_outputs(
    output: str | Path | None, plots_dir: str | Path | None, inputs: list[Any]
) -> None:
    """Before any work: no output may be an input, or lie inside the model directory (or any
    other model or pipeline directory), given directly or through a symbolic link."""
    if output is not None:
        check_output_location(output, inputs)
    if plots_dir is not None:
        check_plots_dir(Path(plots_dir))
        for name in (LOSS_PLOT, NEXT_WORD_PLOT):
            check_output_location(Path(plots_dir) / name, inputs)


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON atomically (a temporary sibling, then renamed); NaN and inf,
    which JSON cannot hold, become null."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(Errors.E209.format(path=path))
    with atomic_file(path, "w", encoding="utf8") as file:
        file.write(srsly.json_dumps(_json_safe(data), indent=2) + "\n")
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return finite(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
