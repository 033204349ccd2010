"""The directional next-word head: a hierarchical log-bilinear model on the HS model's tree.

gensim's CBOW predicts a centre word from both sides, so as a next-word predictor it does little
better than word frequency. This head reads only the words before, each through its own
position weights (Mnih & Hinton's log-bilinear model), and scores the next word through the same
Huffman tree as the CBOW head::

    hidden = sum over i = 1..K of C_i * vec(w_{t-i}) + b
    P(w | context) = prod over the inner nodes n on w's path of
                     sigmoid((1 - 2 * code_n) * (hidden . W[n] + bias[n]))

``w_{t-i}`` is the i-th most recent *known* word (unknown words are skipped, as everywhere in
spacy-hs); before a sentence's first word, positions are filled with a learned padding vector, so
an empty context predicts a sentence's first word. ``W`` starts from gensim's ``syn1`` and the
node biases from 0. The biases are stored as the last column of ``output_weights`` and the hidden
vectors carry a constant 1 in their last column, so top-k and log-probabilities go through the
compiled tree kernels unchanged: exact, and with the same best-first search as the CBOW head.

The thinc layers are in layers.py; ``train_head`` trains them with Adam and early stopping on
held-out perplexity.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.api import Adam, Model, Optimizer, fix_random_seed
from tqdm import tqdm
from wasabi import msg

from .. import _tree_search
from ..errors import ConfigError, Errors, InputError, InputNotFoundError, ModelFileError
from ..heads.layers import HierarchicalLogBilinear, LogBilinearContext, TreeLogLikelihood

if TYPE_CHECKING:
    from ..hs_model import HSModel

NAME = "directional"
# Relative held-out improvement below which the learning rate starts to decay (train_head).
DECAY_BELOW = 0.01
ARCHITECTURE = "spacy_hs.HierarchicalLogBilinear.v1"
# Arrays saved with the model (as head.<name>.npy), all float32, and the thinc params they hold.
ARRAYS = {
    "input_vectors": ("context", "E"),
    "padding_vector": ("context", "pad"),
    "position_weights": ("context", "C"),
    "hidden_bias": ("context", "b"),
    "output_weights": ("tree", "W"),
}


class DirectionalHead:
    """A trained hierarchical log-bilinear head; satisfies ``hs_model.Predictor``.

    model: the thinc ``HierarchicalLogBilinear`` model.
    n_words: vocabulary size of the HS model it belongs to (also the padding id).
    """

    name = NAME

    def __init__(self, model: Model, n_words: int):
        self.model = model
        self.n_words = int(n_words)

    @classmethod
    def from_hs_model(
        cls,
        hs_model: HSModel,
        *,
        context_size: int = 5,
        diagonal: bool = True,
        fine_tune_vectors: bool = True,
        dropout: float = 0.5,
    ) -> DirectionalHead:
        """A new, untrained head: input vectors copied from ``hs_model.vectors``, output weights
        from gensim's ``syn1`` with zero node biases (see ``train_head`` for the options)."""
        if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
            raise ConfigError(
                Errors.E403.format(
                    option="context_size", value=context_size, expected="a positive integer"
                )
            )
        n_inner = len(hs_model) - 1
        weights = np.zeros((n_inner, hs_model.vector_size + 1), dtype=np.float32)
        weights[:, :-1] = hs_model.inner_node_weights
        tree = hs_model.tree
        model = HierarchicalLogBilinear(
            LogBilinearContext(
                context_size=context_size,
                diagonal=diagonal,
                fine_tune=fine_tune_vectors,
                dropout=dropout,
                vectors=hs_model.vectors,
            ),
            TreeLogLikelihood(tree.path_offsets, tree.path_nodes, tree.path_codes, weights=weights),
        )
        model.initialize()
        return cls(model, len(hs_model))

    # -- the Predictor protocol, and scoring ---------------------------------------------

    @property
    def context_size(self) -> int:
        return int(self._context.get_dim("nK"))

    @property
    def diagonal(self) -> bool:
        return bool(self._context.attrs["diagonal"])

    @property
    def output_weights(self) -> np.ndarray:
        """float32 (V - 1, d + 1): per-node weights, with the node biases as the last column."""
        weights = self.model.ops.to_numpy(self._tree.get_param("W"))
        return np.ascontiguousarray(weights, dtype=np.float32)

    def hidden_from_ids(self, id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Hidden vectors (B, d + 1) for contexts of known word ids, oldest first.

        Every context is usable: fewer than ``context_size`` words (none included) means the
        sentence started, and the missing positions are padded. So ``has_context`` is all True.
        """
        return self.hidden(self.context_matrix(id_lists)), np.ones(len(id_lists), dtype=bool)

    def hidden(self, contexts: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Hidden vectors, float32 (B, d + 1), for context matrix rows (``context_matrix``)."""
        ops = self.model.ops
        hidden = np.empty((len(contexts), self._context.get_dim("nO")), dtype=np.float32)
        for start in range(0, len(contexts), batch_size):  # bounds the (B, K, d) gather
            rows = ops.asarray2i(contexts[start : start + batch_size])
            hidden[start : start + batch_size] = ops.to_numpy(self._context.predict(rows))
        return hidden

    def log_probs(
        self, contexts: np.ndarray, targets: np.ndarray, hs_model: HSModel, batch_size: int = 8192
    ) -> np.ndarray:
        """log P(targets[i] | contexts[i]) for context matrix rows (see ``context_matrix``),
        through the compiled path kernel that ``HSModel.log_prob_next`` uses."""
        out = np.empty(len(targets), dtype=np.float64)
        weights, tree = self.output_weights, hs_model.tree
        for start in range(0, len(targets), batch_size):
            out[start : start + batch_size] = _tree_search.path_log_probs(
                self.hidden(contexts[start : start + batch_size]),
                np.ascontiguousarray(targets[start : start + batch_size], dtype=np.int32),
                weights,
                tree.path_offsets,
                tree.path_nodes,
                tree.path_codes,
            )
        return out

    def context_matrix(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """int32 (B, K): column i - 1 holds the i-th most recent word, or the padding id."""
        size = self.context_size
        ids = np.full((len(id_lists), size), self.n_words, dtype=np.int32)
        for row, context in enumerate(id_lists):
            recent = list(context)[-size:][::-1]
            ids[row, : len(recent)] = recent
        return ids

    # -- serialization (used by HSModel) ------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able settings stored in the model header as ``header["head"]``."""
        return {
            "name": NAME,
            "architecture": ARCHITECTURE,
            "context_size": self.context_size,
            "width": int(self._context.get_dim("nI")),
            "diagonal": self.diagonal,
            "fine_tune_vectors": bool(self._context.attrs["fine_tune"]),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The head's parameters as float32 numpy arrays, by the names in ``ARRAYS``."""
        ops = self.model.ops
        layers = {"context": self._context, "tree": self._tree}
        return {
            name: np.ascontiguousarray(ops.to_numpy(layers[layer].get_param(param)), np.float32)
            for name, (layer, param) in ARRAYS.items()
        }

    @classmethod
    def from_arrays(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], hs_model: HSModel
    ) -> DirectionalHead:
        """Rebuild a saved head for ``hs_model``; ValueError if config or arrays do not fit."""
        if not isinstance(config, dict) or config.get("architecture") != ARCHITECTURE:
            found = config.get("architecture") if isinstance(config, dict) else config
            raise ModelFileError(Errors.E405.format(found=found, expected=ARCHITECTURE))
        size, width = config.get("context_size"), config.get("width")
        if not isinstance(size, int) or size < 1 or not isinstance(width, int) or width < 1:
            raise ModelFileError(Errors.E406.format(size=size, width=width))
        n_words, diagonal = len(hs_model), bool(config.get("diagonal"))
        expected = {
            "input_vectors": (n_words, width),
            "padding_vector": (width,),
            "position_weights": (size, width) if diagonal else (width, size * width),
            "hidden_bias": (width,),
            "output_weights": (n_words - 1, width + 1),
        }
        for name, shape in expected.items():
            if name not in arrays:
                raise ModelFileError(Errors.E407.format(name=name))
            if arrays[name].shape != shape or arrays[name].dtype != np.float32:
                raise ModelFileError(
                    Errors.E408.format(
                        name=name,
                        shape=arrays[name].shape,
                        dtype=arrays[name].dtype,
                        expected=shape,
                        dtype_expected="float32",
                    )
                )
        tree = hs_model.tree
        context = LogBilinearContext(
            n_words,
            width,
            size,
            diagonal=diagonal,
            fine_tune=bool(config.get("fine_tune_vectors")),
        )
        model = HierarchicalLogBilinear(
            context,
            TreeLogLikelihood(tree.path_offsets, tree.path_nodes, tree.path_codes, width + 1),
        )
        model.initialize()
        head = cls(model, n_words)
        head._set_arrays(arrays)
        return head

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        layers = {"context": self._context, "tree": self._tree}
        for name, (layer, param) in ARRAYS.items():
            layers[layer].set_param(param, self.model.ops.asarray(arrays[name].copy()))

    # -- internals ----------------------------------------------------------------------

    @property
    def _context(self) -> Model:
        return self.model.layers[0]

    @property
    def _tree(self) -> Model:
        return self.model.layers[1]


# -- training ---------------------------------------------------------------------------------


def read_sentences(
    path: str | Path, key_to_index: dict[str, int], eos_id: int | None = None
) -> tuple[list[np.ndarray], int]:
    """Each line of a token file as an int32 array of known word ids (unknown words skipped),
    with ``eos_id`` appended if given. Returns (sentences, number of skipped tokens)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(Errors.E401.format(path=path))
    sentences, n_unknown = [], 0
    with path.open(encoding="utf8") as file:
        for line in file:
            tokens = line.split()
            ids = [key_to_index[t] for t in tokens if t in key_to_index]
            n_unknown += len(tokens) - len(ids)
            if eos_id is not None and tokens:
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
    *,
    enabled: bool = True,
    context_size: int = 5,
    diagonal: bool = True,
    epochs: int = 10,
    learn_rate: float = 0.004,
    batch_size: int = 1024,
    patience: int = 2,
    lr_decay: float = 0.5,
    dropout: float = 0.5,
    l2: float = 0.15,
    fine_tune_vectors: bool = True,
    export_fine_tuned_vectors: bool = False,
    averages: bool = False,
    eos_token: str | None = None,
    seed: int = 0,
    heldout_fraction: float = 0.05,
    progress: bool = True,
) -> None:
    """Train a directional head on a token file and attach it as ``model.head``.

    corpus_path: token file (one sentence per line, tokens separated by spaces), normally the
        one gensim was trained on. Unknown words are skipped, as they are at prediction time.
        Each line is a sentence: the words before its first word are padding.
    heldout_path: token file for early stopping; if None, ``heldout_fraction`` of the corpus
        lines (chosen with ``seed``) are held out instead.
    enabled: if False, do nothing (the ``[head]`` config switch).
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

    The history (per-epoch loss, held-out perplexity, learning rate, timings) is recorded in
    ``model.meta["head"]``.
    """
    if not enabled:
        return
    _check_options(
        epochs, learn_rate, batch_size, patience, lr_decay, dropout, l2, heldout_fraction
    )
    eos_id = None
    if eos_token is not None:
        if eos_token not in model.key_to_index:
            raise ConfigError(Errors.E402.format(token=eos_token))
        eos_id = model.key_to_index[eos_token]
    fix_random_seed(seed)
    rng = np.random.default_rng(seed)
    train, heldout, n_unknown = _read_split(
        corpus_path, heldout_path, model.key_to_index, eos_id, heldout_fraction, rng
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
    optimizer = Adam(learn_rate, grad_clip=0.0, L2=l2, use_averages=averages)

    def heldout_perplexity() -> float:
        with _averaged(head, optimizer):
            log_probs = head.log_probs(
                heldout_examples.contexts(), heldout_examples.targets(), model
            )
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
        head._set_arrays(best_arrays)
    train_seconds = time.perf_counter() - start_time
    history.update(
        best_epoch=best_epoch,
        best_heldout_perplexity=best_perplexity,
        train_seconds=train_seconds,
        tokens_per_second=len(train_examples) * len(history["epoch_seconds"]) / train_seconds,
    )
    model.head = head
    model.meta["head"] = history
    if export_fine_tuned_vectors:
        model.vectors = head.to_arrays()["input_vectors"]
        history["exported_fine_tuned_vectors"] = True
    if progress:
        msg.good(
            f"Directional head: best held-out perplexity {best_perplexity:.1f} (epoch "
            f"{best_epoch}), {train_seconds:.0f} s"
        )


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


def _check_options(
    epochs: int,
    learn_rate: float,
    batch_size: int,
    patience: int,
    lr_decay: float,
    dropout: float,
    l2: float,
    heldout_fraction: float,
) -> None:
    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    checks = {
        "epochs": (epochs, positive_int(epochs), "a positive integer"),
        "learn_rate": (learn_rate, learn_rate > 0, "a positive number"),
        "batch_size": (batch_size, positive_int(batch_size), "a positive integer"),
        "patience": (patience, positive_int(patience), "a positive integer"),
        "lr_decay": (lr_decay, 0 < lr_decay <= 1, "a number in (0, 1]"),
        "dropout": (dropout, 0 <= dropout < 1, "a number in [0, 1)"),
        "l2": (l2, l2 >= 0, "a number >= 0"),
        "heldout_fraction": (heldout_fraction, 0 < heldout_fraction < 1, "a number in (0, 1)"),
    }
    for option, (value, ok, expected) in checks.items():
        if not ok:
            raise ConfigError(Errors.E403.format(option=option, value=value, expected=expected))
