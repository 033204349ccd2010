"""gensim's ``Word2Vec.predict_output_word`` (negative sampling) as a next-word baseline."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Errors, InputError, InputNotFoundError
from ..heads.protocol import Head
from ..hs_model import HSModel
from .common import check_readable, progress
from .scores import TOP_K, Score


class GensimBaseline:
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
        gensim_score = Score()
        same_positions = {name: Score() for name in self.heads}
        with progress(None, show_progress, "gensim predict_output_word", total=len(rows)) as bar:
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
    check_readable(path, "--gensim-model")
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
