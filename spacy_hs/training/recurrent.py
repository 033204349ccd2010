"""Training the recurrent head (``heads/recurrent.py``) on a token file, with thinc.

The token file's lines (sentences, ``eos_token`` appended if set) are read as one stream in
document order and cut into ``batch_size`` contiguous streams, read side by side ``bptt``
steps at a time (truncated back-propagation through time); each stream's LSTM state is carried
from one batch into the next, as Zaremba et al. (2014) train. Per batch:

* the ``RecurrentContext`` layer (``heads/context_layer.py``) gives the hidden vectors, with
  dropout;
* the compiled kernel ``_recurrent.path_loss_gradients`` scores each next word on the
  tree (the path math of ``_hs_kernels.h``) and gives the gradients of the loss (summed over
  the steps, averaged over the streams) for the hidden vectors and the output weights, and
  updates the n-gram table in place by SGD (sparse: it may hold 2^28 values);
* thinc's Adam, with gradient clipping, updates the embeddings, the LSTM and the output
  weights (dense: with V = 10,000 and H = 200, about a tenth of a batch's time; see
  ``bench/bench_ptb.py``'s training speed).

After each epoch the held-out text is scored as one stream, exactly as ``HSModel`` scores
(``RecurrentHead.stream``); once an epoch gains less than 1% the step sizes are multiplied by
``lr_decay``; after ``patience`` epochs without a gain, or ``max_minutes``, training stops and
the best parameters are kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.api import Adam, Model, fix_random_seed
from wasabi import msg

from .. import _recurrent
from ..errors import ConfigError, Errors
from ..heads.base import stream_contexts
from ..heads.context_layer import RecurrentContext
from ..heads.lstm import PARAMS, initial_state
from ..heads.ngram import NgramHead
from ..heads.recurrent import RecurrentHead
from ..progress import Progress
from .config import RecurrentHeadSettings, load_config, resolve_config
from .head import read_sentences, tune_cache

if TYPE_CHECKING:
    from ..hs_model import HSModel

SETTINGS = "spacy_hs.recurrent_head.v1"
# Relative held-out improvement below which the step sizes decay.
DECAY_BELOW = 0.01


def recurrent_settings(
    settings: RecurrentHeadSettings | None = None, **options: Any
) -> RecurrentHeadSettings:
    """``settings`` (default: the defaults) with ``options`` replacing some, validated by the
    config's resolver as a ``[head]`` section is."""
    values = {"@settings": SETTINGS, **(asdict(settings) if settings else {}), **options}
    return resolve_config(load_config({"head": values}))["head"]


def train_recurrent_head(
    model: HSModel,
    corpus_path: str | Path,
    heldout_path: str | Path | None = None,
    settings: RecurrentHeadSettings | None = None,
    *,
    progress: bool = True,
    **options: Any,
) -> RecurrentHead | None:
    """Train a recurrent head for ``model`` on a token file and return it (``attach_head`` puts
    it into the model); None if the settings say ``enabled = false``.

    The settings (``[head]`` with ``@settings = "spacy_hs.recurrent_head.v1"``):

    hidden_width: H, the LSTM's units. The embeddings start from the model's vectors.
    context_size: how many known words the head reads when asked with a plain context rather
        than a stream (``HSModel.predict_next``); a stream carries its state over everything.
    epochs: maximum passes over the training text.
    batch_size, bptt: streams read side by side, and steps per batch (back-propagation is
        truncated there; the state is carried on).
    learn_rate, grad_clip: thinc's Adam (its gradient clipping, per parameter array).
    lr_decay, patience: the plateau schedule and early stopping (see the module docstring).
    dropout: on the embeddings and the LSTM's outputs, while training.
    max_minutes: stop after this much training time (0: no limit); the best epoch is kept.
    eos_token: appended to every line (None: the lines already end with it, or no end word).
    seed: dropout masks and initial weights.
    heldout_fraction: without a held-out file, this fraction of the lines, at the end, is held
        out.
    ngram_orders, table_size, table_learn_rate, table_l2: the n-gram node term (RNNME): orders
        1..N hashed into a table of ``table_size`` values, trained by SGD at its own step size
        with L2; 0 orders: none.
    tune_cache: tune the document cache on the held-out text (``training.head.tune_cache``).
    """
    settings = recurrent_settings(settings, **options)
    if not settings.enabled:
        return None
    key_to_index = model.key_to_index
    eos_id = None
    if settings.eos_token is not None:
        if settings.eos_token not in key_to_index:
            raise ConfigError(Errors.E402.format(token=settings.eos_token))
        eos_id = key_to_index[settings.eos_token]
    sentences, _ = read_sentences(corpus_path, key_to_index, eos_id)
    if heldout_path is not None:
        heldout, _ = read_sentences(heldout_path, key_to_index, eos_id)
    else:
        n_held = max(1, int(len(sentences) * settings.heldout_fraction))
        sentences, heldout = sentences[:-n_held], sentences[-n_held:]
    n_streams = settings.batch_size
    if sum(map(len, sentences)) < n_streams * (settings.bptt + 1) or not heldout:
        raise ConfigError(
            Errors.E404.format(path=corpus_path, n_train=len(sentences), n_heldout=len(heldout))
        )
    trainer = _Trainer(model, settings)
    history = trainer.fit(sentences, heldout, progress)
    head = trainer.head(history)
    if settings.tune_cache:
        ids = np.concatenate([np.append(s, -1) for s in heldout]).astype(np.int32)
        head.history["cache"] = tune_cache(head, ids)
    if progress:
        msg.good(
            f"Recurrent head: best held-out perplexity {history['best_heldout_perplexity']:.1f} "
            f"(epoch {history['best_epoch']}), {history['train_seconds']:.0f} s"
        )
    return head


class _Trainer:
    """The thinc models (context layer, output weights), the optimizer and the n-gram table."""

    def __init__(self, hs_model: HSModel, settings: RecurrentHeadSettings):
        self.settings, self.tree = settings, hs_model.tree
        fix_random_seed(settings.seed)  # the dropout masks (thinc draws them from NumPy's)
        n_words, width = hs_model.vectors.shape
        units = settings.hidden_width
        self.context = RecurrentContext(n_words, width, units, settings.dropout)
        self.context.attrs["seed"] = settings.seed
        self.context.initialize()
        self.context.set_param("embeddings", hs_model.vectors.copy())
        rng = np.random.default_rng(settings.seed)
        weights = (rng.standard_normal((n_words - 1, units + 1)) * 0.01).astype(np.float32)
        weights[:, -1] = 0.0
        self.output = Model("tree_output", _no_forward, params={"output_weights": weights})
        self.optimizer = Adam(settings.learn_rate, grad_clip=settings.grad_clip, use_averages=False)
        self.table_rate = settings.table_learn_rate
        self.table = (
            np.zeros(settings.table_size, dtype=np.float32) if settings.ngram_orders else None
        )

    def head(self, history: dict[str, Any] | None = None) -> RecurrentHead:
        arrays = {name: self.context.get_param(name) for name in PARAMS}
        arrays["output_weights"] = self.output.get_param("output_weights")
        return RecurrentHead(
            arrays,
            self.tree,
            context_size=self.settings.context_size,
            table=self.table,
            orders=self.settings.ngram_orders,
            history=history,
        )

    def fit(
        self, sentences: list[np.ndarray], heldout: list[np.ndarray], progress: bool
    ) -> dict[str, Any]:
        settings = self.settings
        ids = np.concatenate(sentences).astype(np.int32)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        bases = self.bases(ids, lengths)
        n_streams, n_steps = settings.batch_size, settings.bptt
        per_stream = len(ids) // n_streams
        columns = ids[: per_stream * n_streams].reshape(n_streams, per_stream).T
        if bases is not None:
            bases = bases[: per_stream * n_streams].reshape(n_streams, per_stream, -1)
            bases = np.ascontiguousarray(bases.transpose(1, 0, 2))
        heldout_ids = np.concatenate(heldout).astype(np.int32)
        heldout_lengths = np.array([len(s) for s in heldout], dtype=np.int64)
        epochs: list[dict[str, Any]] = []
        best = (math.inf, 0, None)
        start, budget = time.perf_counter(), settings.max_minutes * 60 or math.inf
        learn_rate, out_of_time = settings.learn_rate, False
        for epoch in range(1, settings.epochs + 1):
            epoch_start = time.perf_counter()
            state = initial_state(n_streams, settings.hidden_width)
            total, count = 0.0, 0
            # No last line: the epoch's summary follows.
            meter = Progress(
                f"Epoch {epoch}",
                total=(per_stream - 1) * n_streams,
                unit="tokens",
                enabled=progress,
                final=False,
            )
            with meter:
                for first in range(0, per_stream - 1, n_steps):
                    last = min(first + n_steps, per_stream - 1)
                    inputs, targets = columns[first:last], columns[first + 1 : last + 1]
                    step_bases = None if bases is None else bases[first + 1 : last + 1]
                    log_likelihood, state = self.step(inputs, targets, step_bases, state)
                    total, count = total + log_likelihood, count + targets.size
                    note = f"perplexity {math.exp(-total / count):.1f}" if progress else None
                    meter.update(targets.size, note=note)
                    if time.perf_counter() - start > budget:
                        out_of_time = True
                        break
            heldout_ppl = self.perplexity(heldout_ids, heldout_lengths)
            seconds = time.perf_counter() - epoch_start
            entry = {
                "epoch": epoch,
                "train_perplexity": math.exp(-total / max(count, 1)),
                "heldout_perplexity": heldout_ppl,
                "learn_rate": learn_rate,
                "seconds": seconds,
                "tokens_per_second": count / seconds,
            }
            epochs.append(entry)
            if progress:
                msg.text(
                    f"Epoch {epoch}: train perplexity {entry['train_perplexity']:.1f}, "
                    f"held-out {heldout_ppl:.1f}, {count / seconds:,.0f} tokens/s"
                )
            previous = best[0]
            if heldout_ppl < best[0]:
                best = (heldout_ppl, epoch, self.snapshot())
            if heldout_ppl > previous * (1 - DECAY_BELOW):
                learn_rate *= settings.lr_decay
                self.table_rate *= settings.lr_decay
                self.optimizer.learn_rate = learn_rate
            if out_of_time or epoch - best[1] >= settings.patience:
                break
        self.restore(best[2])
        return {
            "architecture": RecurrentHead.architecture,
            "epochs": epochs,
            "best_epoch": best[1],
            "best_heldout_perplexity": best[0],
            "train_seconds": time.perf_counter() - start,
            "stopped_by_time_limit": out_of_time,
            "optimizer": "thinc Adam (dense) for the network and output weights; SGD (sparse, "
            "compiled) for the n-gram table",
            "settings": asdict(settings),
        }

    def bases(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
        """The n-gram features' table offsets at every token of a stream (int64 (N, orders));
        None without a node term."""
        if self.table is None:
            return None
        contexts = stream_contexts(ids, lengths, self.settings.ngram_orders)
        return self.head().node_offsets(contexts)

    def step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        bases: np.ndarray | None,
        state: tuple[np.ndarray, np.ndarray],
    ) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
        """One batch: forward, tree loss, backward, update. Returns the summed log-likelihood
        and the streams' states after the batch."""
        (outputs, final), backprop = self.context.begin_update((inputs, state))
        n_steps, n_streams, units = outputs.shape
        hidden = np.ones((n_steps * n_streams, units + 1), dtype=np.float32)
        hidden[:, :units] = outputs.reshape(-1, units)
        d_hidden = np.empty_like(hidden)
        weights = self.output.get_param("output_weights")
        d_weights = np.zeros_like(weights)
        tree = self.tree
        flat_bases = None
        if bases is not None:
            flat_bases = np.ascontiguousarray(bases.reshape(n_steps * n_streams, -1))
        log_likelihood = _recurrent.path_loss_gradients(
            hidden,
            np.ascontiguousarray(targets.reshape(-1), dtype=np.int32),
            weights,
            tree.path_offsets,
            tree.path_nodes,
            tree.path_codes,
            d_hidden,
            d_weights,
            scale=1.0 / n_streams,
            table=self.table if bases is not None else None,
            bases=flat_bases,
            table_rate=self.table_rate,
            table_l2=self.settings.table_l2,
        )
        backprop(d_hidden[:, :units].reshape(n_steps, n_streams, units))
        self.output.inc_grad("output_weights", d_weights)
        self.context.finish_update(self.optimizer)
        self.output.finish_update(self.optimizer)
        return log_likelihood, final

    def perplexity(self, ids: np.ndarray, lengths: np.ndarray) -> float:
        """The held-out text's perplexity as one stream (every token)."""
        view = self.head().stream(ids)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = np.arange(len(ids))
        log_probs = view.log_prob(view.contexts(starts, positions), ids)
        return float(np.exp(-np.mean(log_probs)))

    def snapshot(self) -> dict[str, np.ndarray]:
        arrays = {name: self.context.get_param(name).copy() for name in PARAMS}
        arrays["output_weights"] = self.output.get_param("output_weights").copy()
        if self.table is not None:
            arrays["table"] = self.table.copy()
        return arrays

    def restore(self, arrays: dict[str, np.ndarray] | None) -> None:
        if arrays is not None:
            for name in PARAMS:
                self.context.set_param(name, arrays[name])
            self.output.set_param("output_weights", arrays["output_weights"])
            if self.table is not None:
                self.table[...] = arrays["table"]
        if self.table is not None:
            NgramHead.round_table(self.table)  # the precision it is saved with


def _no_forward(model: Model, X: Any, is_train: bool) -> tuple[Any, Any]:
    """The output weights are read by the tree kernels, not by a forward pass."""
    return X, lambda dY: dY
