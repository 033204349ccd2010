"""Train gensim Word2Vec with hierarchical softmax on a token file: the ``[word2vec]`` section of
the training config, validated, and gensim's fast ``corpus_file`` mode.

Data flow: token file (``preprocess.py``) -> gensim model (here) -> ``HSModel`` (``hs_model.py``).
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

import codecs
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    ConfigError,
    Errors,
    InputError,
    InputIsDirectoryError,
    InputNotFoundError,
)

# Default number of training examples the per-epoch loss is measured on.
LOSS_SAMPLE = 2000
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst", ".lzma")
READ_CHUNK = 1 << 20


# Defaults for a corpus of a few hundred thousand to a few million words; they are also
# written out, with comments, in configs/default.cfg.
WORD2VEC_DEFAULTS: dict[str, Any] = {
    "sg": 0,
    "hs": 1,
    "negative": 0,
    "vector_size": 100,
    "window": 5,
    "min_count": 3,
    "max_vocab_size": None,
    "max_final_vocab": None,
    "sample": 0.001,
    "alpha": 0.025,
    "min_alpha": 0.0001,
    "cbow_mean": 1,
    "shrink_windows": True,
    "epochs": 10,
    "workers": 0,
    "seed": 0,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# key -> (test, what the value must be)
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "sg": (lambda v: v in (0, 1), "0 (CBOW) or 1 (skip-gram)"),
    # hs and negative have one valid value each; a wrong one gets its own explanation below.
    "hs": (lambda v: _is_int(v) or isinstance(v, bool), "1"),
    "negative": (lambda v: _is_int(v), "0"),
    "vector_size": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "window": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "min_count": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "max_vocab_size": (lambda v: v is None or (_is_int(v) and v >= 2), "null or an integer >= 2"),
    "max_final_vocab": (lambda v: v is None or (_is_int(v) and v >= 2), "null or an integer >= 2"),
    "sample": (lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 disables down-sampling)"),
    "alpha": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "min_alpha": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "cbow_mean": (lambda v: v in (0, 1), "0 (sum) or 1 (mean)"),
    "shrink_windows": (lambda v: isinstance(v, bool), "true or false"),
    "epochs": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "workers": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0 = all cores)"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def word2vec_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a ``[word2vec]`` config section and return the keyword arguments for gensim's
    ``Word2Vec``: defaults filled in, ``workers = 0`` resolved to the number of cores.

    Raises ValueError naming the bad setting and the fix.
    """
    unknown = sorted(set(section) - set(WORD2VEC_DEFAULTS))
    if unknown:
        raise ConfigError(
            Errors.E159.format(
                section="word2vec", key=unknown[0], valid=", ".join(sorted(WORD2VEC_DEFAULTS))
            )
        )
    params = {**WORD2VEC_DEFAULTS, **section}
    for key, (test, expected) in _CHECKS.items():
        if not test(params[key]):
            raise ConfigError(
                Errors.E160.format(
                    section="word2vec", key=key, expected=expected, value=params[key]
                )
            )
    if params["hs"] != 1:
        raise ConfigError(Errors.E161.format(hs=params["hs"]))
    if params["negative"] != 0:
        raise ConfigError(Errors.E162.format(negative=params["negative"]))
    for key in ("sg", "hs", "negative", "cbow_mean"):
        params[key] = int(params[key])
    for key in ("sample", "alpha", "min_alpha"):
        params[key] = float(params[key])
    if params["workers"] == 0:
        params["workers"] = available_cores()
    return params


# -- the corpus -----------------------------------------------------------------------------


@dataclass
class CorpusCheck:
    """What one streaming pass over a token file found (before gensim reads it)."""

    path: str
    bytes: int
    lines: int


def check_corpus(path: str | Path, what: str = "Corpus file") -> CorpusCheck:
    """Check that ``path`` is a plain-text, UTF-8 token file with at least one token.

    One streaming pass in 1 MB blocks (memory stays flat). Non-UTF-8 bytes are an error, not
    replaced: gensim's ``corpus_file`` mode reads the file's raw bytes, so repairing it would
    mean writing a second copy; ``spacy-hs preprocess`` already writes clean UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(Errors.E150.format(what=what, path=path))
    if path.is_dir():
        raise InputIsDirectoryError(Errors.E151.format(what=what, path=path))
    if path.name.lower().endswith(COMPRESSED_SUFFIXES):
        raise InputError(Errors.E152.format(what=what, path=path))
    # An incremental decoder: a character split across two blocks is fine, and memory stays
    # flat even for a corpus that is one huge line (text8).
    decoder = codecs.getincrementaldecoder("utf8")()
    n_bytes = n_lines = 0
    has_token = False
    last = b""
    with path.open("rb") as file:
        # None, after the last block, flushes the decoder (a truncated character at the end).
        for chunk in itertools.chain(iter(lambda: file.read(READ_CHUNK), b""), [None]):
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as err:
                data = pending + (chunk or b"")
                raise InputError(
                    Errors.E153.format(
                        what=what,
                        path=path,
                        line=n_lines + data.count(b"\n", 0, err.start) + 1,
                        offset=n_bytes - len(pending) + err.start,
                        reason=err.reason,
                    )
                ) from None
            if chunk:
                has_token = has_token or (bool(text) and not text.isspace())
                n_bytes += len(chunk)
                n_lines += chunk.count(b"\n")
                last = chunk[-1:]
    if not has_token:
        raise InputError(Errors.E154.format(what=what, path=path))
    n_lines += last not in (b"", b"\n")  # a last line without a newline
    return CorpusCheck(str(path), n_bytes, n_lines)


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


class TreePaths:
    """Every word's path in gensim's Huffman tree, flattened: the inner nodes (gensim's
    ``point``) and the sign ``1 - 2 * code`` of each step (gensim's ``code``)."""

    def __init__(self, model: Any):
        wv = model.wv
        # gensim keeps them as object arrays of per-word arrays (what get_vecattr reads).
        points = list(wv.expandos["point"][: len(wv)])
        codes = list(wv.expandos["code"][: len(wv)])
        lengths = np.array([len(p) for p in points], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.nodes = np.concatenate(points).astype(np.int64)
        self.signs = 1.0 - 2.0 * np.concatenate(codes).astype(np.float32)


def sample_loss(model: Any, sample: LossSample, paths: TreePaths | None = None) -> float:
    """Mean -log P(target | input) over ``sample`` with the model's current weights (nats)."""
    if not len(sample):
        return float("nan")
    paths = paths or TreePaths(model)
    hidden = sample.context_matrix(len(model.wv)) @ model.wv.vectors
    total = 0.0
    for start in range(0, len(sample), 2048):  # bounds the (steps, d) gather below
        targets = sample.targets[start : start + 2048]
        path_lengths = paths.offsets[targets + 1] - paths.offsets[targets]
        steps = np.repeat(np.arange(len(targets)), path_lengths) + start
        step_in_path = np.arange(len(steps)) - np.repeat(
            np.cumsum(path_lengths) - path_lengths, path_lengths
        )
        flat = np.repeat(paths.offsets[targets], path_lengths) + step_in_path
        dots = np.einsum("ij,ij->i", hidden[steps], model.syn1[paths.nodes[flat]])
        # log sigmoid(x) = -log(1 + exp(-x)), exact in float64 (no clipping, no table).
        total += float(np.logaddexp(0.0, -(paths.signs[flat] * dots).astype(np.float64)).sum())
    return total / len(sample)


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
        return [report.loss for report in self.epochs]

    @property
    def words_per_second(self) -> float:
        """Corpus words processed per second of training, all epochs, loss measurement included."""
        return self.words * len(self.epochs) / self.train_seconds if self.train_seconds else 0.0

    def epoch_dicts(self) -> list[dict[str, Any]]:
        return [asdict(report) for report in self.epochs]


def train_word2vec(
    corpus_path: str | Path,
    params: Mapping[str, Any],
    loss_sample: int = LOSS_SAMPLE,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_vocab: Callable[[Word2VecResult], None] | None = None,
    check: bool = True,
) -> Word2VecResult:
    """Build the vocabulary and train gensim ``Word2Vec`` on ``corpus_path`` in corpus_file mode.

    params: a validated ``[word2vec]`` section (see ``word2vec_params``).
    loss_sample: how many training examples the per-epoch loss is measured on (0: no loss).
    on_epoch: called after each epoch with its report (the CLI prints it).
    on_vocab: called once the vocabulary is built, before the first epoch.
    check: run ``check_corpus`` first (False if the caller just did).
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.models.word2vec import LineSentence

    corpus_path = Path(corpus_path)
    if check:
        check_corpus(corpus_path)
    params = word2vec_params(params)
    model = Word2Vec(**params)
    sampler = LossSampler(loss_sample, params["window"], seed=params["seed"])
    start = time.perf_counter()
    # Same reader as build_vocab(corpus_file=...) uses, with the loss sample drawn on the way.
    # keep_raw_vocab: the raw counts explain a min_count error; dropped right after.
    model.build_vocab(corpus_iterable=sampler(LineSentence(str(corpus_path))), keep_raw_vocab=True)
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
    paths = TreePaths(model) if sample is not None else None

    class EpochLogger(CallbackAny2Vec):
        def __init__(self) -> None:
            self.started = 0.0

        def on_epoch_begin(self, model: Any) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, model: Any) -> None:
            seconds = time.perf_counter() - self.started
            loss = sample_loss(model, sample, paths) if sample is not None else float("nan")
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
            if on_epoch is not None:
                on_epoch(report)

    start = time.perf_counter()
    model.train(
        corpus_file=str(corpus_path),
        total_words=model.corpus_total_words,
        epochs=model.epochs,
        callbacks=[EpochLogger()],
    )
    result.train_seconds = time.perf_counter() - start
    return result


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
