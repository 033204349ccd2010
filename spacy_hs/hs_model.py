"""``HSModel``: an HS model's vocabulary and arrays with a trained head, and the queries.

``HSModel`` knows nothing of spaCy. It is built from a trained gensim ``Word2Vec`` (``hs=1``)
without rebuilding anything (``hs_gensim.py``), is saved and loaded without pickle
(``hs_format.py``), and answers next-word queries with the probabilities the hierarchical
softmax actually defines::

    P(w | h) = prod over the inner nodes n on w's path of sigmoid((1 - 2 * code_n) * h . syn1[n])

``h`` is a head's hidden vector for the context; gensim's CBOW-style head (``heads/cbow.py``)
takes the mean (``cbow_mean=1``) or sum (``cbow_mean=0``) of the context words' input vectors,
as in gensim's CBOW training. Code 0 means ``sigmoid(+dot)``, as in gensim's
``train_cbow_pair``. Log-sigmoids are computed exactly: no clipping at |dot| >= 6 and no lookup
table (gensim's ``score()`` has both). The distribution sums to 1 over the vocabulary, and the
top-k is found by a best-first search of the tree that visits O(k log V) nodes rather than
scoring all V words. Every query asks a head (``heads.protocol.Head``); none is computed here.

Two families of queries: the next-word ones (``predict_next``, ``log_prob_next``,
``probabilities_next``, ``log_prob_stream``, ``document``) read the last ``context_size`` known
words before a position through a chosen head; the gensim-compatible ones
(``predict_output_word``, ``log_prob``, ``probabilities``) read every known context word
through the CBOW-style head, as gensim's ``predict_output_word`` does.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import hs_format, registry, validation
from .cache import CacheSettings
from .document import Document
from .errors import ConfigError, Errors, UnknownWordError, Warnings
from .heads.base import context_matrix
from .heads.protocol import Head
from .hs_format import (  # noqa: F401  (the model's file format, re-exported)
    META_FILE,
    check_output_dir,
    model_files,
    read_header,
    registered_head_names,
)
from .hs_gensim import gensim_parts
from .hs_vocab import UNKNOWN_WORD, HSVocab  # noqa: F401  (re-exported)
from .util import is_positive_int

# Every model can answer through gensim's own CBOW-style head (spacy_hs/heads/cbow.py).
CBOW_ARCHITECTURE = "spacy_hs.CBOWHead.v1"
# The CBOW-style heads a model keeps, one per context size its gensim-style queries asked for.
MAX_CBOW_HEADS = 32
# log_prob_stream scores this many tokens at a time (whole sentences): its memory beyond the
# result (8 bytes per token).
STREAM_CHUNK_TOKENS = 1 << 14

Context = Sequence[str | int]


class HSModel(HSVocab):
    """An HS model (``HSVocab``: words, counts, vectors, tree, inner-node weights, settings and
    meta; see there for the arguments) with an optional trained next-word head, answering
    next-word queries through its heads.

    trained_head: the trained next-word head, if any (e.g. ``spacy_hs/heads/directional.py``);
        None until one is trained (``spacy_hs.training.head``) or loaded with the model.
    """

    # Set on the instance when a head is trained or loaded; None until then.
    trained_head: Head | None = None

    @classmethod
    def from_gensim(
        cls, model: Any, settings: dict[str, Any] | None = None, *, normalizer: Any = None
    ) -> HSModel:
        """Copy a trained gensim ``Word2Vec`` with ``hs=1``: words, counts, input vectors, the
        Huffman tree exactly as trained (``code``/``point``) and the inner-node weights (``syn1``).

        settings: extra settings to keep with the model (for example preprocessing options).
        normalizer: how the training text was normalised (``NormalizerSettings`` or its dict),
            so the pipeline component normalises new text the same way. Without it, a model
            whose words are all lowercase is looked up lowercased, others as they are.
        """
        return cls(**gensim_parts(model, settings, normalizer=normalizer))

    def __repr__(self) -> str:
        head = self.trained_head
        trained = f"{head.name} head, context {head.context_size}" if head else "no trained head"
        settings = self.settings
        kind = "skip-gram" if settings.get("sg") else "CBOW"
        lang = f", lang {settings['lang']!r}" if settings.get("lang") else ""
        return (
            f"<HSModel: {len(self):,} words, {self.vector_size} dimensions, {kind}{lang}, "
            f"{trained}>"
        )

    # -- next-word prediction through a chosen head -----------------------------------

    def head_names(self) -> list[str]:
        """The heads this model answers through: "cbow" (gensim's, always) and the trained
        head's name, if it has one; plus "auto", the trained head if any, else "cbow"."""
        trained = self.trained_head
        return ["auto", "cbow", *([trained.name] if trained is not None else [])]

    def head(self, head: str = "auto") -> Head:
        """The head that answers next-word queries.

        "cbow": gensim's CBOW-style mean/sum over the context, scored with ``syn1``.
        The trained head's name (``trained_head.name``, e.g. "directional" or "ngram"): it.
        "auto": the trained head if the model has one, else "cbow".
        """
        if head == "auto":
            head = self.trained_head.name if self.trained_head is not None else "cbow"
        if head == "cbow":
            return self._cbow_head()
        if self.trained_head is not None and head == self.trained_head.name:
            return self.trained_head
        if head in registered_head_names():
            raise ConfigError(Errors.E023.format(head=head, heads=", ".join(self.head_names())))
        raise ConfigError(Errors.E024.format(head=head, heads=", ".join(self.head_names())))

    def context_ids(self, contexts: Sequence[Context], size: int) -> np.ndarray:
        """An int32 context matrix (B, size) of contexts of words or ids (oldest first): each
        context's last ``size`` known ids, right-aligned, -1 before them (unknown words
        skipped)."""
        return context_matrix([self.word_ids(context) for context in contexts], size)

    def predict_next(
        self, context_words: Context, top_k: int = 10, head: str = "auto"
    ) -> list[tuple[str, float]]:
        """The ``top_k`` most probable next words after ``context_words`` (oldest first), exact.

        Unknown context words are skipped, then the last ``context_size`` known words are used.
        If the head needs a known word and there is none, warns and returns an empty list.
        """
        return self.predict_next_batch([context_words], top_k, head=head, warn=True)[0]

    def predict_next_batch(
        self,
        contexts: Sequence[Context],
        top_k: int = 10,
        head: str = "auto",
        warn: bool = False,
    ) -> list[list[tuple[str, float]]]:
        """``predict_next`` for many contexts."""
        _check_size("top_k", top_k)
        chosen = self.head(head)
        ids, log_probs = chosen.top_k(self.context_ids(contexts, chosen.context_size), top_k)
        words = self.words
        results = []
        for row, (row_ids, row_log_probs) in enumerate(zip(ids.tolist(), log_probs.tolist())):
            if row_ids and row_ids[0] < 0:
                if warn:
                    warnings.warn(_no_context_warning(contexts[row]), stacklevel=3)
                results.append([])
            else:
                results.append([(words[i], math.exp(lp)) for i, lp in zip(row_ids, row_log_probs)])
        return results

    def probabilities_next(self, context_words: Context, head: str = "auto") -> np.ndarray | None:
        """P(w | left context) for every word, aligned with ``.words``; sums to 1. None (with a
        warning) if the head needs a known context word and there is none."""
        chosen = self.head(head)
        log_probs = chosen.log_probabilities(
            self.context_ids([context_words], chosen.context_size)
        )[0]
        if np.isnan(log_probs[0]):
            warnings.warn(_no_context_warning(context_words), stacklevel=2)
            return None
        return np.exp(log_probs)

    def log_prob_next(
        self,
        word: str | int,
        context_words: Context,
        head: str = "auto",
        unknown: str | None = "auto",
    ) -> float:
        """log P(word | left context); NaN (with a warning) if the head needs a known context
        word and there is none.

        unknown: the word an out-of-vocabulary ``word`` is scored as (with a warning saying so),
            as language models score unknown words: "auto" is ``<unk>`` if the vocabulary has
            it; None (or a vocabulary without it) raises KeyError for an unknown ``word``.
        """
        word_id = self.word_ids([word])
        if not word_id:
            unknown_id = self.unknown_id(unknown)
            if unknown_id is None:
                raise UnknownWordError(Errors.E020.format(word=word, n=len(self.words)))
            warnings.warn(
                Warnings.W011.format(word=word, unknown=self.words[unknown_id]), stacklevel=2
            )
            word_id = [unknown_id]
        value = self.log_prob_next_batch(word_id, [context_words], head=head)[0]
        if np.isnan(value):
            warnings.warn(_no_context_warning(context_words), stacklevel=2)
        return float(value)

    def log_prob_next_batch(
        self,
        words: Sequence[str | int],
        contexts: Sequence[Context],
        head: str = "auto",
        unknown: str | None = "auto",
    ) -> np.ndarray:
        """log P(words[i] | contexts[i]) for all i; NaN where the word is unknown (and the model
        has no ``unknown`` word, see ``log_prob_next``) or the head has no context."""
        if len(words) != len(contexts):
            raise ConfigError(Errors.E022.format(n=len(contexts), n_words=len(words)))
        chosen = self.head(head)
        word_ids = np.array([(self.word_ids([w]) or [-1])[0] for w in words], dtype=np.int32)
        unknown_id = self.unknown_id(unknown)
        if unknown_id is not None:
            word_ids[word_ids < 0] = unknown_id
        return chosen.log_prob(self.context_ids(contexts, chosen.context_size), word_ids)

    def log_prob_stream(
        self,
        sentences: Iterable[Sequence[str | int]],
        head: str = "auto",
        unknown: str | None = "auto",
        cache: Any = "auto",
    ) -> np.ndarray:
        """The natural-log probability of every token of a document, given as sentences (lists
        of words or ids), in order: float64 (number of tokens,).

        Each token is scored from the known words before it in its sentence (the last
        ``context_size``; a sentence's first word from the sentence start, for heads that
        predict it). Unknown context words are skipped; an unknown token is scored as
        ``unknown`` (see ``log_prob_next``), or NaN; tokens a head cannot score are NaN.

        cache: the document cache (``spacy_hs.cache``) over the document's previous known
            tokens, across sentences: "auto" (the model's saved setting, ``settings["cache"]``;
            none for models without one), None (off), or ``{"size": N, "weight": λ}``.

        Streams: the sentences are read and scored ``STREAM_CHUNK_TOKENS`` tokens at a time
        (whole sentences; the cache carries over), so memory beyond the result is bounded.
        """
        chosen, settings = self.head(head), self.cache_settings(cache)
        unknown_id, n_words = self.unknown_id(unknown), len(self.words)
        parts, history = [], None
        for token_ids, lengths in self._sentence_chunks(sentences):
            document = Document(
                token_ids, lengths, chosen, settings, unknown_id, n_words=n_words, history=history
            )
            parts.append(document.log_probs())
            history = document.history_after()
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    def _sentence_chunks(
        self, sentences: Iterable[Sequence[str | int]]
    ) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """Word ids (-1 unknown) and sentence lengths of about ``STREAM_CHUNK_TOKENS`` tokens
        at a time; E070 for a sentence given as one string (it would be read letter by
        letter)."""
        ids: list[int] = []
        lengths: list[int] = []
        for sentence in sentences:
            sentence_ids = self.ids_or_unknown(sentence)  # E070 for a str
            ids.extend(sentence_ids)
            lengths.append(len(sentence_ids))
            if len(ids) >= STREAM_CHUNK_TOKENS:
                yield np.array(ids, dtype=np.int32), np.array(lengths, dtype=np.int64)
                ids, lengths = [], []
        if lengths:
            yield np.array(ids, dtype=np.int32), np.array(lengths, dtype=np.int64)

    def document(
        self,
        token_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        head: str = "auto",
        unknown: str | None = "auto",
        cache: Any = "auto",
        context_size: int | None = None,
    ) -> Document:
        """A ``Document`` (``spacy_hs.document``) of word ids (-1 unknown) and sentence
        lengths: per-token log-probabilities, top-k after any position and whole distributions,
        all with the same history (head, cache, unknown word: see ``log_prob_stream``).

        context_size: read at most this many known words before each token (the pipeline
            component's ``context_size``); None: the head's own ``context_size``.
        """
        token_ids = validation.word_id_array(token_ids, len(self.words), "token_ids")
        return Document(
            token_ids,
            sentence_lengths,
            self.head(head),
            self.cache_settings(cache),
            self.unknown_id(unknown),
            n_words=len(self.words),
            context_size=context_size,
        )

    def cache_settings(self, cache: Any = "auto") -> CacheSettings | None:
        """The document cache a ``cache`` argument means: "auto" is the model's saved setting
        (``settings["cache"]``, None without one); None is off; a dict is checked."""
        if isinstance(cache, str) and cache == "auto":
            cache = self.settings.get("cache")
        return CacheSettings.from_value(cache)

    # -- gensim-compatible API (every known context word, through the CBOW-style head) ----

    def predict_output_word(
        self, context_words: Context, topn: int = 10
    ) -> list[tuple[str, float]]:
        """The ``topn`` most probable words given the context, with their probabilities.

        gensim-compatible: the contract (and the ``topn`` name) of gensim's
        ``Word2Vec.predict_output_word``, but through the hierarchical softmax, and exact: the
        same words and order as scoring the whole vocabulary. Every known context word is read;
        out-of-vocabulary ones are skipped; if none is known, a warning is issued and an empty
        list returned.
        """
        _check_size("topn", topn)
        ids = self.word_ids(context_words)
        if not ids:
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
            return []
        word_ids, log_probs = self._cbow_head().top_k_of_ids(ids, topn)
        words = self.words
        return [(words[i], math.exp(lp)) for i, lp in zip(word_ids, log_probs)]

    def predict_output_word_batch(
        self, contexts: Sequence[Context], topn: int = 10, *, warn: bool = False
    ) -> list[list[tuple[str, float]]]:
        """``predict_output_word`` for many contexts (gensim-compatible, hence ``topn``);
        all-unknown contexts give empty lists (with a warning each if ``warn``)."""
        _check_size("topn", topn)
        head, matrix = self._gensim_contexts(contexts)
        ids, log_probs = head.top_k(matrix, topn)
        words = self.words
        results = []
        for row, (row_ids, row_log_probs) in enumerate(zip(ids.tolist(), log_probs.tolist())):
            if row_ids[0] < 0:
                if warn:
                    warnings.warn(Warnings.W001.format(context=list(contexts[row])), stacklevel=2)
                results.append([])
            else:
                results.append([(words[i], math.exp(lp)) for i, lp in zip(row_ids, row_log_probs)])
        return results

    def log_prob(self, word: str | int, context_words: Context) -> float:
        """Natural-log probability of ``word`` given every known context word (gensim-style).

        Raises KeyError for an unknown ``word``. If no context word is known, warns and returns
        NaN.
        """
        word_id = self.word_id(word)
        value = self.log_prob_batch([word_id], [context_words])[0]
        if np.isnan(value):
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
        return float(value)

    def log_prob_batch(self, words: Sequence[str | int], contexts: Sequence[Context]) -> np.ndarray:
        """log P(words[i] | contexts[i]) for all i (gensim-style); NaN where the word or every
        context word is unknown."""
        if len(words) != len(contexts):
            raise ConfigError(Errors.E022.format(n=len(contexts), n_words=len(words)))
        word_ids = np.array([(self.word_ids([w]) or [-1])[0] for w in words], dtype=np.int32)
        head, matrix = self._gensim_contexts(contexts)
        return head.log_prob(matrix, word_ids)

    def probabilities(self, context_words: Context) -> np.ndarray | None:
        """P(w | every known context word) for every word, aligned with ``.words``; sums to 1.
        None (with a warning) if no context word is known."""
        head, matrix = self._gensim_contexts([context_words])
        log_probs = head.log_probabilities(matrix)[0]
        if np.isnan(log_probs[0]):
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
            return None
        return np.exp(log_probs)

    def _cbow_head(self, context_size: int | None = None) -> Any:
        """The CBOW-style head over the last ``context_size`` known words (None: ``window``),
        built once per model and size: a single query costs a few microseconds, building the
        head's thinc Model some tens."""
        heads = self.__dict__.get("_cbow_heads")
        head = heads.get(context_size) if heads is not None else None
        if head is None or head.hs_model is not self:  # none yet, or a copy's (copy.copy)
            if heads is None or head is not None or len(heads) >= MAX_CBOW_HEADS:
                heads = self._cbow_heads = {}
            config = {} if context_size is None else {"context_size": context_size}
            head = heads[context_size] = _cbow_class().from_arrays(config, {}, self)
        return head

    def _gensim_contexts(self, contexts: Sequence[Context]) -> tuple[Any, np.ndarray]:
        """The CBOW-style head that reads every known word of these contexts, and their
        context matrix."""
        id_lists = [self.word_ids(context) for context in contexts]
        size = max(1, max((len(ids) for ids in id_lists), default=1))
        return self._cbow_head(size), context_matrix(id_lists, size)

    def set_vectors(self, vectors: np.ndarray) -> None:
        """``HSVocab.set_vectors``; the CBOW-style heads built from now on read them (a head
        keeps the vectors it was built with)."""
        super().set_vectors(vectors)
        self.__dict__.pop("_cbow_heads", None)

    # -- serialization (the format: hs_format.py) ----------------------------------------

    def to_bytes(self) -> bytes:
        """Serialize to a msgpack byte string (no pickle)."""
        return hs_format.to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> HSModel:
        """Load from ``to_bytes`` output, checked as ``from_disk`` checks files."""
        return hs_format.from_bytes(cls, data)

    def to_disk(self, path: str | Path) -> None:
        """Write the model directory atomically (``hs_format.to_disk``): an existing spacy-hs
        model at ``path`` is replaced if it holds nothing but model files; any other existing
        non-empty directory or file is left alone and an error raised."""
        hs_format.to_disk(self, path)

    @classmethod
    def from_disk(cls, path: str | Path) -> HSModel:
        """Load a model directory written by ``to_disk``, everything checked before it is used
        (``hs_format.from_disk``); a bad file raises ModelFileError naming it."""
        return hs_format.from_disk(cls, path)


@functools.cache
def _cbow_class() -> Any:
    """The class registered as the CBOW-style head, looked up once: a catalogue lookup scans the
    installed entry points first, which costs a millisecond, ten single queries' worth."""
    return registry.heads.get(CBOW_ARCHITECTURE)


def _no_context_warning(context: Any) -> str:
    context = list(context)
    if not context:
        return Warnings.W002
    return Warnings.W001.format(context=context)


def _check_size(name: str, value: int) -> None:
    if not is_positive_int(value):
        raise ConfigError(Errors.E021.format(name=name, value=value))
