"""Training the directional next-word head (``heads/directional.py``) on a token file.

The head starts from the HS model's vectors and gensim's inner-node weights and is trained with
thinc's Adam on minibatches of (context, next word) examples, with context dropout, decoupled
weight decay and early stopping on held-out perplexity. ``train_head`` returns the head;
``attach_head`` puts it into the model.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.api import Adam, Optimizer, fix_random_seed
from tqdm import tqdm
from wasabi import msg

from ..corpus import tokenfile
from ..errors import ConfigError, Errors, InputError
from ..heads.directional import DirectionalHead
from .config import DirectionalHeadSettings, load_config, resolve_config

if TYPE_CHECKING:
    from ..hs_model import HSModel

# Relative held-out improvement below which the learning rate starts to decay.
DECAY_BELOW = 0.01


def read_sentences(
    path: str | Path, key_to_index: dict[str, int], eos_id: int | None = None
) -> tuple[list[np.ndarray], int]:
    """Each line of a token file as an int32 array of known word ids (unknown words skipped),
    with ``eos_id`` appended if given. Returns (sentences, number of skipped tokens)."""
    sentences, n_unknown = [], 0
    for tokens in tokenfile.sentences(path, what="Head training file"):
        ids = [key_to_index[t] for t in tokens if t in key_to_index]
        n_unknown += len(tokens) - len(ids)
        if eos_id is not None:
            ids.append(eos_id)
        if ids:
            sentences.append(np.array(ids, dtype=np.int32))
    return sentences, n_unknown


@dataclass
class Examples:
    """Every word of a set of sentences as a target, with the words before it.

    stream: int32, the sentences concatenated, each preceded by ``context_size`` padding ids.
    positions: int64, the stream index of every target word.
    """

    stream: np.ndarray
    positions: np.ndarray
    context_size: int

    @classmethod
    def from_sentences(
        cls, sentences: Sequence[np.ndarray], context_size: int, pad_id: int
    ) -> Examples:
        padding = np.full(context_size, pad_id, dtype=np.int32)
        parts = [part for s in sentences for part in (padding, s)]
        stream = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        ends = np.cumsum(lengths + context_size)
        # Target positions: everything but the padding before each sentence.
        is_target = np.ones(len(stream), dtype=bool)
        pad_starts = ends - lengths - context_size
        for offset in range(context_size):
            is_target[pad_starts + offset] = False
        return cls(stream, np.flatnonzero(is_target), context_size)

    def __len__(self) -> int:
        return len(self.positions)

    def contexts(self, index: Any = slice(None)) -> np.ndarray:
        """int32 (n, K) context matrix rows (see ``DirectionalHead.context_matrix``)."""
        positions = self.positions[index]
        return self.stream[positions[:, None] - np.arange(1, self.context_size + 1)]

    def targets(self, index: Any = slice(None)) -> np.ndarray:
        return self.stream[self.positions[index]]


def train_head(
    model: HSModel,
    corpus_path: str | Path,
    heldout_path: str | Path | None = None,
    settings: DirectionalHeadSettings | None = None,
    *,
    progress: bool = True,
    **options: Any,
) -> DirectionalHead | None:
    """Train a directional head for ``model`` on a token file and return it (``attach_head``
    puts it into the model); None, without training, if the settings say ``enabled = false``.

    settings: the ``[head]`` config section, resolved (``DirectionalHeadSettings``); options
        given as keywords override it, and are validated the same way.

    corpus_path: token file (one sentence per line, tokens separated by spaces), normally the
        one gensim was trained on. Unknown words are skipped, as they are at prediction time.
        Each line is a sentence: the words before its first word are padding.
    heldout_path: token file for early stopping; if None, ``heldout_fraction`` of the corpus
        lines (chosen with ``seed``) are held out instead.
    enabled: whether to train a head at all (the ``[head]`` config switch).
    context_size: K, how many of the most recent known words the head reads.
    diagonal: diagonal position weights C_i (K * d parameters) or full ones (K * d * d). On Penn
        Treebank diagonal was better (full ones overfit sooner) and faster.
    epochs: maximum passes over the training text.
    learn_rate: Adam's step size. Once an epoch lowers held-out perplexity by less than 1%, it
        is multiplied by ``lr_decay`` after that epoch and every later one.
    batch_size: next-word predictions per update. Smaller batches suit small corpora.
    patience: stop after this many epochs in a row without a held-out improvement; the best
        parameters seen are kept.
    dropout: rate at which entries of the context vectors are zeroed in training.
    l2: decoupled weight decay (thinc's Adam ``L2``): each step shrinks every parameter by
        ``learn_rate * l2`` of itself. With dropout, what keeps the head from overfitting.
    fine_tune_vectors: train the head's own copy of the input vectors. ``model.vectors`` (the
        vectors exported to spaCy) are not changed unless ``export_fine_tuned_vectors``.
    export_fine_tuned_vectors: replace ``model.vectors`` with the fine-tuned copy. This changes
        what the CBOW head and spaCy's ``token.vector`` see.
    averages: evaluate and keep the running averages of the parameters (thinc's Adam
        ``use_averages``) rather than their last values. On Penn Treebank this made no
        difference and cost 15% of the training time.
    eos_token: appended to every line as a last word to predict. It must be in the vocabulary,
        so it must have been in the corpus gensim saw. None: lines are used as they are.
    seed: random seed for initialisation, dropout, shuffling and the held-out split.
    progress: print one line per epoch, with a progress bar during it.

    The history (per-epoch loss, held-out perplexity, learning rate, timings) is kept in
    ``head.history`` (``attach_head`` copies it to ``model.meta["head"]``).
    """
    settings = head_settings(settings, **options)
    if not settings.enabled:
        return None
    context_size, diagonal, dropout = settings.context_size, settings.diagonal, settings.dropout
    fine_tune_vectors, batch_size = settings.fine_tune_vectors, settings.batch_size
    seed = settings.seed
    epochs, patience, lr_decay = settings.epochs, settings.patience, settings.lr_decay
    eos_token = settings.eos_token
    eos_id = None
    if eos_token is not None:
        if eos_token not in model.key_to_index:
            raise ConfigError(Errors.E402.format(token=eos_token))
        eos_id = model.key_to_index[eos_token]
    fix_random_seed(seed)
    rng = np.random.default_rng(seed)
    train, heldout, n_unknown = _read_split(
        corpus_path, heldout_path, model.key_to_index, eos_id, settings.heldout_fraction, rng
    )
    head = DirectionalHead.from_hs_model(
        model,
        context_size=context_size,
        diagonal=diagonal,
        fine_tune_vectors=fine_tune_vectors,
        dropout=dropout,
    )
    train_examples = Examples.from_sentences(train, context_size, len(model))
    heldout_examples = Examples.from_sentences(heldout, context_size, len(model))
    optimizer = Adam(
        settings.learn_rate, grad_clip=0.0, L2=settings.l2, use_averages=settings.averages
    )

    def heldout_perplexity() -> float:
        with _averaged(head, optimizer):
            log_probs = head.log_probs(heldout_examples.contexts(), heldout_examples.targets())
        return float(np.exp(-log_probs.mean()))

    history: dict[str, Any] = {
        "context_size": context_size,
        "diagonal": diagonal,
        "fine_tune_vectors": fine_tune_vectors,
        "dropout": dropout,
        "batch_size": batch_size,
        "n_train_tokens": len(train_examples),
        "n_heldout_tokens": len(heldout_examples),
        "n_unknown_tokens_skipped": n_unknown,
        "initial_heldout_perplexity": heldout_perplexity(),
        "loss_history": [],
        "heldout_perplexity": [],
        "learn_rate": [],
        "epoch_seconds": [],
    }
    if progress:
        msg.info(
            f"Training the directional head on {len(train_examples):,} tokens (held-out: "
            f"{len(heldout_examples):,}); initial held-out perplexity "
            f"{history['initial_heldout_perplexity']:.1f}"
        )
    best_perplexity, best_arrays, best_epoch = history["initial_heldout_perplexity"], None, 0
    bad_epochs, decaying = 0, False
    start_time = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        loss = _train_epoch(head, optimizer, train_examples, batch_size, rng, progress)
        perplexity = heldout_perplexity()
        history["loss_history"].append(loss)
        history["heldout_perplexity"].append(perplexity)
        history["learn_rate"].append(float(optimizer.learn_rate))
        history["epoch_seconds"].append(time.perf_counter() - epoch_start)
        improved = perplexity < best_perplexity
        if progress:
            msg.text(
                f"epoch {epoch}: train loss {loss:.3f}  held-out perplexity {perplexity:.1f}"
                f"{' (best)' if improved else ''}  "
                f"{len(train_examples) / history['epoch_seconds'][-1]:,.0f} tokens/s"
            )
        # Once an epoch gains less than DECAY_BELOW, the step size shrinks every epoch.
        decaying = decaying or perplexity > best_perplexity * (1 - DECAY_BELOW)
        if improved:
            with _averaged(head, optimizer):
                best_perplexity, best_arrays, best_epoch = perplexity, head.to_arrays(), epoch
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
        if decaying:
            optimizer.learn_rate *= lr_decay
    if best_arrays is not None:
        head.set_arrays(best_arrays)
    train_seconds = time.perf_counter() - start_time
    history.update(
        best_epoch=best_epoch,
        best_heldout_perplexity=best_perplexity,
        train_seconds=train_seconds,
        tokens_per_second=len(train_examples) * len(history["epoch_seconds"]) / train_seconds,
    )
    head.history = history
    if progress:
        msg.good(
            f"Directional head: best held-out perplexity {best_perplexity:.1f} (epoch "
            f"{best_epoch}), {train_seconds:.0f} s"
        )
    return head


def attach_head(
    model: HSModel, head: DirectionalHead, *, export_fine_tuned_vectors: bool = False
) -> None:
    """Make ``head`` the model's trained head, with its training history in
    ``model.meta["head"]``; ``export_fine_tuned_vectors`` also replaces ``model.vectors`` (what
    the CBOW head and spaCy's ``token.vector`` see) with the head's fine-tuned copy."""
    model.head = head
    model.meta["head"] = head.history
    if export_fine_tuned_vectors:
        model.vectors = head.to_arrays()["input_vectors"]
        model.meta["head"]["exported_fine_tuned_vectors"] = True


def head_settings(
    settings: DirectionalHeadSettings | None = None, **options: Any
) -> DirectionalHeadSettings:
    """``settings`` (default: the defaults) with ``options`` replacing some, validated by the
    config's resolver as a ``[head]`` section is."""
    values = {**(asdict(settings) if settings is not None else {}), **options}
    return resolve_config(load_config({"head": values}))["head"]


def _read_split(
    corpus_path: str | Path,
    heldout_path: str | Path | None,
    key_to_index: dict[str, int],
    eos_id: int | None,
    heldout_fraction: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Training and held-out sentences, and how many unknown training tokens were skipped."""
    sentences, n_unknown = read_sentences(corpus_path, key_to_index, eos_id)
    if heldout_path is not None:
        heldout, _ = read_sentences(heldout_path, key_to_index, eos_id)
        train = sentences
    else:
        order = rng.permutation(len(sentences))
        n_heldout = int(round(heldout_fraction * len(sentences)))
        heldout = [sentences[i] for i in np.sort(order[:n_heldout])]
        train = [sentences[i] for i in np.sort(order[n_heldout:])]
    if not train or not heldout:
        raise InputError(
            Errors.E404.format(path=corpus_path, n_train=len(train), n_heldout=len(heldout))
        )
    return train, heldout, n_unknown


def _train_epoch(
    head: DirectionalHead,
    optimizer: Optimizer,
    examples: Examples,
    batch_size: int,
    rng: np.random.Generator,
    progress: bool,
) -> float:
    """One pass over the examples in random order; returns the mean negative log-likelihood."""
    ops = head.model.ops
    order = rng.permutation(len(examples))
    total = 0.0
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, disable=not progress, leave=False, unit="batch"):
        batch = order[start : start + batch_size]
        X = (ops.asarray2i(examples.contexts(batch)), ops.asarray1i(examples.targets(batch)))
        log_probs, backprop = head.model.begin_update(X)
        # The loss is the mean negative log-likelihood of the batch.
        backprop(ops.alloc1f(len(batch)) - 1.0 / len(batch))
        head.model.finish_update(optimizer)
        total -= float(log_probs.sum())
    return total / len(order)


@contextlib.contextmanager
def _averaged(head: DirectionalHead, optimizer: Optimizer) -> Iterator[None]:
    """Use the optimizer's parameter averages, if it keeps them, inside the block."""
    if optimizer.averages:
        with head.model.use_params(optimizer.averages):
            yield
    else:
        yield
