"""Word-vector benchmarks: analogies (3CosAdd) and similarity, through gensim's evaluators."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.sources import gensim_test_data
from ..errors import Errors, InputNotFoundError, Warnings
from ..hs_model import HSModel
from .common import check_file, finite

ANALOGIES_FILE = "questions-words.txt"
SIMILARITY_FILES = ("wordsim353.tsv", "simlex999.txt")


def _default_file(name: str, option: str) -> Path:
    path = gensim_test_data() / name
    if not path.exists():
        raise InputNotFoundError(Errors.E203.format(path=path, option=option))
    return path


def _case_insensitive(model: HSModel) -> bool:
    """Apply the model's normalisation to the test words. gensim's ``case_insensitive=True``
    uppercases both the test words and the vocabulary, which for a lowercased vocabulary is the
    same as lowercasing the test words. A model without normaliser settings (built by hand)
    gets gensim's default, True."""
    normalizer = model.settings.get("normalizer")
    if not isinstance(normalizer, dict) or "lowercase" not in normalizer:
        return True
    return bool(normalizer["lowercase"])


def keyed_vectors(model: HSModel) -> Any:
    """The model's input vectors as a gensim ``KeyedVectors``, in the model's word order."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(model.vector_size, dtype=np.float32)
    kv.add_vectors(model.words, model.vectors)
    return kv


def analogy_metrics(
    model: HSModel, path: str | Path | None = None, kv: Any = None
) -> dict[str, Any]:
    """gensim's ``evaluate_word_analogies`` (3CosAdd): accuracy over the questions whose four
    words are all in the vocabulary, and how many questions that is out of the file's total."""
    path = check_file(path, "--analogies") if path else _default_file(ANALOGIES_FILE, "--analogies")
    kv = keyed_vectors(model) if kv is None else kv
    case_insensitive = _case_insensitive(model)
    n_total = _count_analogy_questions(path)
    _, sections = kv.evaluate_word_analogies(str(path), case_insensitive=case_insensitive)
    *by_section, total = sections
    n_correct, n_covered = len(total["correct"]), len(total["correct"]) + len(total["incorrect"])
    return {
        "file": str(path),
        "case_insensitive": case_insensitive,
        "accuracy": n_correct / n_covered if n_covered else None,
        "n_correct": n_correct,
        "n_covered": n_covered,
        "n_total": n_total,
        "coverage": n_covered / n_total if n_total else 0.0,
        "sections": {s["section"]: _section_accuracy(s) for s in by_section},
    }


def _section_accuracy(section: dict[str, Any]) -> dict[str, Any]:
    n_covered = len(section["correct"]) + len(section["incorrect"])
    accuracy = len(section["correct"]) / n_covered if n_covered else None
    return {"accuracy": accuracy, "n_covered": n_covered}


def _count_analogy_questions(path: Path) -> int:
    """Questions as gensim counts them: lines of four words after a section header."""
    with path.open(encoding="utf8", errors="replace") as file:
        return sum(1 for line in file if not line.startswith(": ") and len(line.split()) == 4)


def similarity_metrics(
    model: HSModel, paths: Sequence[str | Path] | None = None, kv: Any = None
) -> dict[str, dict[str, Any]]:
    """Spearman (and Pearson) correlation with human judgements, per file, from gensim's
    ``evaluate_word_pairs``; pairs with an out-of-vocabulary word are skipped and counted."""
    if paths:
        files = [check_file(p, "--similarity") for p in paths]
    else:
        files = [_default_file(name, "--similarity") for name in SIMILARITY_FILES]
    kv = keyed_vectors(model) if kv is None else kv
    case_insensitive = _case_insensitive(model)
    results = {}
    for path in files:
        n_total = _count_pairs(path)
        result: dict[str, Any] = {"file": str(path), "n_total": n_total}
        try:
            pearson, spearman, oov_percent = kv.evaluate_word_pairs(
                str(path), case_insensitive=case_insensitive
            )
        except ValueError:  # gensim raises when no pair is in the vocabulary
            warnings.warn(Warnings.W204.format(path=path), stacklevel=2)
            result.update(spearman=None, spearman_p=None, pearson=None, n_covered=0)
            result.update(oov_ratio=1.0 if n_total else None, coverage=0.0)
        else:
            oov_ratio = oov_percent / 100.0
            result.update(
                spearman=finite(spearman[0]),
                spearman_p=finite(spearman[1]),
                pearson=finite(pearson[0]),
                n_covered=round(n_total * (1.0 - oov_ratio)),
                oov_ratio=oov_ratio,
                coverage=1.0 - oov_ratio,
            )
        results[path.stem] = result
    return results


def _count_pairs(path: Path) -> int:
    """Pairs as gensim counts them: non-comment lines with three tab-separated fields."""
    total = 0
    with path.open(encoding="utf8", errors="replace") as file:
        for line in file:
            if line and not line.startswith("#"):
                fields = line.split("\t")
                if len(fields) == 3:
                    try:
                        float(fields[2])
                    except ValueError:
                        continue
                    total += 1
    return total
