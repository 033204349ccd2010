"""Training a next-word head on a token file: the directional head (``heads/directional.py``),
or with ``ngram_orders`` > 0 the n-gram head (``heads/ngram.py``).

The head starts from the HS model's vectors and gensim's inner-node weights. The compiled
engine (``head_engine.py``, ``_head_train.pyx``) trains it as word2vec trains: worker threads
updating shared arrays (Hogwild), sparse row updates with row-wise AdaGrad or SGD and L2 on the
rows touched, the n-gram table with its own step size and L2, context dropout, the token file
streamed (memory does not grow with the corpus), held-out perplexity after every epoch and
early stopping. ``train_head`` returns the head; ``attach_head`` puts it into the model. The
settings (``HeadSettings``, the ``[head]`` config section) go to the engine as they are.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from wasabi import msg

from ..cache import CacheSettings, cache_counts, mix_log_probs
from ..corpus import tokenfile
from ..document import Document
from ..errors import Warnings
from ..heads.base import TreeHead
from ..heads.directional import DirectionalHead
from ..heads.ngram import NgramHead
from .config import HeadSettings, head_settings
from .head_engine import token_lines, train_head_arrays

if TYPE_CHECKING:
    from ..hs_model import HSModel


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


def train_head(
    model: HSModel,
    corpus_path: str | Path,
    heldout_path: str | Path | None = None,
    settings: HeadSettings | None = None,
    *,
    progress: bool = True,
    **options: Any,
) -> DirectionalHead | None:
    """Train a directional or n-gram head for ``model`` on a token file and return it
    (``attach_head`` puts it into the model); None, without training, if the settings say
    ``enabled = false``.

    settings: the ``[head]`` config section, resolved (``HeadSettings``); options
        given as keywords override it, and are validated the same way.
    corpus_path: token file (one sentence per line, tokens separated by spaces), normally the
        one gensim was trained on. Unknown words are skipped, as they are at prediction time.
        Each line is a sentence: the words before its first word are padding.
    heldout_path: token file for early stopping; if None, ``heldout_fraction`` of the corpus
        lines (drawn with ``seed``, line by line) are held out instead.

    The settings (``[head]``):

    enabled: whether to train a head at all (the config switch).
    context_size: K, how many of the most recent known words the head reads.
    diagonal: diagonal position weights C_i (K * d parameters) or full ones (K * d * d). On Penn
        Treebank diagonal was better (full ones overfit sooner) and much faster.
    epochs: maximum passes over the training text.
    learn_rate: step size of the sparse rows (input vectors, node weights), updated after every
        next-word prediction: with ``optimizer = "adagrad"`` divided by the square root of the
        row's summed mean squared gradients; with "sgd" as it is.
    dense_learn_rate: Adam's step size for the position weights and hidden bias, which every
        prediction touches: updated from the mean gradient of a worker's last 256 predictions.
    optimizer: "adagrad" (row-wise AdaGrad) or "sgd" for the sparse rows.
    dense_optimizer: "adam" for C and b (the mean gradient of 256 predictions per step), or
        "sgd" (their summed gradient times dense_learn_rate: per-prediction SGD, applied late).
    lr_schedule: "plateau": once an epoch lowers held-out perplexity by less than 1%, both
        learning rates are multiplied by ``lr_decay`` after that epoch and every later one
        (Mikolov's halving with lr_decay = 0.5); "stall": they are multiplied by ``lr_decay``
        after each epoch that gains less than 1%, and only then; "linear": they decay linearly
        to ~0 over ``epochs`` epochs (word2vec's schedule).
    patience: stop after this many epochs in a row without a held-out improvement; the best
        parameters seen are kept.
    dropout: rate at which entries of the context vectors are zeroed in training.
    l2: L2 regularisation of the sparse rows a prediction touches: each update is
        row += rate * (gradient - l2 * row); rows not touched are not decayed.
    fine_tune_vectors: train the head's own copy of the input vectors. ``model.vectors`` (the
        vectors exported to spaCy) are not changed unless ``export_fine_tuned_vectors``.
    export_fine_tuned_vectors: (``attach_head``) replace ``model.vectors`` with the fine-tuned
        copy. This changes what the CBOW head and spaCy's ``token.vector`` see.
    eos_token: appended to every line as a last word to predict. It must be in the vocabulary,
        so it must have been in the corpus gensim saw. None: lines are used as they are.
    seed: random seed for dropout, chunk order and the held-out split. With ``workers = 1``
        training is reproducible; with more threads updates interleave as scheduled.
    heldout_fraction: without ``heldout_path``, the fraction of lines held out.
    workers: training threads; 0 = all the cores this process may use.
    ngram_orders: N > 0 adds hashed n-gram features of orders 1..N at every tree node (the
        n-gram head, ``heads/ngram.py``); 0 trains the directional head. N <= context_size.
    table_size: the n-gram table's size T in values (float32 in training: 4 T bytes; saved
        sparse). Larger tables collide less; see ``bench/bench_ptb.py`` for the size/quality
        curve on Penn Treebank.
    table_learn_rate, table_l2: the table's SGD step size and its L2 (on the values touched).
    tune_cache: choose the document cache's size and weight (``spacy_hs.cache``) on the
        held-out text, read in its order as one stream; ``attach_head`` saves them with the
        model (``settings["cache"]``), or no cache if none helps.
    progress: print one line per epoch, with a progress bar (tokens/s, loss) during it.

    The history (per-epoch loss, held-out perplexity, learning rate, timings) is kept in
    ``head.history`` (``attach_head`` copies it to ``model.meta["head"]``).
    """
    settings = head_settings(settings, **options)
    if not settings.enabled:
        return None
    token_lines(corpus_path)  # a missing or broken file fails now, not after the held-out one
    arrays, history, heldout_ids = train_head_arrays(
        model,
        lambda: token_lines(corpus_path),
        None if heldout_path is None else (lambda: token_lines(heldout_path)),
        settings,
        progress=progress,
        corpus_name=str(corpus_path),
    )
    options = dict(
        diagonal=settings.diagonal,
        fine_tune_vectors=settings.fine_tune_vectors,
        history=history,
    )
    if settings.ngram_orders:
        table = NgramHead.round_table(arrays.pop("table"))
        head = NgramHead(arrays, model.tree, table=table, orders=settings.ngram_orders, **options)
    else:
        head = DirectionalHead(arrays, model.tree, **options)
    if settings.tune_cache:
        head.history["cache"] = tune_cache(head, heldout_ids)
    if progress:
        msg.good(
            f"{'N-gram' if settings.ngram_orders else 'Directional'} head: best held-out "
            f"perplexity "
            f"{history['best_heldout_perplexity']:.1f} (epoch {history['best_epoch']}), "
            f"{history['train_seconds']:.0f} s"
        )
    return head


def attach_head(model: HSModel, head: TreeHead, *, export_fine_tuned_vectors: bool) -> None:
    """Make ``head`` the model's trained head, with its training history in
    ``model.meta["head"]``; ``export_fine_tuned_vectors`` also replaces ``model.vectors`` (what
    the CBOW head and spaCy's ``token.vector`` see) with the head's fine-tuned copy."""
    model.trained_head = head
    model.meta["head"] = head.history
    cache = head.history.get("cache")
    if cache is not None and cache.get("weight", 0) > 0:
        model.settings["cache"] = CacheSettings.from_value(
            {key: cache[key] for key in ("size", "weight", "ramp", "delay") if key in cache}
        ).to_dict()
    else:
        model.settings.pop("cache", None)
    if export_fine_tuned_vectors:
        model.set_vectors(head.arrays["input_vectors"].copy())  # checked, as the constructor does
        model.meta["head"]["exported_fine_tuned_vectors"] = True
        warnings.warn(Warnings.W021, stacklevel=2)


CACHE_SIZES = (50, 100, 200, 500, 1000, 2000)
CACHE_WEIGHTS = tuple(round(0.01 * i, 2) for i in range(0, 31))
CACHE_RAMPS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
CACHE_DELAYS = (0, 5, 10)
# At most this many held-out tokens are read to tune the cache (the first whole sentences):
# tuning memory stays flat in the held-out text's size (a few float64 arrays of this length).
CACHE_TUNING_TOKENS = 2_000_000
# A one-sentence document is scored no worse with the cache than without it on the held-out
# text: its first 5 and 10 words, and whole. "No worse" with a margin, so that it holds on
# unseen text too: at each cut the cache is silent (the same log-probs), or its mean gain per
# token is at least SHORT_DOCUMENT_Z standard errors (of the per-sentence gains) above zero.
# On PTB, a gain of 0.3 standard errors on valid turned into a loss on test.
SHORT_DOCUMENT_CUTS = (5, 10, None)
SHORT_DOCUMENT_Z = 2.0


def tune_cache(head: TreeHead, heldout_ids: np.ndarray) -> dict[str, Any] | None:
    """The document cache (size N, weight λ_max, ramp c, delay m; ``spacy_hs.cache``) that
    maximises the likelihood of the held-out text (encoded ids, -1 after each sentence, read as
    one stream in order) over the grids ``CACHE_SIZES`` x ``CACHE_WEIGHTS`` x ``CACHE_RAMPS`` x
    ``CACHE_DELAYS``, among those with which each held-out sentence read as its own document
    (cut to 5 and 10 words, and whole) scores no worse than without a cache, with the margin
    ``SHORT_DOCUMENT_Z``. Only the first ``CACHE_TUNING_TOKENS`` tokens (whole sentences) are
    read. Returns the settings with their held-out perplexity and that without a cache; None
    if the held-out text is empty."""
    ends = np.flatnonzero(heldout_ids < 0)
    ends = ends[ends - np.arange(len(ends)) <= CACHE_TUNING_TOKENS]  # tokens before each end
    heldout_ids = heldout_ids[: ends[-1] + 1] if len(ends) else heldout_ids[:0]
    token_ids = heldout_ids[heldout_ids >= 0]
    if not len(token_ids):
        return None
    lengths = np.diff(np.concatenate([[-1], ends])) - 1
    head_log_probs = Document(token_ids, lengths, head, n_words=head.n_words).log_probs()
    sentence_of = np.repeat(np.arange(len(lengths)), lengths)
    in_sentence = np.arange(len(token_ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cuts = [in_sentence < cut if cut else slice(None) for cut in SHORT_DOCUMENT_CUTS]
    best = (float(np.mean(head_log_probs)), CacheSettings(0, 0.0))
    for size in CACHE_SIZES:
        counts, held = cache_counts(token_ids, size)
        short_counts, short_held = cache_counts(token_ids, size, documents=sentence_of)
        for ramp, delay in itertools.product(CACHE_RAMPS, CACHE_DELAYS):
            for weight in CACHE_WEIGHTS[1:]:
                cache = CacheSettings(size, weight, ramp, delay)
                mixed = mix_log_probs(head_log_probs, counts, held, cache.weights(held))
                mean = float(np.mean(mixed))
                if mean <= best[0]:
                    continue
                short = mix_log_probs(
                    head_log_probs, short_counts, short_held, cache.weights(short_held)
                )
                gains = (short - head_log_probs).astype(np.float64)
                if all(_never_worse(gains, sentence_of, cut) for cut in cuts):
                    best = (mean, cache)
    return {
        **best[1].to_dict(),
        "heldout_perplexity": float(np.exp(-best[0])),
        "heldout_perplexity_without": float(np.exp(-np.mean(head_log_probs))),
    }


def _never_worse(gains: np.ndarray, sentence_of: np.ndarray, cut: Any) -> bool:
    """Whether the cache's per-token log-prob ``gains`` over the tokens ``cut`` selects are all
    zero (the cache silent there), or their mean is ``SHORT_DOCUMENT_Z`` standard errors above
    zero, the standard error taken over the per-sentence sums."""
    gains, sentences = gains[cut], sentence_of[cut]
    if not gains.any():
        return True
    per_sentence = np.bincount(sentences, weights=gains)
    spread = float(np.std(per_sentence)) * np.sqrt(len(per_sentence))
    return bool(float(gains.sum()) >= SHORT_DOCUMENT_Z * spread)
