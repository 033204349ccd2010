"""The training engine of the tree heads (directional, n-gram): streams a token file through
the compiled kernels of _head_train.pyx with several worker threads.

1. The token file is read once, line by line, and written as an *encoded corpus*: int32 word
   ids, ``-1`` after each sentence, unknown words skipped (as at prediction time). Held-out lines
   go to a second file. Nothing of the corpus is kept in memory.
2. Each epoch splits the encoded file into chunks (at most ``MAX_CHUNKS``, so the bookkeeping
   does not grow with the corpus either), shuffles their order, and hands them to ``workers``
   threads. Each thread reads its chunk through a fixed buffer and updates the shared arrays
   without locks, releasing the GIL (Hogwild, as gensim's ``corpus_file`` mode and word2vec.c).
3. After each epoch the held-out perplexity is computed by the same kernels (no dropout), the
   best parameters are kept, and training stops after ``patience`` epochs without improvement.

Every setting comes from one ``HeadSettings`` (the resolved ``[head]`` config section), taken
as it is: the engine writes no default of its own.

The model, its gradient and the update rules are documented in _head_train.pyx.
"""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._head_train import HeadTrainer
from ..corpus import tokenfile
from ..errors import ConfigError, Errors, InputError
from ..heads.directional import initial_arrays
from ..progress import Progress
from ..util import available_cores
from .config import HeadSettings
from .scratch import ScratchDirectory

# A chunk is at least this many ids (a thread's unit of work), and an epoch at most this many
# chunks, whatever the corpus size.
MIN_CHUNK = 4096
MAX_CHUNKS = 4096
# Ids written to the encoded file at a time.
WRITE_BLOCK = 1 << 15
# At most this many held-out ids are returned for tuning the document cache.
CACHE_TUNING_IDS = 1 << 21
# Without a held-out file, whole blocks of lines are held out: a document (ended by a blank
# line) or at most this many lines, so the held-out text keeps its order.
HELDOUT_BLOCK = 100
SCHEDULES = ("plateau", "stall", "linear")
# The linear schedule stops decaying here (a fraction of the initial learning rate).
LINEAR_FLOOR = 1e-4
# Relative held-out improvement below which the plateau schedule starts to decay (and below
# which the stall schedule decays after an epoch).
DECAY_BELOW = 0.01
DRAW_BATCH = 65536  # held-out side draws per batch (the split is the same for any corpus size)
# A run has diverged when the held-out perplexity or the loss is not finite, or the perplexity
# is this many times the untrained head's: it is stopped there (E416), before anything is saved.
DIVERGED_ABOVE = 10.0


@dataclass(frozen=True)
class EncodedCorpus:
    """An encoded token file: ``n_ids`` int32 ids (words and sentence ends) at ``path``."""

    path: Path
    n_ids: int
    n_tokens: int
    n_sentences: int


def token_lines(path: str | Path) -> Iterator[list[str]]:
    """The tokens of each line of a token file (``corpus.tokenfile``), an empty list for each
    blank line (a document's end); the file is checked at once, not when the first line is
    read."""
    tokenfile.check_path(Path(path), what="Head training file")
    return tokenfile.sentences(path, what="Head training file", blank_lines=True)


def encode_sentences(
    sentences: Iterable[Sequence[str]],
    key_to_index: Mapping[str, int],
    directory: Path,
    *,
    eos_id: int | None = None,
    heldout_fraction: float,
    seed: int,
) -> tuple[EncodedCorpus, EncodedCorpus | None, int]:
    """Encode sentences (token lists, e.g. ``token_lines(path)``; an empty list marks a
    document's end) into ``directory``: known word ids, ``eos_id`` appended to every non-empty
    sentence if given, in train.ids; and, if ``heldout_fraction`` (0: none), that fraction of
    the blocks of lines (a document, or ``HELDOUT_BLOCK`` lines; drawn with ``seed``) in
    heldout.ids instead, in order. Returns (train, held-out or None, unknown tokens skipped in
    train)."""
    draws = np.empty(0)
    batches = _block_draws(seed)
    outputs = [_Writer(directory / "train.ids")]
    if heldout_fraction:
        outputs.append(_Writer(directory / "heldout.ids"))
    n_unknown, block, lines, side = 0, 0, 0, 0
    try:
        for tokens in sentences:
            if heldout_fraction and lines == 0:  # a new block: draw its side
                if block % DRAW_BATCH == 0:  # draws in batches: the same split for any size
                    draws = next(batches)
                side = int(draws[block % DRAW_BATCH] < heldout_fraction)
                block += 1
            lines = 0 if not tokens or lines + 1 >= HELDOUT_BLOCK else lines + 1
            ids = [key_to_index[t] for t in tokens if t in key_to_index]
            if side == 0:
                n_unknown += len(tokens) - len(ids)
            if eos_id is not None and tokens:
                ids.append(eos_id)
            if ids:
                outputs[side].add(ids)
    finally:
        corpora = [writer.close() for writer in outputs]
    return corpora[0], (corpora[1] if heldout_fraction else None), n_unknown


class _Writer:
    def __init__(self, path: Path):
        self.path = path
        self.file = path.open("wb")
        self.block = array("i")
        self.n_ids = self.n_tokens = self.n_sentences = 0

    def add(self, ids: list[int]) -> None:
        self.block.extend(ids)
        self.block.append(-1)
        self.n_tokens += len(ids)
        self.n_sentences += 1
        if len(self.block) >= WRITE_BLOCK:
            self._write()

    def _write(self) -> None:
        self.block.tofile(self.file)
        self.n_ids += len(self.block)
        self.block = array("i")

    def close(self) -> EncodedCorpus:
        self._write()
        self.file.close()
        return EncodedCorpus(self.path, self.n_ids, self.n_tokens, self.n_sentences)


def _block_draws(seed: int) -> Iterator[np.ndarray]:
    """The uniform draws that put each block of held-out lines on a side, in batches."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.random(DRAW_BATCH)


def check_heldout_split(n_lines: int, settings: HeadSettings, corpus_name: str) -> None:
    """E418, before any training, if the held-out split of a corpus of ``n_lines`` lines
    (without a held-out file) is sure to leave the training or the held-out side empty: it has
    at most ``n_lines`` blocks, and those blocks' draws all fall on one side."""
    if n_lines > DRAW_BATCH:
        return  # 65,536 blocks all on one side: not for any heldout_fraction in (0, 1)
    sides = next(_block_draws(settings.seed))[: max(n_lines, 1)] < settings.heldout_fraction
    if n_lines < 2 or sides.all() or not sides.any():
        raise InputError(
            Errors.E418.format(
                path=corpus_name, n_lines=n_lines, fraction=settings.heldout_fraction
            )
        )


def resolve_workers(workers: int) -> int:
    """``workers``, or all the cores this process may use if 0."""
    return workers or available_cores()


class HeadEngine:
    """Trains a HeadTrainer's arrays on encoded corpora.

    trainer: the kernels and the shared arrays.
    settings: the schedule, step sizes, early stopping and threads (``HeadSettings``).
    progress: show the progress of each epoch (``spacy_hs.progress``).
    on_epoch: called after every epoch with that epoch's history entry (for logging).
    """

    def __init__(
        self,
        trainer: HeadTrainer,
        settings: HeadSettings,
        *,
        progress: bool,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.trainer = trainer
        self.settings = settings
        self.progress = progress
        self.on_epoch = on_epoch
        self.n_workers = resolve_workers(settings.workers)
        self._best: dict[str, np.ndarray] = {}
        self.workers = [
            trainer.worker(settings.seed * 1000003 + i + 1) for i in range(self.n_workers)
        ]

    # -- one pass ---------------------------------------------------------------------------

    def score(self, corpus: EncodedCorpus) -> tuple[float, int]:
        """(sum of log P, number of predictions) over an encoded corpus, no dropout."""
        path = os.fsencode(corpus.path)
        bounds = _chunk_bounds(corpus.n_ids)
        results = self._parallel(
            range(len(bounds) - 1),
            lambda worker, i: self.trainer.score_chunk(worker, path, bounds[i], bounds[i + 1]),
        )
        return sum(r[0] for r in results), sum(r[1] for r in results)

    def perplexity(self, corpus: EncodedCorpus) -> float:
        total, count = self.score(corpus)
        if not count or not math.isfinite(total):
            return math.inf
        return math.exp(min(-total / count, 700.0))  # past e^700 it is diverged: no overflow

    def train_epoch(
        self,
        corpus: EncodedCorpus,
        learn_rate: Callable[[int], float],
        rng: np.random.Generator,
        meter: Progress | None = None,
    ) -> tuple[float, int]:
        """One pass over the corpus in a random chunk order. ``learn_rate(ids_done)`` gives each
        chunk's rate from the ids issued so far this epoch. Returns (mean negative
        log-likelihood with dropout, number of predictions)."""
        path = os.fsencode(corpus.path)
        bounds = _chunk_bounds(corpus.n_ids)
        order = rng.permutation(len(bounds) - 1)
        issued = [0]  # ids issued this epoch
        lock = threading.Lock()
        progress = {"ids": 0, "loss": 0.0, "count": 0}

        def run(worker, chunk: int) -> tuple[float, int]:
            start, end = int(bounds[chunk]), int(bounds[chunk + 1])
            with lock:
                rate = learn_rate(issued[0])
                issued[0] += end - start
            scale = rate / self.settings.learn_rate  # the schedule scales every step size
            total, count = self.trainer.train_chunk(
                worker,
                path,
                start,
                end,
                rate,
                self.settings.dense_learn_rate * scale,
                self.settings.table_learn_rate * scale,
            )
            with lock:
                progress["ids"] += end - start
                progress["loss"] -= total
                progress["count"] += count
            return total, count

        def report() -> None:
            if meter is not None and progress["ids"] != meter.count:
                loss = progress["loss"] / progress["count"] if progress["count"] else None
                note = None if loss is None else f"loss {loss:.3f}"
                meter.update(progress["ids"] - meter.count, note=note)

        results = self._parallel(order.tolist(), run, report)
        report()
        count = sum(r[1] for r in results)
        return (-sum(r[0] for r in results) / count if count else math.nan), count

    def _parallel(
        self,
        items: Any,
        function: Callable[[Any, Any], Any],
        report: Callable[[], None] | None = None,
    ) -> list[Any]:
        """Call ``function(worker, item)`` for every item, on ``n_workers`` threads that take
        the next item as they finish one."""
        queue = iter(list(items))
        lock = threading.Lock()
        results: list[Any] = []
        errors: list[BaseException] = []

        def loop(worker) -> None:
            while not errors:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                try:
                    result = function(worker, item)
                except BaseException as err:  # re-raised in the calling thread
                    errors.append(err)
                    return
                with lock:
                    results.append(result)

        if self.n_workers == 1:
            for item in queue:  # in this thread: report as each item ends
                results.append(function(self.workers[0], item))
                if report is not None:
                    report()
        else:
            threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in self.workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    if report is not None:
                        report()
        if errors:
            raise errors[0]
        return results

    # -- the whole run -------------------------------------------------------------------------

    def fit(self, train: EncodedCorpus, heldout: EncodedCorpus) -> dict[str, Any]:
        """Train for up to ``epochs`` epochs with early stopping on the held-out perplexity;
        the trainer's arrays end as the best ones seen. Returns the history."""
        s = self.settings
        rng = np.random.default_rng(s.seed)
        initial = self.perplexity(heldout)
        history: dict[str, Any] = {
            "optimizer": s.optimizer,
            "lr_schedule": s.lr_schedule,
            "workers": self.n_workers,
            "n_train_tokens": train.n_tokens,
            "n_heldout_tokens": heldout.n_tokens,
            "initial_heldout_perplexity": initial,
            "loss_history": [],
            "heldout_perplexity": [],
            "learn_rate": [],
            "epoch_seconds": [],
        }
        best, best_arrays, best_epoch, bad_epochs = initial, None, 0, 0
        rate, decaying = s.learn_rate, False
        total_ids = max(train.n_ids * s.epochs, 1)
        start_time = time.perf_counter()
        for epoch in range(1, s.epochs + 1):
            epoch_start = time.perf_counter()
            done_before = (epoch - 1) * train.n_ids
            if s.lr_schedule == "linear":

                def learn_rate(ids: int, before: int = done_before) -> float:
                    fraction = 1.0 - (before + ids) / total_ids
                    return s.learn_rate * max(fraction, LINEAR_FLOOR)

            else:

                def learn_rate(ids: int, value: float = rate) -> float:
                    return value

            # No last line: on_epoch prints the epoch's summary.
            meter = Progress(
                f"Epoch {epoch}",
                total=train.n_ids,
                unit="tokens",
                enabled=self.progress,
                final=False,
            )
            with meter:
                loss, _ = self.train_epoch(train, learn_rate, rng, meter)
            seconds = time.perf_counter() - epoch_start
            perplexity = self.perplexity(heldout)
            self._check_diverged(epoch, loss, perplexity, initial)
            improved = perplexity < best
            entry = {
                "epoch": epoch,
                "loss": loss,
                "heldout_perplexity": perplexity,
                "learn_rate": learn_rate(0),
                "seconds": seconds,
                "tokens_per_second": train.n_tokens / seconds,
                "improved": improved,
            }
            history["loss_history"].append(loss)
            history["heldout_perplexity"].append(perplexity)
            history["learn_rate"].append(entry["learn_rate"])
            history["epoch_seconds"].append(seconds)
            if self.on_epoch is not None:
                self.on_epoch(entry)
            stalled = perplexity > best * (1 - DECAY_BELOW)
            decaying = decaying or stalled
            if improved:
                best, best_arrays, best_epoch, bad_epochs = perplexity, self.copy_arrays(), epoch, 0
            else:
                bad_epochs += 1
                if bad_epochs >= s.patience:
                    break
            if (decaying and s.lr_schedule == "plateau") or (stalled and s.lr_schedule == "stall"):
                rate *= s.lr_decay
        if best_arrays is not None:
            self.set_arrays(best_arrays)
        train_seconds = time.perf_counter() - start_time
        epochs_run = len(history["epoch_seconds"])
        history.update(
            best_epoch=best_epoch,
            best_heldout_perplexity=best,
            train_seconds=train_seconds,
            tokens_per_second=train.n_tokens
            * epochs_run
            / max(sum(history["epoch_seconds"]), 1e-9),
        )
        return history

    def _check_diverged(self, epoch: int, loss: float, perplexity: float, initial: float) -> None:
        """E416 if this epoch's loss or held-out perplexity is not finite or has exploded."""
        if math.isfinite(loss) and perplexity <= DIVERGED_ABOVE * initial:
            return
        names = ("learn_rate", "dense_learn_rate") + ("table_learn_rate",) * (
            self.trainer.table is not None
        )
        rates = ", ".join(f"head.{name} = {getattr(self.settings, name):g}" for name in names)
        values = {"epoch": epoch, "loss": loss, "perplexity": perplexity, "initial": initial}
        raise ConfigError(Errors.E416.format(rates=rates, **values))

    def copy_arrays(self) -> dict[str, np.ndarray]:
        """The trainer's arrays, copied into buffers kept between calls (the n-gram table can
        be GBs: allocating it anew every improved epoch costs page faults)."""
        best = self._best
        for name in self._array_names():
            array = getattr(self.trainer, name)
            if name not in best:
                best[name] = np.empty_like(array)
            np.copyto(best[name], array)
        return best

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in self._array_names():
            getattr(self.trainer, name)[...] = arrays[name]

    def _array_names(self) -> tuple[str, ...]:
        names = ("inputs", "positions", "bias", "outputs")
        return names if self.trainer.table is None else (*names, "table")


def _chunk_bounds(n_ids: int) -> np.ndarray:
    n_chunks = min(max(n_ids // MIN_CHUNK, 1), MAX_CHUNKS)
    return np.linspace(0, n_ids, n_chunks + 1).astype(np.int64)


def train_head_arrays(
    model: Any,
    corpus: Callable[[], Iterable[Sequence[str]]],
    heldout: Callable[[], Iterable[Sequence[str]]] | None,
    settings: HeadSettings,
    *,
    progress: bool,
    corpus_name: str = "the corpus",
) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """Train a tree head's parameters for an HS model (``model``: its vectors, inner node
    weights and tree are the starting point and are not changed): the directional head, with
    hashed n-gram features of orders 1..``settings.ngram_orders`` in a table of
    ``settings.table_size`` values if ``ngram_orders`` > 0.

    corpus / heldout: functions returning the sentences (token lists) of the training and
        held-out text; read once each. Without ``heldout``, ``settings.heldout_fraction`` of the
        corpus sentences are held out.
    settings: every training setting (``HeadSettings``, ``train_head`` explains each one).
    progress: print the epochs and show a progress bar.
    Returns the head's arrays, by the names heads.directional.DirectionalHead saves them under
    (input_vectors, padding_vector, position_weights, hidden_bias, output_weights; and
    ``table``, the dense n-gram table), the training history, and the held-out text as encoded
    (int32 ids, -1 after each sentence, in order: for tuning the document cache).
    """
    eos_id = None
    if settings.eos_token is not None:
        if settings.eos_token not in model.key_to_index:
            raise ConfigError(Errors.E402.format(token=settings.eos_token))
        eos_id = model.key_to_index[settings.eos_token]
    trainer = new_trainer(model, settings)
    with ScratchDirectory() as scratch:
        encode_start = time.perf_counter()
        fraction = 0.0 if heldout is not None else settings.heldout_fraction
        train, held, n_unknown = encode_sentences(
            corpus(),
            model.key_to_index,
            scratch,
            eos_id=eos_id,
            heldout_fraction=fraction,
            seed=settings.seed,
        )
        if heldout is not None:
            (scratch / "valid").mkdir()
            held, _, _ = encode_sentences(
                heldout(),
                model.key_to_index,
                scratch / "valid",
                eos_id=eos_id,
                heldout_fraction=0.0,
                seed=settings.seed,
            )
        if not train.n_tokens or held is None or not held.n_tokens:
            raise InputError(
                Errors.E404.format(
                    path=corpus_name,
                    n_train=train.n_sentences,
                    n_heldout=0 if held is None else held.n_sentences,
                )
            )
        encode_seconds = time.perf_counter() - encode_start
        engine = HeadEngine(trainer, settings, progress=progress, on_epoch=_epoch_printer(progress))
        if progress:
            from wasabi import msg

            orders = settings.ngram_orders
            kind = f"n-gram (orders 1-{orders})" if orders else "directional"
            msg.info(
                f"Training the {kind} head on {train.n_tokens:,} tokens (held-out: "
                f"{held.n_tokens:,}) with {engine.n_workers} thread(s)"
            )
        history = engine.fit(train, held)
        # the cache is tuned on the first CACHE_TUNING_IDS held-out ids (bounded memory)
        heldout_ids = np.fromfile(held.path, dtype=np.int32, count=CACHE_TUNING_IDS)
    history.update(
        settings=asdict(settings),  # what this run trained with, every setting
        context_size=settings.context_size,
        diagonal=settings.diagonal,
        fine_tune_vectors=settings.fine_tune_vectors,
        dropout=settings.dropout,
        n_unknown_tokens_skipped=n_unknown,
        encode_seconds=encode_seconds,
        ngram_orders=settings.ngram_orders,
        table_size=settings.table_size if settings.ngram_orders else 0,
    )
    arrays = head_arrays(trainer, settings.context_size, settings.diagonal)
    return arrays, history, heldout_ids


def new_trainer(model: Any, settings: HeadSettings) -> HeadTrainer:
    """The kernels and arrays of a new head for an HS model, as ``settings`` describe it,
    starting from ``heads.directional.initial_arrays`` (and an n-gram table of zeros)."""
    context_size, diagonal, ngram_orders = (
        settings.context_size,
        settings.diagonal,
        settings.ngram_orders,
    )
    arrays = initial_arrays(model, context_size, diagonal)
    n_words, width = arrays["input_vectors"].shape
    if ngram_orders and settings.table_size < n_words:
        raise ConfigError(Errors.E414.format(size=settings.table_size, n_words=n_words))
    inputs = np.concatenate([arrays["input_vectors"], arrays["padding_vector"][None, :]])
    tree = model.tree
    return HeadTrainer(
        inputs,
        arrays["position_weights"].reshape(-1),
        arrays["hidden_bias"],
        arrays["output_weights"],
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
        context_size=context_size,
        diagonal=diagonal,
        fine_tune=settings.fine_tune_vectors,
        optimizer=settings.optimizer,
        dropout=settings.dropout,
        seed=settings.seed,
        l2=settings.l2,
        table=np.zeros(settings.table_size, dtype=np.float32) if ngram_orders else None,
        n_orders=ngram_orders,
        table_l2=settings.table_l2,
        dense_optimizer=settings.dense_optimizer,
    )


def head_arrays(trainer: HeadTrainer, context_size: int, diagonal: bool) -> dict[str, np.ndarray]:
    """A trainer's arrays (copies; the table kept), by the names
    ``heads.directional.DirectionalHead`` saves them under, and ``table``."""
    n_words, width = trainer.n_words, trainer.inputs.shape[1]
    shape = (context_size, width) if diagonal else (width, context_size * width)
    arrays = {
        "input_vectors": trainer.inputs[:n_words].copy(),
        "padding_vector": trainer.inputs[n_words].copy(),
        "position_weights": trainer.positions.reshape(shape).copy(),
        "hidden_bias": trainer.bias.copy(),
        "output_weights": trainer.outputs.copy(),
    }
    if trainer.table is not None:
        arrays["table"] = trainer.table
    return arrays


def _epoch_printer(progress: bool) -> Callable[[dict[str, Any]], None] | None:
    if not progress:
        return None
    from wasabi import msg

    def show(entry: dict[str, Any]) -> None:
        msg.text(
            f"epoch {entry['epoch']}: train loss {entry['loss']:.3f}  held-out perplexity "
            f"{entry['heldout_perplexity']:.1f}{' (best)' if entry['improved'] else ''}  "
            f"{entry['tokens_per_second']:,.0f} tokens/s"
        )

    return show
