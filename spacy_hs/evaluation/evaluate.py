"""Evaluate a trained ``HSModel``: word analogies, word similarity, next-word prediction on a
held-out token file, and the training loss, written as a metrics JSON and PNG plots.

Next-word prediction, precisely. The held-out file is a token file (gensim ``LineSentence``
format: one sentence per line, tokens split on whitespace). Every token position ``t`` is a
*scored position* when

* its word is in the model's vocabulary, and
* at least one in-vocabulary word comes before it in the same sentence.

Everything else is excluded and counted: ``oov_target`` (the word at ``t`` is unknown; a
closed-vocabulary model gives it no probability) and ``no_known_context`` (the word is known, but
nothing known precedes it in its sentence, for example the first token of every sentence).
``coverage = scored / tokens``. A head reads the last ``context_size`` known words before ``t``,
oldest first, never crossing the sentence boundary (unknown words are skipped, not padded).

On the scored positions, for every head the model has (``HSModel.head_names()``: gensim's
CBOW-style head and the trained one, whatever its name) and each baseline:

* ``hit_at_1`` / ``hit_at_10``: the fraction of positions whose word is the top / in the top 10;
* ``perplexity``: ``exp(-mean log P(word | context))``, natural log.

Every predictor is measured on the same scored positions, except gensim's
``predict_output_word``, which costs O(V) per query and so is measured on a random sample of at
most ``max_positions`` of them (``gensim_predict_output_word.same_positions`` gives each HS head
on exactly that sample, for a like-for-like comparison). A head that predicts a sentence's first
word is also measured on every known word (``with_sentence_starts``), as language models are.
The log-probabilities come from ``HSModel.log_prob_ids``, the top-k from the head's ``top_k``.

When the model has a saved document cache (``spacy_hs.cache``: ``settings["cache"]``, tuned by
``spacy-hs train``), the trained head is also measured with it, on the same positions
(``"<head>+cache"``). The held-out file is one document, read in its order, unless blank lines
mark where documents end (``spacy-hs preprocess --doc-marker``): then the cache starts empty at
each document.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import srsly

from ..cache import CacheSettings, cache_counts, mix_log_probs
from ..corpus import tokenfile
from ..corpus.sources import gensim_test_data
from ..document import cached_top_k
from ..errors import (
    ConfigError,
    Errors,
    InputError,
    InputNotFoundError,
    OutputError,
    Warnings,
)
from ..heads.base import stream_contexts
from ..heads.protocol import Head
from ..hs_model import HSModel
from ..util import atomic_file, check_output_location, is_positive_int, special_file

TOP_K = 10
# Positions scored together: one batched tree search per head and chunk.
CHUNK_SIZE = 4096
DEFAULT_MAX_POSITIONS = 5000
ANALOGIES_FILE = "questions-words.txt"
SIMILARITY_FILES = ("wordsim353.tsv", "simlex999.txt")
PLOTS_EXTRA = 'pip install "spacy-hs[plots]"'
LOSS_PLOT = "loss.png"
NEXT_WORD_PLOT = "next_word.png"
# Plots carry this in their PNG "Software" text chunk: a later run may replace them.
PLOT_SOFTWARE = "spacy-hs"


# -- public entry point ---------------------------------------------------------------------


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
        heldout = _check_heldout(heldout)
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


# -- training loss --------------------------------------------------------------------------


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


# -- intrinsic: analogies and similarity ----------------------------------------------------


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
    path = (
        _check_file(path, "--analogies") if path else _default_file(ANALOGIES_FILE, "--analogies")
    )
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
        files = [_check_file(p, "--similarity") for p in paths]
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
                spearman=_finite(spearman[0]),
                spearman_p=_finite(spearman[1]),
                pearson=_finite(pearson[0]),
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


# -- next-word prediction -------------------------------------------------------------------


@dataclass
class _Score:
    """Running next-word metrics of one predictor over scored positions."""

    n: int = 0
    hit_1: int = 0
    hit_10: int = 0
    neg_log_prob: float = 0.0

    def add(self, top_ids: np.ndarray, log_probs: np.ndarray, targets: np.ndarray) -> None:
        self.n += len(targets)
        self.hit_1 += int((top_ids[:, 0] == targets).sum())
        self.hit_10 += int((top_ids == targets[:, None]).any(axis=1).sum())
        self.neg_log_prob -= float(np.sum(log_probs, dtype=np.float64))

    def add_head(
        self, head: Head, contexts: np.ndarray, targets: np.ndarray, log_probs: np.ndarray
    ) -> None:
        """Add a head's scores: its top-k for ``contexts`` (a context matrix) against
        ``targets``, and their ``log_probs``; rows the head cannot score (NaN) are left out."""
        rows = ~np.isnan(log_probs)
        top_ids, _ = head.top_k(contexts[rows], TOP_K)
        self.add(top_ids, log_probs[rows], targets[rows])

    def __add__(self, other: _Score) -> _Score:
        return _Score(
            self.n + other.n,
            self.hit_1 + other.hit_1,
            self.hit_10 + other.hit_10,
            self.neg_log_prob + other.neg_log_prob,
        )

    def result(self, **extra: Any) -> dict[str, Any]:
        if not self.n:
            return {"n_scored": 0, "hit_at_1": None, "hit_at_10": None, "perplexity": None}
        return {
            "n_scored": self.n,
            "hit_at_1": self.hit_1 / self.n,
            "hit_at_10": self.hit_10 / self.n,
            "perplexity": _finite(math.exp(min(self.neg_log_prob / self.n, 700.0))),
            **extra,
        }


def model_heads(model: HSModel) -> dict[str, Head]:
    """Every head the model answers through, by name ("auto" is an alias of one of them)."""
    return {name: model.head(name) for name in model.head_names() if name != "auto"}


def next_word_metrics(
    model: HSModel,
    heldout: str | Path,
    *,
    gensim_model: Any = None,
    max_positions: int = DEFAULT_MAX_POSITIONS,
    chunk_size: int = CHUNK_SIZE,
    show_progress: bool = True,
) -> dict[str, Any]:
    """hit@1, hit@10 and perplexity of every head on a held-out token file, beside a unigram
    baseline and (if ``gensim_model`` is given) gensim's ``predict_output_word``.

    See the module docstring for which positions are scored. The file is streamed in chunks of
    about ``chunk_size`` tokens (whole sentences), so memory does not grow with its size.
    """
    heldout = _check_heldout(heldout)
    _check_normalizer(model, heldout)
    heads = model_heads(model)
    max_context = max(int(head.context_size) for head in heads.values())
    scores = {name: _Score() for name in heads}
    # Heads that predict a sentence's first word are also scored on those.
    starters = {name: head for name, head in heads.items() if head.predicts_sentence_start}
    start_scores = {name: _Score() for name in starters}
    unigram = _Score()
    unigram_log_probs, unigram_top = _unigram(model)
    gensim = _GensimBaseline(model, heads, gensim_model, max_positions)
    counts = {"n_sentences": 0, "n_documents": 0, "n_tokens": 0, "n_scored": 0, "oov_target": 0}
    cached = _CacheRow.of(model)

    def score_chunk(sentences: list[list[str]], documents: list[int]) -> None:
        get = model.key_to_index.get
        token_ids = np.array([get(t, -1) for s in sentences for t in s], dtype=np.int32)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        # Each token's context, the last max_context known words before it in its sentence;
        # a head reads its last context_size columns (the same as its own context).
        contexts = stream_contexts(token_ids, lengths, max_context)
        known = token_ids >= 0
        scored = known & (contexts[:, -1] >= 0)  # a known word with a known word before it
        starts = known & ~scored
        counts["n_scored"] += int(scored.sum())
        counts["oov_target"] += int((~known).sum())
        for name, head in heads.items():
            size = int(head.context_size)
            log_probs = model.log_prob_ids(
                token_ids, lengths, head=name, unknown=None, cache=None
            )
            for rows, score in ((scored, scores), (starts, start_scores)):
                if name in score:
                    score[name].add_head(
                        head, contexts[rows, -size:], token_ids[rows], log_probs[rows]
                    )
            if cached is not None and name == cached.name:
                cached.add(
                    token_ids, np.repeat(documents, lengths), contexts[:, -size:], log_probs,
                    scored, starts if name in starters else None,
                )
        targets = token_ids[scored]
        unigram.add(
            np.broadcast_to(unigram_top, (len(targets), len(unigram_top))),
            unigram_log_probs[targets],
            targets,
        )
        if gensim.enabled:
            sentence_of = np.repeat(np.arange(len(sentences)), lengths)
            position = np.arange(len(token_ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            for row in np.flatnonzero(scored).tolist():
                tokens = sentences[sentence_of[row]]
                gensim.offer(tokens, int(position[row]), contexts[row], int(token_ids[row]))

    with _progress(heldout, show_progress, "Scoring the held-out file (bytes)") as progress:
        chunk: list[list[str]] = []
        chunk_documents: list[int] = []  # the document of each sentence of the chunk
        n_chunk = 0
        document, document_open = 0, False  # blank lines end documents (tokenfile.documents)
        for tokens in tokenfile.sentences(
            heldout, what="Held-out file", on_bytes=progress.update, blank_lines=True
        ):
            if not tokens:
                document += document_open
                document_open = False
                continue
            counts["n_documents"] += not document_open
            document_open = True
            counts["n_sentences"] += 1
            counts["n_tokens"] += len(tokens)
            chunk.append(tokens)
            chunk_documents.append(document)
            n_chunk += len(tokens)
            if n_chunk >= chunk_size:
                score_chunk(chunk, chunk_documents)
                chunk, chunk_documents, n_chunk = [], [], 0
        if chunk:
            score_chunk(chunk, chunk_documents)

    if not counts["n_tokens"]:
        raise InputError(Errors.E201.format(path=heldout))
    n_scored = counts["n_scored"]
    no_known_context = counts["n_tokens"] - n_scored - counts["oov_target"]
    if not n_scored:
        raise InputError(
            Errors.E202.format(
                path=heldout,
                n_tokens=counts["n_tokens"],
                oov=counts["oov_target"],
                no_context=no_known_context,
            )
        )
    predictors: dict[str, Any] = {
        name: scores[name].result(context_size=int(head.context_size))
        for name, head in heads.items()
    }
    for name in starters:  # every known word, as a language model is measured (KenLM, SRILM)
        every_word = (scores[name] + start_scores[name]).result()
        every_word["coverage"] = every_word["n_scored"] / counts["n_tokens"]
        predictors[name]["with_sentence_starts"] = every_word
    if cached is not None:
        predictors.update(cached.results(counts["n_tokens"]))
    predictors["unigram"] = unigram.result()
    predictors["gensim_predict_output_word"] = gensim.result(show_progress)
    return {
        "heldout": str(heldout),
        "n_sentences": counts["n_sentences"],
        "n_documents": counts["n_documents"],
        "n_tokens": counts["n_tokens"],
        "n_scored": n_scored,
        "coverage": n_scored / counts["n_tokens"],
        "excluded": {"oov_target": counts["oov_target"], "no_known_context": no_known_context},
        "scored_positions": (
            "tokens in the vocabulary with at least one in-vocabulary word before them in the "
            "same sentence; excluded: oov_target (word not in the vocabulary) and "
            "no_known_context (no known word before it in its sentence)"
        ),
        "predictors": predictors,
    }


class _CacheRow:
    """The trained head with the model's saved document cache (``spacy_hs.cache``), on the same
    positions as the head alone. The held-out file is one document read in order, or several
    where blank lines mark their ends: the cache runs across sentences and chunks, and starts
    empty at each document."""

    def __init__(self, model: HSModel, head: Head, cache: CacheSettings):
        self.model, self.head, self.cache = model, head, cache
        self.name = head.name
        self.score, self.start_score = _Score(), _Score()
        self.history = np.zeros(0, dtype=np.int32)  # the open document's last N known ids
        self.history_document = -1

    @classmethod
    def of(cls, model: HSModel) -> _CacheRow | None:
        cache = model.cache_settings("auto")
        if model.trained_head is None or cache is None or cache.weight == 0:
            return None
        return cls(model, model.head(model.trained_head.name), cache)

    def add(
        self,
        token_ids: np.ndarray,
        documents: np.ndarray,
        contexts: np.ndarray,
        head_log_probs: np.ndarray,
        scored: np.ndarray,
        starts: np.ndarray | None,
    ) -> None:
        """Score a chunk (token ids, each token's document number), with the head's own
        log-probabilities and its contexts; ``starts``: also score these rows apart."""
        size = self.cache.size
        n_history = len(self.history)
        stream = np.concatenate([self.history, token_ids])
        stream_documents = np.concatenate(
            [np.full(n_history, self.history_document), documents]
        )
        counts, held = cache_counts(stream, size, documents=stream_documents)
        log_probs = mix_log_probs(
            head_log_probs, counts[n_history:], held[n_history:], self.cache.weight
        )
        known = stream >= 0
        known_before = np.concatenate([[0], np.cumsum(known)])
        known_ids = stream[known]
        firsts = np.flatnonzero(np.diff(stream_documents, prepend=-1))
        document_first = np.repeat(firsts, np.diff(np.append(firsts, len(stream))))
        for rows, score in ((scored, self.score), (starts, self.start_score)):
            if rows is None:
                continue
            rows = rows & ~np.isnan(log_probs)
            positions = np.flatnonzero(rows) + n_history
            ends = known_before[positions]
            lows = np.maximum(ends - size, known_before[document_first[positions]])
            windows = [known_ids[low:end] for low, end in zip(lows.tolist(), ends.tolist())]
            top_ids, _ = cached_top_k(
                self.head, contexts[rows], windows, self.cache, TOP_K, len(self.model)
            )
            score.add(top_ids, log_probs[rows], token_ids[rows])
        last = stream_documents[-1] if len(stream) else self.history_document
        self.history = stream[(stream_documents == last) & known][-size:].astype(np.int32)
        self.history_document = last

    def results(self, n_tokens: int) -> dict[str, Any]:
        extra = {
            "head": self.name,
            "cache": self.cache.to_dict(),
            "context_size": int(self.head.context_size),
        }
        result = self.score.result(**extra)
        if self.head.predicts_sentence_start:
            every_word = (self.score + self.start_score).result()
            every_word["coverage"] = every_word["n_scored"] / n_tokens
            result["with_sentence_starts"] = every_word
        return {f"{self.name}+cache": result}


def _unigram(model: HSModel) -> tuple[np.ndarray, np.ndarray]:
    """Unigram log-probabilities (counts / total) and the ids of the TOP_K most frequent
    words (ties broken by id)."""
    counts = model.counts.astype(np.float64)
    log_probs = np.log(counts / counts.sum())
    top = np.argsort(-counts, kind="stable")[:TOP_K]
    return log_probs, top


class _GensimBaseline:
    """gensim's ``Word2Vec.predict_output_word`` on a seeded random sample of scored positions.

    Its context is the last ``window`` words before the position that gensim's vocabulary knows
    (same sentence), as ``predict_output_word`` itself skips unknown words. Hits come from
    calling ``predict_output_word(context, topn=10)``. For perplexity, the target's probability
    is computed as gensim computes its distribution: ``softmax(h . syn1neg.T)``, with ``h`` the
    mean (``cbow_mean=1``) or sum of the context vectors (in log space, so that it cannot
    overflow).
    """

    def __init__(
        self, model: HSModel, heads: dict[str, Head], gensim_model: Any, max_positions: int
    ):
        self.model = model
        self.heads = heads
        self.gensim = gensim_model
        self.max_positions = max_positions
        self.reason = _gensim_unavailable(gensim_model)
        self.enabled = self.reason is None
        self.sample: list[tuple[list[str], str, np.ndarray, int]] = []
        self.n_offered = 0
        self.rng = random.Random(0)

    def offer(self, tokens: list[str], t: int, hs_context: np.ndarray, target: int) -> None:
        """Reservoir sampling: every scored position has the same chance to be kept.

        hs_context: the position's context row for the HS heads (the widest one's)."""
        if not self.enabled:
            return
        self.n_offered += 1
        if len(self.sample) < self.max_positions:
            slot = len(self.sample)
            self.sample.append(None)  # type: ignore[arg-type]
        else:
            slot = self.rng.randrange(self.n_offered)
            if slot >= self.max_positions:
                return
        vocab = self.gensim.wv.key_to_index
        window = int(self.gensim.window)
        context: list[str] = []
        for token in reversed(tokens[:t]):
            if token in vocab:
                context.append(token)
                if len(context) == window:
                    break
        context.reverse()
        self.sample[slot] = (context, tokens[t], hs_context.copy(), target)

    def result(self, show_progress: bool) -> dict[str, Any]:
        if not self.enabled:
            return {"available": False, "reason": self.reason}
        wv, syn1neg = self.gensim.wv, self.gensim.syn1neg
        rows = [s for s in self.sample if s[0] and s[1] in wv.key_to_index]
        gensim_score = _Score()
        same_positions = {name: _Score() for name in self.heads}
        with _progress(None, show_progress, "gensim predict_output_word", total=len(rows)) as bar:
            for start in range(0, len(rows), 256):
                batch = rows[start : start + 256]
                targets = np.array([wv.key_to_index[s[1]] for s in batch], dtype=np.int64)
                top_ids = np.full((len(batch), TOP_K), -1, dtype=np.int64)
                for i, (context, _, _, _) in enumerate(batch):
                    top = self.gensim.predict_output_word(context, topn=TOP_K) or []
                    top_ids[i, : len(top)] = [wv.key_to_index[w] for w, _ in top]
                hidden = np.stack([_gensim_hidden(self.gensim, s[0]) for s in batch])
                logits = hidden.astype(np.float64) @ syn1neg.T.astype(np.float64)
                log_norm = np.logaddexp.reduce(logits, axis=1)
                log_probs = logits[np.arange(len(batch)), targets] - log_norm
                gensim_score.add(top_ids, log_probs, targets)
                # The HS heads on exactly these positions.
                hs_targets = np.array([s[3] for s in batch], dtype=np.int32)
                hs_contexts = np.stack([s[2] for s in batch])
                for name, head in self.heads.items():
                    contexts = hs_contexts[:, -int(head.context_size) :]
                    log_probs = head.log_prob(contexts, hs_targets)
                    same_positions[name].add_head(head, contexts, hs_targets, log_probs)
                bar.update(len(batch))
        sampled = self.n_offered > self.max_positions
        return {
            "available": True,
            **gensim_score.result(),
            "n_sampled": len(self.sample),
            "n_scored_positions_total": self.n_offered,
            "sampled": sampled,
            "note": (
                f"O(V) per query, so measured on a seeded random sample of {len(self.sample)} "
                f"of the {self.n_offered} scored positions (--max-positions); positions whose "
                "word or whole context gensim's vocabulary lacks are skipped. Perplexity from "
                "softmax(h . syn1neg), the distribution predict_output_word ranks by."
                if sampled
                else "measured on all scored positions whose word and some context word are in "
                "gensim's vocabulary; perplexity from softmax(h . syn1neg), the distribution "
                "predict_output_word ranks by."
            ),
            "window": int(self.gensim.window),
            "negative": int(self.gensim.negative),
            "same_positions": {name: score.result() for name, score in same_positions.items()},
        }


def _gensim_hidden(gensim_model: Any, context: list[str]) -> np.ndarray:
    """gensim's ``predict_output_word`` hidden vector: sum, or mean if ``cbow_mean``."""
    wv = gensim_model.wv
    hidden = np.sum(wv.vectors[[wv.key_to_index[w] for w in context]], axis=0)
    return hidden / len(context) if gensim_model.cbow_mean else hidden


def _gensim_unavailable(gensim_model: Any) -> str | None:
    """Why gensim's ``predict_output_word`` cannot be measured, or None if it can."""
    if gensim_model is None:
        return "no gensim model given (--gensim-model)"
    if not gensim_model.negative or not hasattr(gensim_model, "syn1neg"):
        reason = (
            f"gensim's predict_output_word needs negative sampling; this gensim model has "
            f"hs={gensim_model.hs}, negative={gensim_model.negative}"
        )
        try:  # Report gensim's own words.
            gensim_model.predict_output_word([gensim_model.wv.index_to_key[0]], topn=1)
        except RuntimeError as err:
            reason += f", and gensim raises: {err}"
        return reason
    return None


def load_gensim_model(path: str | Path) -> Any:
    """Load a gensim ``Word2Vec`` saved with ``.save()``. gensim unpickles it: load only files
    you made."""
    from gensim.models import Word2Vec

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E205.format(path=path))
    _check_readable(path, "--gensim-model")
    try:
        gensim_model = Word2Vec.load(str(path))
    except Exception as err:  # unpickling raises many unrelated types on a wrong file
        raise InputError(
            Errors.E206.format(path=path, reason=f"{type(err).__name__}: {err}")
        ) from None
    if not isinstance(gensim_model, Word2Vec):
        raise InputError(
            Errors.E206.format(path=path, reason=f"it holds a {type(gensim_model).__name__}")
        )
    return gensim_model


def _check_outputs(
    output: str | Path | None, plots_dir: str | Path | None, inputs: list[Any]
) -> None:
    """Before any work: no output may be an input, or lie inside the model directory (or any
    other model or pipeline directory), given directly or through a symbolic link."""
    if output is not None:
        check_output_location(output, inputs)
    if plots_dir is not None:
        _check_plots_dir(Path(plots_dir))
        for name in (LOSS_PLOT, NEXT_WORD_PLOT):
            check_output_location(Path(plots_dir) / name, inputs)


def _check_plots_dir(plots_dir: Path) -> None:
    if plots_dir.exists() and not plots_dir.is_dir():
        raise OutputError(Errors.E186.format(path=plots_dir))


def _check_heldout(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E200.format(path=path))
    tokenfile.check_path(path, "Held-out file")  # a directory, a FIFO, a device (/dev/null)
    if path.stat().st_size == 0:
        raise InputError(Errors.E201.format(path=path))
    return path


def _check_normalizer(model: HSModel, heldout: Path) -> None:
    """Warn if the held-out file was normalised differently from the training corpus."""
    expected = model.settings.get("normalizer")
    if expected is None:
        return
    found = (tokenfile.read_meta(heldout) or {}).get("normalizer")
    if found is not None and found != expected:
        warnings.warn(
            Warnings.W201.format(path=heldout, found=found, expected=expected), stacklevel=3
        )


def _check_file(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E208.format(path=path, option=option))
    _check_readable(path, option)
    return path


def _check_readable(path: Path, option: str) -> None:
    """InputError unless ``path`` is a regular file this process may read: checked before it
    is opened, so that a FIFO never blocks and a directory is not called missing."""
    kind = "a directory" if path.is_dir() else special_file(path)
    if kind is not None:
        raise InputError(Errors.E210.format(option=option, path=path, kind=kind))
    if not os.access(path, os.R_OK):
        reason = "permission denied (PermissionError)"
        raise InputError(Errors.E185.format(path=path, reason=reason))


# -- plots ----------------------------------------------------------------------------------


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
    _check_plots_dir(plots_dir)
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


# -- output ---------------------------------------------------------------------------------


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
        return _finite(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _progress(path: Path | None, show: bool, desc: str, total: int | None = None) -> Any:
    """A tqdm bar over a file's bytes (or ``total`` items); silent unless ``show``."""
    from tqdm import tqdm

    if path is not None:
        total, unit, scale = path.stat().st_size, "B", True
    else:
        unit, scale = "query", False
    return tqdm(total=total, unit=unit, unit_scale=scale, desc=desc, leave=False, disable=not show)
