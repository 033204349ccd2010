"""Train gensim Word2Vec with hierarchical softmax on a token file: the ``[word2vec]`` section of
the training config, validated, and gensim's fast ``corpus_file`` mode.

Data flow: token file (``corpus/tokenfile.py``) -> gensim model (here) -> ``HSModel``.
Nothing here imports from a later stage.

**Per-epoch loss.** gensim's ``get_latest_training_loss()`` is no use here, for three reasons
measured with gensim 4.4 (``bench/bench_train.py --loss-probe``): it is cumulative over the
``train()`` call; each worker thread copies the running total at the start of its share of the
epoch and writes its own total back at the end, so with 2 workers about half the loss is lost
(the same race exists in iterator mode); and it is accumulated in float32 one tree node at a time,
so once the total passes a few million, float32's spacing (0.25 at 2-4 million, 1 at 8-16
million) is as large as the additions (mostly < 1) and they are rounded heavily. Turning it on
(``compute_loss=True``) also slows training. Instead, at the end of each epoch the model's exact
loss is computed on a fixed sample of training examples, drawn once before training:

    loss = mean over the sample of -log P(target | input), natural log, float64

with the hierarchical-softmax probability gensim optimises (see ``hs_model.py`` for the sign
convention). For CBOW an example is a corpus position: the target is the word there and the
input the mean (``cbow_mean=1``) or sum of the in-vocabulary words within ``window`` on both
sides. For skip-gram an example is a (position, context word) pair: the input is the context
word's vector, the target the word at the position, as in gensim's ``train_sg_pair``. Unlike
training, the sample uses the full window and no down-sampling of frequent words, so the figure
is the model's loss on the corpus as it is, comparable across epochs and runs.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tree_search
from ..corpus.tokenfile import check_token_file
from ..errors import ConfigError, Errors, InputError
from ..progress import Progress
from ..tree import HuffmanTree
from ..util import available_memory, format_bytes
from .config import LOSS_SAMPLE, word2vec_params

# -- per-epoch loss on a fixed sample -------------------------------------------------------


@dataclass
class LossSample:
    """Fixed training examples on which the loss is measured after each epoch.

    context_ids / context_offsets: the input words of each example, flattened (CSR layout);
        one word per example for skip-gram.
    targets: the word id predicted by each example.
    """

    context_ids: np.ndarray
    context_offsets: np.ndarray
    targets: np.ndarray
    sg: int
    cbow_mean: int
    _matrix: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.targets)

    def context_matrix(self, n_words: int) -> Any:
        """Sparse (examples, vocabulary) matrix that maps input vectors to hidden vectors: the
        mean or sum of the context vectors, as one sparse product (no (contexts, d) gather)."""
        if self._matrix is None or self._matrix.shape[1] != n_words:
            from scipy.sparse import csr_matrix

            lengths = np.diff(self.context_offsets)
            scale = 1.0 / lengths if self.cbow_mean and not self.sg else np.ones(len(lengths))
            data = np.repeat(scale, lengths).astype(np.float32)
            self._matrix = csr_matrix(
                (data, self.context_ids, self.context_offsets), shape=(len(self), n_words)
            )
        return self._matrix


class LossSampler:
    """Draws the loss sample while gensim scans the vocabulary, so the corpus is read once.

    Wraps the sentence stream given to ``build_vocab`` and keeps a uniform random sample of
    corpus positions (reservoir sampling, Li's "Algorithm L": a few random draws per kept
    position, nothing per token). Each kept position stores only the tokens around it, so
    memory is bounded whatever the corpus or line length. Once the vocabulary is known,
    ``examples`` maps them to ids as gensim does (out-of-vocabulary words dropped first);
    positions whose word is out of the vocabulary, or that have no context, give no example.
    """

    def __init__(self, n_positions: int, window: int, seed: int = 0):
        self.n_positions = n_positions
        self.window = window
        # Raw tokens kept on each side: enough in-vocabulary context after dropping rare words.
        self.reach = 3 * window + 10
        self.rng = random.Random(seed)  # scalar draws: much faster than numpy's
        self.kept: list[tuple[list[str], int]] = []

    def __call__(self, sentences: Iterable[list[str]]) -> Iterator[list[str]]:
        """Yield ``sentences`` unchanged, sampling positions on the way."""
        k, reach, kept, rng = self.n_positions, self.reach, self.kept, self.rng
        short = 2 * reach + 1  # sentences this short are kept whole (no copy)
        if k <= 0:
            yield from sentences
            return
        seen = 0  # tokens before the current sentence
        next_index = 0  # the next position to keep (the first k are all kept)
        weight = math.exp(math.log(1.0 - rng.random()) / k)
        for sentence in sentences:
            end = seen + len(sentence)
            while next_index < end:
                i = next_index - seen
                if len(sentence) <= short:
                    item = (sentence, i)
                else:
                    first = i - reach if i > reach else 0
                    item = (sentence[first : i + reach + 1], i - first)
                if len(kept) < k:
                    kept.append(item)
                    if len(kept) < k:
                        next_index += 1
                        continue
                else:
                    kept[rng.randrange(k)] = item
                    weight *= math.exp(math.log(1.0 - rng.random()) / k)
                # Skip ahead: how many positions go by before the next one is kept.
                next_index += int(math.log(1.0 - rng.random()) / math.log1p(-weight)) + 1
            seen = end
            yield sentence

    def examples(self, key_to_index: Mapping[str, int], sg: int, cbow_mean: int) -> LossSample:
        """The kept positions as training examples for a vocabulary (see ``LossSample``)."""
        context_ids: list[int] = []
        offsets = [0]
        targets: list[int] = []
        window = self.window
        for tokens, centre in self.kept:
            target = key_to_index.get(tokens[centre])
            if target is None:
                continue
            left = [key_to_index[w] for w in tokens[:centre] if w in key_to_index][-window:]
            right = [key_to_index[w] for w in tokens[centre + 1 :] if w in key_to_index][:window]
            context = left + right
            if not context:
                continue
            if sg:
                context = [context[self.rng.randrange(len(context))]]
            context_ids.extend(context)
            offsets.append(len(context_ids))
            targets.append(target)
        return LossSample(
            np.array(context_ids, dtype=np.int64),
            np.array(offsets, dtype=np.int64),
            np.array(targets, dtype=np.int64),
            sg=sg,
            cbow_mean=cbow_mean,
        )


def tree_of(model: Any) -> HuffmanTree:
    """gensim's trained Huffman tree (``code`` / ``point``), as spacy-hs reads it."""
    wv = model.wv
    return HuffmanTree.from_paths(wv.expandos["point"][: len(wv)], wv.expandos["code"][: len(wv)])


def sample_loss(model: Any, sample: LossSample, tree: HuffmanTree | None = None) -> float:
    """Mean -log P(target | input) over ``sample`` with the model's current weights (nats),
    through the same compiled path kernel as every HS query (exact; no clipping, no table)."""
    if not len(sample):
        return float("nan")
    tree = tree or tree_of(model)
    n_words = len(model.wv)
    hidden = np.ascontiguousarray(sample.context_matrix(n_words) @ model.wv.vectors, np.float32)
    log_probs = _tree_search.path_log_probs(
        hidden,
        np.ascontiguousarray(sample.targets, dtype=np.int32),
        np.ascontiguousarray(model.syn1[: n_words - 1], dtype=np.float32),
        tree.path_offsets,
        tree.path_nodes,
        tree.path_codes,
    )
    return float(-log_probs.mean())


# -- training -------------------------------------------------------------------------------


@dataclass
class EpochReport:
    """One finished epoch: its own loss (see the module docstring), time and speed.

    seconds / words_per_second: gensim's training only; loss_seconds: measuring the loss.
    """

    epoch: int
    epochs: int
    loss: float
    seconds: float
    words_per_second: float
    loss_seconds: float


@dataclass
class Word2VecResult:
    """A trained gensim model and what was measured while training it."""

    model: Any
    epochs: list[EpochReport] = field(default_factory=list)
    sentences: int = 0
    words: int = 0
    vocab_size: int = 0
    vocab_seconds: float = 0.0
    train_seconds: float = 0.0
    loss_sample_size: int = 0

    @property
    def loss_history(self) -> list[float]:
        """The loss of each epoch; NaN where it was not measured (``loss_sample = 0``)."""
        return [report.loss for report in self.epochs]

    @property
    def words_per_second(self) -> float:
        """Corpus words processed per second of training, all epochs, loss measurement included."""
        return self.words * len(self.epochs) / self.train_seconds if self.train_seconds else 0.0

    def epoch_dicts(self) -> list[dict[str, Any]]:
        """The reports as JSON-able dicts (an unmeasured loss is None: JSON has no NaN)."""
        return [{**asdict(report), "loss": _json_number(report.loss)} for report in self.epochs]


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def train_word2vec(
    corpus_path: str | Path,
    params: Mapping[str, Any],
    loss_sample: int = LOSS_SAMPLE,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_vocab: Callable[[Word2VecResult], None] | None = None,
    check: bool = True,
    progress: bool = False,
) -> Word2VecResult:
    """Build the vocabulary and train gensim ``Word2Vec`` on ``corpus_path`` in corpus_file mode.

    params: a ``[word2vec]`` section; validated and completed by ``word2vec_params``.
    loss_sample: how many training examples the per-epoch loss is measured on (0: no loss).
    on_epoch: called after each epoch with its report (the CLI prints it).
    on_vocab: called once the vocabulary is built, before the first epoch.
    check: run ``check_token_file`` first (False if the caller just did).
    progress: show the tokens read for the vocabulary, then the words trained, with their
        rates (``spacy_hs.progress``; gensim reports its work in corpus_file mode once per
        epoch, so training moves epoch by epoch). No last lines: on_vocab and on_epoch report.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.models.word2vec import LineSentence

    corpus_path = Path(corpus_path)
    if check:
        check_token_file(corpus_path)
    params = word2vec_params(params)
    model = Word2Vec(**params)
    sampler = LossSampler(loss_sample, params["window"], seed=params["seed"])
    start = time.perf_counter()
    # Same reader as build_vocab(corpus_file=...) uses, with the loss sample drawn on the way.
    # keep_raw_vocab: the raw counts explain a min_count error; dropped right after.
    # gensim allocates the weights at the end of build_vocab: check they fit in memory first.
    def prepare_weights(update: bool = False) -> None:
        check_memory(len(model.wv), params["vector_size"])
        type(model).prepare_weights(model, update=update)

    model.prepare_weights = prepare_weights  # type: ignore[method-assign]
    scan = Progress("Vocabulary", unit="tokens", enabled=progress, final=False)
    try:
        sentences = _counted(LineSentence(str(corpus_path)), scan)
        model.build_vocab(corpus_iterable=sampler(sentences), keep_raw_vocab=True)
    finally:
        del model.prepare_weights  # the instance attribute; gensim's method again
        scan.close()
    raw_counts = model.raw_vocab
    model.raw_vocab = {}
    result = Word2VecResult(
        model,
        sentences=int(model.corpus_count),
        words=int(model.corpus_total_words),
        vocab_size=len(model.wv),
        vocab_seconds=time.perf_counter() - start,
    )
    if len(model.wv) < 2:
        raise InputError(_too_few_words(corpus_path, raw_counts, result, params["min_count"]))
    del raw_counts
    sample = (
        sampler.examples(model.wv.key_to_index, params["sg"], params["cbow_mean"])
        if loss_sample
        else None
    )
    result.loss_sample_size = len(sample) if sample is not None else 0
    if on_vocab is not None:
        on_vocab(result)
    tree = tree_of(model) if sample is not None else None

    class EpochLogger(CallbackAny2Vec):
        def __init__(self) -> None:
            self.started = 0.0

        def on_epoch_begin(self, model: Any) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, model: Any) -> None:
            seconds = time.perf_counter() - self.started
            loss = sample_loss(model, sample, tree) if sample is not None else float("nan")
            loss_seconds = time.perf_counter() - self.started - seconds
            report = EpochReport(
                epoch=len(result.epochs) + 1,
                epochs=model.epochs,
                loss=loss,
                seconds=seconds,
                words_per_second=result.words / seconds if seconds else 0.0,
                loss_seconds=loss_seconds,
            )
            result.epochs.append(report)
            meter.update(result.words, note=f"epoch {report.epoch}/{report.epochs}")
            if on_epoch is not None:
                with meter.paused():
                    on_epoch(report)

    meter = Progress(
        "Training", total=result.words * model.epochs, unit="words", enabled=progress, final=False
    )
    start = time.perf_counter()
    with meter:
        model.train(
            corpus_file=str(corpus_path),
            total_words=model.corpus_total_words,
            epochs=model.epochs,
            callbacks=[EpochLogger()],
        )
    result.train_seconds = time.perf_counter() - start
    return result


def _counted(sentences: Iterable[list[str]], meter: Progress) -> Iterator[list[str]]:
    """``sentences`` unchanged, their tokens counted by ``meter``."""
    for sentence in sentences:
        meter.update(len(sentence))
        yield sentence


# Bytes per word and dimension that stay in memory while training: float32 vectors and
# inner-node weights, in gensim and in the HS model built from it.
BYTES_PER_WEIGHT = 4 * 2 * 2


def check_memory(n_words: int, vector_size: int) -> None:
    """ConfigError (E170) if ``n_words`` vectors of ``vector_size`` dimensions (with their
    inner-node weights, twice) need more memory than is available, before gensim allocates."""
    need = n_words * vector_size * BYTES_PER_WEIGHT
    available = available_memory()
    if need > available:
        raise ConfigError(
            Errors.E170.format(
                vector_size=vector_size,
                words=n_words,
                need=format_bytes(need),
                bytes_per=BYTES_PER_WEIGHT,
                available=format_bytes(available),
                suggestion=max(1, available // (BYTES_PER_WEIGHT * max(n_words, 1)) // 2),
            )
        )


def _too_few_words(
    path: Path, raw_counts: Mapping[str, int], result: Word2VecResult, min_count: int
) -> str:
    counts = sorted(raw_counts.values(), reverse=True)
    # The largest threshold that keeps at least two words (and a non-trivial vocabulary).
    suggestion = max(1, min(counts[1] if len(counts) > 1 else 1, min_count // 2 or 1))
    return Errors.E155.format(
        n_kept=result.vocab_size,
        path=path,
        min_count=min_count,
        n_words=result.words,
        n_types=len(counts),
        max_count=counts[0] if counts else 0,
        suggestion=suggestion,
    )
