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

The thinc layers are in layers.py (the registered architecture, used for inference);
``train_head`` trains their parameters with the compiled engine of head_engine.py (sparse
AdaGrad, worker threads, streaming) and early stopping on held-out perplexity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from thinc.api import Model
from wasabi import msg

from . import _tree_search
from .errors import Errors
from .head_engine import EngineSettings, token_lines, train_directional
from .layers import HierarchicalLogBilinear, LogBilinearContext, TreeLogLikelihood

if TYPE_CHECKING:
    from .hs_model import HSModel

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
            raise ValueError(
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
            raise ValueError(f"unknown head architecture {found!r}, expected {ARCHITECTURE!r}")
        size, width = config.get("context_size"), config.get("width")
        if not isinstance(size, int) or size < 1 or not isinstance(width, int) or width < 1:
            raise ValueError(f"head context_size {size!r} or width {width!r} is not valid")
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
                raise ValueError(f"the head array {name} is missing")
            if arrays[name].shape != shape or arrays[name].dtype != np.float32:
                raise ValueError(
                    f"head array {name} has shape {arrays[name].shape} and dtype "
                    f"{arrays[name].dtype}, expected {shape} and float32"
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
        raise FileNotFoundError(Errors.E401.format(path=path))
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


def train_head(
    model: HSModel,
    corpus_path: str | Path,
    heldout_path: str | Path | None = None,
    *,
    enabled: bool = True,
    context_size: int = 5,
    diagonal: bool = True,
    epochs: int = 10,
    learn_rate: float = 0.1,
    dense_learn_rate: float = 0.0003,
    optimizer: str = "adagrad",
    lr_schedule: str = "plateau",
    patience: int = 2,
    lr_decay: float = 0.5,
    dropout: float = 0.5,
    l2: float = 0.0,
    fine_tune_vectors: bool = True,
    export_fine_tuned_vectors: bool = False,
    eos_token: str | None = None,
    seed: int = 0,
    heldout_fraction: float = 0.05,
    workers: int = 0,
    progress: bool = True,
) -> DirectionalHead | None:
    """Train a directional head on a token file, attach it as ``model.head`` and return it
    (None, without training, if not ``enabled``). The compiled engine (head_engine.py,
    _head_train.pyx) streams the file: memory does not grow with the corpus.

    corpus_path: token file (one sentence per line, tokens separated by spaces), normally the
        one gensim was trained on. Unknown words are skipped, as they are at prediction time.
        Each line is a sentence: the words before its first word are padding.
    heldout_path: token file for early stopping; if None, ``heldout_fraction`` of the corpus
        lines (drawn with ``seed``, line by line) are held out instead.
    enabled: if False, do nothing (the ``[head]`` config switch).
    context_size: K, how many of the most recent known words the head reads.
    diagonal: diagonal position weights C_i (K * d parameters) or full ones (K * d * d). On Penn
        Treebank diagonal was better (full ones overfit sooner) and much faster.
    epochs: maximum passes over the training text.
    learn_rate: step size of the sparse rows (input vectors, node weights), updated after every
        next-word prediction: with ``optimizer = "adagrad"`` divided by the square root of the
        row's summed mean squared gradients; with "sgd" as it is.
    dense_learn_rate: Adam's step size for the position weights and hidden bias, which every
        prediction touches: updated from the mean gradient of a worker's last 256 predictions.
    optimizer: "adagrad" (row-wise AdaGrad) or "sgd" for the sparse rows. On Penn Treebank
        AdaGrad reached a far lower held-out perplexity (bench/bench_ptb.py).
    lr_schedule: "plateau": once an epoch lowers held-out perplexity by less than 1%, both
        learning rates are multiplied by ``lr_decay`` after that epoch and every later one
        (Mikolov's halving with lr_decay = 0.5); "linear": they decay linearly to ~0 over
        ``epochs`` epochs (word2vec's schedule).
    patience: stop after this many epochs in a row without a held-out improvement; the best
        parameters seen are kept.
    dropout: rate at which entries of the context vectors are zeroed in training.
    l2: L2 regularisation per prediction: every parameter decays by a factor
        exp(-learn_rate * l2) per prediction made (applied lazily, when a row is next touched).
    fine_tune_vectors: train the head's own copy of the input vectors. ``model.vectors`` (the
        vectors exported to spaCy) are not changed unless ``export_fine_tuned_vectors``.
    export_fine_tuned_vectors: replace ``model.vectors`` with the fine-tuned copy. This changes
        what the CBOW head and spaCy's ``token.vector`` see.
    eos_token: appended to every line as a last word to predict. It must be in the vocabulary,
        so it must have been in the corpus gensim saw. None: lines are used as they are.
    seed: random seed for dropout, chunk order and the held-out split. With ``workers = 1``
        training is reproducible; with more threads updates interleave as scheduled.
    workers: training threads; 0 = all the cores this process may use.
    progress: print one line per epoch, with a progress bar (tokens/s, loss) during it.

    The history (per-epoch loss, held-out perplexity, learning rate, timings) is recorded in
    ``model.meta["head"]``.
    """
    if not enabled:
        return None
    if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
        raise ValueError(
            Errors.E403.format(
                option="context_size", value=context_size, expected="a positive integer"
            )
        )
    for option, value, ok, expected in (
        ("dropout", dropout, 0 <= dropout < 1, "a number in [0, 1)"),
        ("heldout_fraction", heldout_fraction, 0 < heldout_fraction < 1, "a number in (0, 1)"),
    ):
        if not ok:
            raise ValueError(Errors.E403.format(option=option, value=value, expected=expected))
    settings = EngineSettings(
        epochs=epochs,
        patience=patience,
        learn_rate=learn_rate,
        dense_learn_rate=dense_learn_rate,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
        lr_decay=lr_decay,
        decay_below=DECAY_BELOW,
        l2=l2,
        workers=workers,
        seed=seed,
        progress=progress,
    )
    token_lines(corpus_path)  # E401 now rather than after the held-out file
    arrays, history = train_directional(
        model,
        lambda: token_lines(corpus_path),
        None if heldout_path is None else (lambda: token_lines(heldout_path)),
        context_size=context_size,
        diagonal=diagonal,
        fine_tune_vectors=fine_tune_vectors,
        dropout=dropout,
        eos_token=eos_token,
        heldout_fraction=heldout_fraction,
        settings=settings,
        corpus_name=str(corpus_path),
    )
    head = DirectionalHead.from_hs_model(
        model, context_size=context_size, diagonal=diagonal, fine_tune_vectors=fine_tune_vectors
    )
    head._set_arrays(arrays)
    model.head = head
    model.meta["head"] = history
    if export_fine_tuned_vectors:
        model.vectors = arrays["input_vectors"]
        history["exported_fine_tuned_vectors"] = True
    if progress:
        msg.good(
            f"Directional head: best held-out perplexity "
            f"{history['best_heldout_perplexity']:.1f} (epoch {history['best_epoch']}), "
            f"{history['train_seconds']:.0f} s"
        )
    return head
