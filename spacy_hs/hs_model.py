"""The exact hierarchical-softmax model: vectors, Huffman tree and inner-node weights.

``HSModel`` knows nothing of spaCy. It is built from a trained gensim ``Word2Vec`` (``hs=1``)
without rebuilding anything, and answers next-word queries with the probabilities the
hierarchical softmax actually defines::

    P(w | h) = prod over the inner nodes n on w's path of sigmoid((1 - 2 * code_n) * h . syn1[n])

``h`` is the hidden vector: the mean (``cbow_mean=1``) or sum (``cbow_mean=0``) of the
context words' input vectors, as in gensim's CBOW training. Code 0 means ``sigmoid(+dot)``, as
in gensim's ``train_cbow_pair``. Log-sigmoids are computed exactly: no clipping at |dot| >= 6
and no lookup table (gensim's ``score()`` has both). The distribution sums to 1 over the
vocabulary, and the top-k is found by a best-first search of the tree that visits O(k log V)
nodes rather than scoring all V words.
"""

from __future__ import annotations

import gc
import io
import math
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import srsly

from . import _tree_search, registry, validation
from .cache import CacheSettings
from .document import Document
from .errors import (
    ConfigError,
    Errors,
    InputError,
    MissingModelFileError,
    ModelFileError,
    OutputExistsError,
    UnknownWordError,
    Warnings,
    WrongTypeError,
    describe,
)
from .heads.base import context_matrix
from .heads.protocol import Predictor
from .tree import HuffmanTree
from .util import check_replaceable, is_positive_int, recover_dir, staging_dir

FORMAT = "spacy-hs.hs-model"
FORMAT_VERSION = 1
META_FILE = "meta.json"
WORDS_FILE = "words.json"
# Arrays stored one .npy file each, with their dtypes.
ARRAYS = {
    "counts": np.int64,
    "vectors": np.float32,
    "inner_node_weights": np.float32,
    "path_offsets": np.int64,
    "path_nodes": np.int32,
    "path_codes": np.uint8,
}
# A trained head is stored as its config (header["head"], with its registered "architecture")
# and its arrays, as head.<name>.npy; restored through spacy_hs.registry.heads.
HEAD_PREFIX = "head."
HEAD_DTYPES = ("<f4", "<f2", "<i4", "<i8", "|u1")
# Values each array of a head may hold if its class does not bound them (max_array_shapes):
# 2^24 (at most 128 MiB), beyond the V * d of a small model, room for a hashed table.
HEAD_ARRAY_MAX_VALUES = 1 << 24
# Every model can answer through gensim's own CBOW-style head (spacy_hs/heads/cbow.py).
CBOW_ARCHITECTURE = "spacy_hs.CBOWHead.v1"
# What language-model corpora (Penn Treebank, WikiText) call the words outside the vocabulary.
UNKNOWN_WORD = "<unk>"
# The gensim settings that define the hidden vector, kept with the model.
HIDDEN_SETTINGS = ("sg", "cbow_mean", "window", "vector_size")

Context = Sequence[str | int]


class HSModel:
    """Word vectors, Huffman tree and inner-node weights of a hierarchical-softmax Word2Vec.

    words: the vocabulary in gensim's order (``wv.index_to_key``).
    counts: corpus frequency of each word.
    vectors: input vectors (``wv.vectors``), shape (V, d).
    tree: the trained Huffman tree (gensim's ``code`` and ``point``).
    inner_node_weights: output weights of the V - 1 inner nodes (gensim's ``syn1``), (V - 1, d).
    settings: ``sg``, ``cbow_mean``, ``window``, ``vector_size``, plus anything else worth
        keeping with the model (training parameters, preprocessing options).
    meta: free-form metadata (loss history, corpus statistics, timings).
    """

    def __init__(
        self,
        words: Sequence[str],
        counts: np.ndarray,
        vectors: np.ndarray,
        tree: HuffmanTree,
        inner_node_weights: np.ndarray,
        settings: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.words = list(words)
        self.key_to_index = {word: i for i, word in enumerate(self.words)}
        self.counts = np.ascontiguousarray(counts, dtype=np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.tree = tree
        self.inner_node_weights = np.ascontiguousarray(inner_node_weights, dtype=np.float32)
        self.settings = {"sg": 0, "cbow_mean": 1, "window": 5, **(settings or {})}
        self.settings["vector_size"] = int(self.vectors.shape[1])
        self.meta = dict(meta or {})
        # The trained next-word head, if any (e.g. spacy_hs/heads/directional.py).
        self.head: Predictor | None = None
        self._lowercase: bool | None = None  # is_lowercase(), once computed
        self._check()

    def _check(self) -> None:
        problem = validation.settings_problem(self.settings)
        if problem is not None:
            key, value, expected = problem
            raise ConfigError(
                Errors.E064.format(key=key, value=validation.shown(value), expected=expected)
            )
        n_words = len(self.words)
        if len(self.key_to_index) != n_words:
            raise InputError(Errors.E005)
        if n_words < 2:
            raise InputError(Errors.E004.format(n=n_words))
        expected = {
            "counts": (n_words,),
            "vectors": (n_words, self.vector_size),
            "inner_node_weights": (n_words - 1, self.vector_size),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise InputError(
                    Errors.E006.format(name=name, shape=getattr(self, name).shape, expected=shape)
                )
        if self.tree.n_words != n_words:
            raise InputError(Errors.E007.format(tree=self.tree.n_words, n=n_words))

    def set_vectors(self, vectors: np.ndarray) -> None:
        """Replace the input vectors (what the CBOW-style head and spaCy's ``token.vector``
        read), checked as the constructor checks them: shape (V, d), finite, as float32."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        expected = (len(self.words), self.vector_size)
        if vectors.shape != expected:
            raise InputError(
                Errors.E006.format(name="vectors", shape=vectors.shape, expected=expected)
            )
        bad = validation.non_finite(vectors)
        if bad is not None:
            raise InputError(Errors.E073.format(count=bad[0], index=bad[1]))
        self.vectors = vectors

    # -- construction --------------------------------------------------------------------

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
        if normalizer is not None:
            from .corpus.normalize import NormalizerSettings

            if not isinstance(normalizer, NormalizerSettings):
                normalizer = NormalizerSettings.from_dict(dict(normalizer))
            settings = {**(settings or {}), "normalizer": normalizer.to_dict()}
        from gensim.models import Word2Vec

        if not isinstance(model, Word2Vec) or type(model).__name__ in ("FastText", "Doc2Vec"):
            raise WrongTypeError(Errors.E003.format(type=type(model).__name__))
        if not model.hs:
            raise InputError(Errors.E001.format(hs=model.hs, negative=model.negative))
        if not hasattr(model, "syn1") or len(model.wv) < 2 or not model.syn1.any():
            if len(model.wv) < 2:
                raise InputError(Errors.E004.format(n=len(model.wv)))
            if hasattr(model, "syn1") and getattr(model, "train_count", 0):
                # Trained, yet not one update: down-sampling or the window left no example.
                words = int(getattr(model, "corpus_total_words", 0) or 0)
                raise InputError(Errors.E067.format(words=words, sample=model.sample))
            raise InputError(Errors.E002)
        for name, array in (("vectors", model.wv.vectors), ("inner-node weights", model.syn1)):
            if validation.non_finite(array) is not None:
                raise InputError(Errors.E066.format(name=name))
        if model.negative:
            warnings.warn(Warnings.W020.format(negative=model.negative), stacklevel=2)
        wv = model.wv
        n_words = len(wv.index_to_key)
        # gensim keeps per-word attributes in ``wv.expandos`` (what get_vecattr reads one by
        # one); reading the arrays whole is ~5x faster on large vocabularies.
        tree = HuffmanTree.from_paths(wv.expandos["point"][:n_words], wv.expandos["code"][:n_words])
        counts = np.asarray(wv.expandos["count"][:n_words], dtype=np.int64)
        gensim_settings = {
            "sg": int(model.sg),
            "cbow_mean": int(model.cbow_mean),
            "window": int(model.window),
            "vector_size": int(model.vector_size),
        }
        word2vec = {
            "hs": int(model.hs),
            "negative": int(model.negative),
            "min_count": int(model.min_count),
            "sample": float(model.sample),
            "epochs": int(model.epochs),
        }
        return cls(
            wv.index_to_key,
            counts,
            # Copies: training the gensim model further must not change this one.
            np.array(wv.vectors, dtype=np.float32),
            tree,
            np.array(model.syn1[: n_words - 1], dtype=np.float32),
            settings={**gensim_settings, "word2vec": word2vec, **(settings or {})},
        )

    # -- vocabulary -------------------------------------------------------------------

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        head = (
            f"{self.head.name} head, context {self.head.context_size}"
            if self.head
            else "no trained head"
        )
        settings = self.settings
        kind = "skip-gram" if settings.get("sg") else "CBOW"
        lang = f", lang {settings['lang']!r}" if settings.get("lang") else ""
        return (
            f"<HSModel: {len(self):,} words, {self.vector_size} dimensions, {kind}{lang}, {head}>"
        )

    def is_lowercase(self) -> bool:
        """Whether no word of the vocabulary has an uppercase letter."""
        if self._lowercase is None:
            self._lowercase = all(word == word.lower() for word in self.words)
        return self._lowercase

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def word_ids(self, words: Iterable[str | int]) -> list[int]:
        """Ids of the in-vocabulary words, unknown words skipped.

        ``words`` is a sequence of words (str) or word ids (int); an id outside the vocabulary
        raises WordIdError (an IndexError), a string instead of a sequence, or an entry of
        another type (a bool, a float, a spaCy Token), WrongTypeError (a TypeError).
        """
        validation.check_context(words)
        n_words = len(self.words)
        get = self.key_to_index.get
        ids = []
        for word in words:
            if isinstance(word, str):
                index = get(word)
                if index is not None:
                    ids.append(index)
            elif validation.is_word_id(word):
                ids.append(validation.check_word_id(word, n_words))
            else:
                raise validation.bad_context_entry(word)
        return ids

    def _word_id(self, word: str | int) -> int:
        ids = self.word_ids([word])
        if not ids:
            raise UnknownWordError(Errors.E020.format(word=word, n=len(self.words)))
        return ids[0]

    # -- hidden vectors ---------------------------------------------------------------

    def hidden_batch(self, contexts: Sequence[Context]) -> tuple[np.ndarray, np.ndarray]:
        """CBOW-style hidden vectors for many contexts at once.

        Returns (hidden float32 (B, d), has_context bool (B,)). Out-of-vocabulary words are
        skipped; a context with no known word gets a zero row and ``has_context`` False.
        """
        return self.hidden_from_ids([self.word_ids(context) for context in contexts])

    def hidden_from_ids(self, id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """``hidden_batch`` for contexts already mapped to word ids."""
        lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
        offsets = np.zeros(len(id_lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=offsets[-1])
        # Summed in order in float32, as gensim does (np.add.reduceat reorders the additions),
        # and the same kernel as predict_output_word's, so batch and single results are equal.
        hidden = _tree_search.context_hidden(
            self.vectors, flat, offsets, bool(self.settings["cbow_mean"])
        )
        return hidden, lengths > 0

    def hidden_from_matrix(self, context_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``hidden_from_ids`` for contexts given as rows of an int matrix (B, K): word ids,
        oldest first; negative entries (padding) are skipped. Equal to ``hidden_from_ids`` of
        each row's non-negative ids, without a Python object per context."""
        context_ids = np.asarray(context_ids)
        if context_ids.ndim != 2:
            raise ConfigError(Errors.E008.format(shape=context_ids.shape))
        return _tree_search.context_hidden_matrix(
            self.vectors,
            validation.word_id_array(context_ids, len(self.words), "context_ids"),
            bool(self.settings["cbow_mean"]),
        )

    def log_prob_from_matrix(self, context_ids: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
        """log P(word_ids[b] | context b) for contexts given as in ``hidden_from_matrix``; NaN
        where the word id is negative or the context has no word. The same values as
        ``log_prob_hidden(hidden_from_matrix(context_ids)[0], word_ids)``, in one compiled pass
        that never stores the hidden vectors."""
        context_ids = np.asarray(context_ids)
        if context_ids.ndim != 2:
            raise ConfigError(Errors.E008.format(shape=context_ids.shape))
        return _tree_search.context_path_log_probs(
            self.vectors,
            validation.word_id_array(context_ids, len(self.words), "context_ids"),
            bool(self.settings["cbow_mean"]),
            validation.word_id_array(word_ids, len(self.words)),
            self.inner_node_weights,
            self.tree.path_offsets,
            self.tree.path_nodes,
            self.tree.path_codes,
        )

    def hidden(self, context_words: Context) -> np.ndarray | None:
        """The hidden vector of one context, or None if no word of it is known."""
        hidden, has_context = self.hidden_batch([context_words])
        return hidden[0] if has_context[0] else None

    # -- queries on hidden vectors ----------------------------------------------------

    # ``weights`` defaults to the gensim inner-node weights; a next-word head passes its own
    # (same tree, one row per inner node, any width matching its hidden vectors).

    def top_k_hidden(
        self, hidden: np.ndarray, k: int, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k (word ids (B, k), log-probabilities (B, k)) for hidden vectors (B, d)."""
        k = min(int(k), len(self.words))
        ids, log_probs, _ = _tree_search.top_k(
            np.ascontiguousarray(hidden, dtype=np.float32),
            self.inner_node_weights if weights is None else weights,
            self.tree.children,
            self.tree.root,
            k,
        )
        return ids, log_probs

    def log_prob_hidden(
        self, hidden: np.ndarray, word_ids: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """log P(word_ids[i] | hidden[i]); a negative id gives NaN."""
        return _tree_search.path_log_probs(
            np.ascontiguousarray(hidden, dtype=np.float32),
            validation.word_id_array(word_ids, len(self.words)),
            self.inner_node_weights if weights is None else weights,
            self.tree.path_offsets,
            self.tree.path_nodes,
            self.tree.path_codes,
        )

    def log_probabilities_hidden(
        self, hidden: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """log P(w | hidden[i]) for every word: (B, V). One matrix product and one top-down pass
        over the tree per row."""
        weights = self.inner_node_weights if weights is None else weights
        dots = np.ascontiguousarray(hidden, dtype=np.float32) @ weights.T
        return _tree_search.word_log_probs(
            np.ascontiguousarray(dots, dtype=np.float32),
            self.tree.children,
            self.tree.root,
            len(self.words),
        )

    # -- next-word prediction through a chosen head -----------------------------------

    def head_names(self) -> list[str]:
        """The heads this model answers through: "cbow" (gensim's, always) and the trained
        head's name, if it has one; plus "auto", the trained head if any, else "cbow"."""
        return ["auto", "cbow", *([self.head.name] if self.head is not None else [])]

    def predictor(self, head: str = "auto") -> Predictor:
        """The head that answers next-word queries.

        "cbow": gensim's CBOW-style mean/sum over the context, scored with ``syn1``.
        The trained head's name (``self.head.name``, e.g. "directional" or "ngram"): it.
        "auto": the trained head if the model has one, else "cbow".
        """
        if head == "auto":
            head = self.head.name if self.head is not None else "cbow"
        if head == "cbow":
            return registry.heads.get(CBOW_ARCHITECTURE).from_arrays({}, {}, self)
        if self.head is not None and head == self.head.name:
            return self.head
        if head in registered_head_names():
            raise ConfigError(Errors.E023.format(head=head, heads=", ".join(self.head_names())))
        raise ConfigError(Errors.E024.format(head=head, heads=", ".join(self.head_names())))

    def context_ids(self, contexts: Sequence[Context], size: int) -> np.ndarray:
        """An int32 context matrix (B, size) of contexts of words or ids (oldest first): each
        context's last ``size`` known ids, right-aligned, -1 before them (unknown words
        skipped)."""
        return context_matrix([self.word_ids(context) for context in contexts], size)

    def predict_next(
        self, context_words: Context, topn: int = 10, head: str = "auto"
    ) -> list[tuple[str, float]]:
        """The ``topn`` most probable next words after ``context_words`` (oldest first), exact.

        Unknown context words are skipped, then the last ``context_size`` known words are used.
        If the head needs a known word and there is none, warns and returns an empty list.
        """
        return self.predict_next_batch([context_words], topn, head=head, warn=True)[0]

    def predict_next_batch(
        self, contexts: Sequence[Context], topn: int = 10, head: str = "auto", warn: bool = False
    ) -> list[list[tuple[str, float]]]:
        """``predict_next`` for many contexts."""
        _check_topn(topn)
        predictor = self.predictor(head)
        ids, log_probs = predictor.top_k(self.context_ids(contexts, predictor.context_size), topn)
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
        predictor = self.predictor(head)
        log_probs = predictor.log_probabilities(
            self.context_ids([context_words], predictor.context_size)
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
        predictor = self.predictor(head)
        word_ids = np.array([(self.word_ids([w]) or [-1])[0] for w in words], dtype=np.int32)
        unknown_id = self.unknown_id(unknown)
        if unknown_id is not None:
            word_ids[word_ids < 0] = unknown_id
        return predictor.log_prob(self.context_ids(contexts, predictor.context_size), word_ids)

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
        """
        sentences = [list(sentence) for sentence in sentences]
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        token_ids = np.array(
            [i for sentence in sentences for i in self._ids_or_unknown(sentence)], dtype=np.int32
        ).reshape(-1)
        return self.log_prob_ids(token_ids, lengths, head=head, unknown=unknown, cache=cache)

    def log_prob_ids(
        self,
        token_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        head: str = "auto",
        unknown: str | None = "auto",
        cache: Any = "auto",
        context_size: int | None = None,
    ) -> np.ndarray:
        """``log_prob_stream`` for a document already mapped to ids: ``token_ids`` int32 (N,),
        -1 for unknown tokens, and the lengths of its sentences (summing to N).

        context_size: read at most this many known words before each token (the pipeline
            component's ``context_size``); None: the head's own ``context_size``.
        """
        return self.document(
            token_ids, sentence_lengths, head, unknown, cache, context_size
        ).log_probs()

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
        all with the same history (head, cache, unknown word: see ``log_prob_stream``;
        ``context_size``: see ``log_prob_ids``)."""
        token_ids = validation.word_id_array(token_ids, len(self.words), "token_ids")
        return Document(
            token_ids,
            sentence_lengths,
            self.predictor(head),
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

    def _ids_or_unknown(self, words: Sequence[str | int]) -> list[int]:
        validation.check_context(words)
        get, n_words = self.key_to_index.get, len(self.words)
        ids = []
        for word in words:
            if isinstance(word, str):
                ids.append(get(word, -1))
            elif validation.is_word_id(word):
                ids.append(validation.check_word_id(word, n_words))
            else:
                raise validation.bad_context_entry(word)
        return ids

    def unknown_id(self, unknown: str | None = "auto") -> int | None:
        """The id of the word unknown words are scored as: ``unknown`` itself, or for "auto"
        ``<unk>`` if the vocabulary has it; None for None or "auto" without ``<unk>``."""
        if unknown is None:
            return None
        if unknown == "auto":
            return self.key_to_index.get(UNKNOWN_WORD)
        if unknown not in self.key_to_index:
            raise UnknownWordError(Errors.E025.format(word=unknown))
        return self.key_to_index[unknown]

    # -- gensim-style API -------------------------------------------------------------

    def predict_output_word(
        self, context_words: Context, topn: int = 10
    ) -> list[tuple[str, float]]:
        """The ``topn`` most probable words given the context, with their probabilities.

        The contract of gensim's ``Word2Vec.predict_output_word``, but through the hierarchical
        softmax, and exact: the same words and order as scoring the whole vocabulary.
        Out-of-vocabulary context words are skipped; if none is known, a warning is issued and
        an empty list returned.
        """
        _check_topn(topn)
        ids = self.word_ids(context_words)
        if not ids:
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
            return []
        # One context: the kernel builds the hidden vector itself (as hidden_from_ids does), so
        # a query costs no intermediate arrays; at these latencies that overhead dominates.
        word_ids, log_probs, _ = _tree_search.top_k_context(
            self.vectors,
            ids,
            bool(self.settings["cbow_mean"]),
            self.inner_node_weights,
            self.tree.children,
            self.tree.root,
            min(int(topn), len(self.words)),
        )
        words = self.words
        return [(words[i], math.exp(lp)) for i, lp in zip(word_ids, log_probs)]

    def predict_output_word_batch(
        self, contexts: Sequence[Context], topn: int = 10, *, warn: bool = False
    ) -> list[list[tuple[str, float]]]:
        """``predict_output_word`` for many contexts; all-unknown contexts give empty lists
        (with a warning each if ``warn``)."""
        _check_topn(topn)
        hidden, has_context = self.hidden_batch(contexts)
        return self._top_k_lists(hidden, has_context, topn, contexts if warn else None)

    def _top_k_lists(
        self,
        hidden: np.ndarray,
        has_context: np.ndarray,
        topn: int,
        contexts: Sequence[Context] | None = None,
        weights: np.ndarray | None = None,
    ) -> list[list[tuple[str, float]]]:
        results: list[list[tuple[str, float]]] = [[] for _ in range(len(hidden))]
        rows = np.flatnonzero(has_context)
        if len(rows):
            ids, log_probs = self.top_k_hidden(hidden[rows], topn, weights)
            words = self.words
            for row, row_ids, row_log_probs in zip(rows.tolist(), ids.tolist(), log_probs.tolist()):
                results[row] = [(words[i], math.exp(lp)) for i, lp in zip(row_ids, row_log_probs)]
        if contexts is not None:
            for row in np.flatnonzero(~has_context).tolist():
                warnings.warn(Warnings.W001.format(context=list(contexts[row])), stacklevel=3)
        return results

    def log_prob(self, word: str | int, context_words: Context) -> float:
        """Natural-log probability of ``word`` given the context.

        Raises KeyError for an unknown ``word``. If no context word is known, warns and returns
        NaN.
        """
        word_id = self._word_id(word)
        hidden, has_context = self.hidden_batch([context_words])
        if not has_context[0]:
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
            return float("nan")
        return float(self.log_prob_hidden(hidden, np.array([word_id]))[0])

    def log_prob_batch(self, words: Sequence[str | int], contexts: Sequence[Context]) -> np.ndarray:
        """log P(words[i] | contexts[i]) for all i; NaN where the word or every context word is
        unknown."""
        if len(words) != len(contexts):
            raise ConfigError(Errors.E022.format(n=len(contexts), n_words=len(words)))
        word_ids = np.array([(self.word_ids([w]) or [-1])[0] for w in words], dtype=np.int32)
        hidden, has_context = self.hidden_batch(contexts)
        word_ids[~has_context] = -1
        return self.log_prob_hidden(hidden, word_ids)

    def probabilities(self, context_words: Context) -> np.ndarray | None:
        """P(w | context) for every word, aligned with ``.words``; sums to 1. None (with a
        warning) if no context word is known."""
        hidden, has_context = self.hidden_batch([context_words])
        if not has_context[0]:
            warnings.warn(Warnings.W001.format(context=list(context_words)), stacklevel=2)
            return None
        return np.exp(self.log_probabilities_hidden(hidden)[0])

    # -- serialization ----------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "counts": self.counts,
            "vectors": self.vectors,
            "inner_node_weights": self.inner_node_weights,
            "path_offsets": self.tree.path_offsets,
            "path_nodes": self.tree.path_nodes,
            "path_codes": self.tree.path_codes,
        }
        if self.head is not None:  # a trained head's arrays, by their names, prefixed
            arrays.update({HEAD_PREFIX + k: v for k, v in self.head.to_arrays().items()})
        return arrays

    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "settings": self.settings,
            "meta": self.meta,
            **({"head": self.head.config} if self.head is not None else {}),
            "arrays": {
                name: {
                    "shape": list(array.shape),
                    "dtype": array.dtype.str,
                    "crc32": zlib.crc32(np.ascontiguousarray(array).data),
                }
                for name, array in self._arrays().items()
            },
        }

    def to_bytes(self) -> bytes:
        """Serialize to a msgpack byte string (no pickle)."""
        return srsly.msgpack_dumps(
            {
                "header": self._header(),
                "words": self.words,
                "arrays": {name: _npy_bytes(a) for name, a in self._arrays().items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HSModel:
        """Load from ``to_bytes`` output, checked as ``from_disk`` checks files."""
        gc_enabled = gc.isenabled()
        try:
            msg = srsly.msgpack_loads(data)
            header, words, blobs = msg["header"], msg["words"], msg["arrays"]
            if not isinstance(blobs, dict):
                raise TypeError(f"arrays is a {type(blobs).__name__}, not a map")
        except Exception as err:  # msgpack raises several unrelated types on bad input
            raise ModelFileError(Errors.E015.format(reason=describe(err))) from None
        finally:
            # srsly.msgpack_loads turns the garbage collector off while it decodes and does not
            # turn it back on when the data is bad.
            if gc_enabled and not gc.isenabled():
                gc.enable()
        specs = _check_header(header, "<bytes>")
        arrays = {}
        for name, (shape, dtype) in specs.items():
            blob = blobs.get(name, b"")
            if not isinstance(blob, bytes):
                reason = f"array {name} is a {type(blob).__name__}, not bytes"
                raise ModelFileError(Errors.E015.format(reason=reason))
            arrays[name] = validation.read_npy(blob, shape, dtype, f"<bytes>:{name}")
        return cls._from_parts(header, words, arrays, "<bytes>")

    def to_disk(self, path: str | Path) -> None:
        """Write the model directory atomically: into a temporary sibling, then renamed.

        An existing spacy-hs model at ``path`` is replaced, if it holds nothing but model files
        (see ``check_output_dir``); any other existing non-empty directory or file is left alone
        and an error raised.
        """
        path = Path(path)
        owned = check_output_dir(path)
        with staging_dir(path, owned) as tmp:
            for name, array in self._arrays().items():
                np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            srsly.write_json(tmp / WORDS_FILE, self.words)
            srsly.write_json(tmp / META_FILE, self._header())

    @classmethod
    def from_disk(cls, path: str | Path) -> HSModel:
        """Load a model directory written by ``to_disk``.

        Everything is checked before it is used (``spacy_hs.validation``): only regular files
        are read, each no larger than meta.json allows; every setting and array spec in
        meta.json; each array's header before its data; no NaN or infinity. A bad file raises
        ModelFileError naming it (and the key of meta.json). If a replacement of the directory
        was interrupted (a killed ``to_disk`` or ``spacy-hs train``), the previous model is put
        back first, with a warning that says so.
        """
        path = Path(path)
        recover_dir(path)
        if not path.exists():
            raise MissingModelFileError(Errors.E010.format(path=path))
        meta_path = path / META_FILE
        if path.is_file() or not (meta_path.exists() or meta_path.is_symlink()):
            raise ModelFileError(Errors.E014.format(path=path, hint=_wrong_type_hint(path)))
        header = _read_json(meta_path, validation.META_MAX_BYTES, "meta.json may have")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise ModelFileError(Errors.E014.format(path=path, hint=_wrong_type_hint(path, found)))
        specs = _check_header(header, meta_path)
        n_words = specs["counts"][0][0]
        words = _read_json(
            path / WORDS_FILE,
            validation.words_limit(n_words),
            f"a vocabulary of {n_words:,} words (meta.json) may take",
        )
        arrays = {}
        for name, (shape, dtype) in specs.items():
            file = path / f"{name}.npy"
            arrays[name] = validation.read_npy(file, shape, dtype, file)
        return cls._from_parts(header, words, arrays, path)

    @classmethod
    def _from_parts(
        cls, header: dict, words: Any, arrays: dict[str, np.ndarray], where: str | Path
    ) -> HSModel:
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ModelFileError(
                Errors.E013.format(path=where, reason="words is not a list of strings")
            )
        for name, dtype in {**ARRAYS, **_head_arrays(header)}.items():
            spec = header["arrays"].get(name)
            spec = spec if isinstance(spec, dict) else {}
            array = arrays[name]
            if list(array.shape) != spec.get("shape") or array.dtype != np.dtype(dtype):
                raise ModelFileError(
                    Errors.E013.format(
                        path=where,
                        reason=f"{name} has shape {list(array.shape)} and dtype {array.dtype}, "
                        f"meta.json says {spec.get('shape')} and {np.dtype(dtype)}",
                    )
                )
            checksum = spec.get("crc32")
            file = f"<bytes>:{name}" if where == "<bytes>" else Path(where) / f"{name}.npy"
            if checksum is not None and zlib.crc32(np.ascontiguousarray(array).data) != checksum:
                raise ModelFileError(Errors.E050.format(path=file))
            bad = validation.non_finite(array)
            if bad is not None:
                raise ModelFileError(Errors.E065.format(path=file, count=bad[0], index=bad[1]))
        if (arrays["counts"] < 0).any():
            raise ModelFileError(
                Errors.E013.format(path=where, reason="counts.npy holds negatives")
            )
        try:
            tree = HuffmanTree(arrays["path_offsets"], arrays["path_nodes"], arrays["path_codes"])
            model = cls(
                words,
                arrays["counts"],
                arrays["vectors"],
                tree,
                arrays["inner_node_weights"],
                settings=header.get("settings"),
                meta=header.get("meta"),
            )
        except (ValueError, TypeError) as err:  # TypeError: settings or meta of the wrong type
            raise ModelFileError(Errors.E013.format(path=where, reason=err)) from None
        if header.get("head") is not None:
            head_arrays = {name[len(HEAD_PREFIX) :]: arrays[name] for name in _head_arrays(header)}
            model.head = _restore_head(header["head"], head_arrays, model, where)
            size = model.head.context_size
            if not 1 <= size <= validation.MAX_CONTEXT_SIZE:  # whatever its config calls it
                expected = f"an integer from 1 to {validation.MAX_CONTEXT_SIZE}"
                raise ModelFileError(
                    Errors.E063.format(
                        path=_meta_file(where),
                        key="head context size",
                        value=size,
                        expected=expected,
                    )
                )
        return model


def _restore_head(
    config: Any, arrays: dict[str, np.ndarray], model: HSModel, where: str | Path
) -> Predictor:
    """The head a header describes, built by the class registered under its architecture."""
    head_class = _head_class(config, where)
    try:
        return head_class.from_arrays(config, arrays, model)
    except (ValueError, TypeError) as err:
        kind = config.get("name", "next-word") if isinstance(config, dict) else "next-word"
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=err)) from None


def _head_class(config: Any, where: str | Path) -> Any:
    """The class registered under the architecture a head config names; ModelFileError E400."""
    architecture = config.get("architecture") if isinstance(config, dict) else None
    try:
        return registry.heads.get(str(architecture))
    except Exception:  # catalogue.RegistryError, or a broken entry point
        kind = config.get("name", "next-word") if isinstance(config, dict) else "next-word"
        reason = Errors.E405.format(found=architecture, expected=", ".join(_registered_heads()))
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason)) from None


def _check_head_specs(
    header: dict, specs: dict[str, validation.ArraySpec], where: str | Path
) -> None:
    """Compare the head arrays meta.json declares with what the head's config allows for
    this model's V words and d dimensions, before any array is read, so that a small model
    directory cannot make loading allocate more (e.g. a bias of 2 * 10^9 floats backed by a
    sparse file). A head class bounds its arrays with ``max_array_shapes(config, V, d)`` (the
    largest shape of each array); for one that does not, each array may hold at most
    ``HEAD_ARRAY_MAX_VALUES``, or what K * d * d position weights or (V + 1) rows of d + 1
    could."""
    config = header.get("head")
    if config is None:
        return
    head_class = _head_class(config, where)
    n_words, vector_size = specs["counts"][0][0], specs["vectors"][0][1]
    declared = {
        name[len(HEAD_PREFIX) :]: shape
        for name, (shape, _) in specs.items()
        if name.startswith(HEAD_PREFIX)
    }
    kind = config.get("name", "next-word")
    bounds_of = getattr(head_class, "max_array_shapes", None)
    if bounds_of is None:
        limit = max(
            HEAD_ARRAY_MAX_VALUES,
            (n_words + 1) * (vector_size + 1),
            validation.MAX_CONTEXT_SIZE * vector_size**2,
        )
        for name, shape in declared.items():
            if validation.n_elements(shape) > limit:
                reason = (
                    f"meta.json declares arrays.{HEAD_PREFIX}{name}.shape = {list(shape)}, more "
                    f"than the {limit:,} values a head of a model of V = {n_words} words and "
                    f"d = {vector_size} dimensions may have"
                )
                raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason))
        return
    try:
        bounds = bounds_of(config, n_words, vector_size)
    except (ValueError, TypeError) as err:
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=err)) from None
    for name, shape in declared.items():
        bound = bounds.get(name)
        if bound is not None and len(shape) == len(bound):
            if all(n <= most for n, most in zip(shape, bound)):
                continue
        fits = (
            f"it may be at most {list(bound)} for this head and model (V = {n_words} words, "
            f"d = {vector_size} dimensions)"
            if bound is not None
            else f"the head has no such array, only {', '.join(bounds)}"
        )
        reason = f"meta.json declares arrays.{HEAD_PREFIX}{name}.shape = {list(shape)}; {fits}"
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason))


def _registered_heads() -> list[str]:
    return sorted(registry.loadable(registry.heads))


def registered_head_names() -> list[str]:
    """The names (``cls.name``) of the heads registered in ``spacy_hs.registry.heads``: what a
    model trained with one of them can answer through (the generic ``spacy_hs.TreeHead.v1``
    has none of its own: its config names it)."""
    names = {getattr(registry.heads.get(a), "name", a) for a in _registered_heads()}
    return sorted(name for name in names if name)


def _head_arrays(header: Any) -> dict[str, Any]:
    """The head arrays (name -> dtype) a header announces; none if it has no head."""
    if not isinstance(header, dict) or header.get("head") is None:
        return {}
    specs = header.get("arrays") if isinstance(header.get("arrays"), dict) else {}
    found = {}
    for name, spec in specs.items():
        if isinstance(name, str) and name.startswith(HEAD_PREFIX):
            dtype = spec.get("dtype") if isinstance(spec, dict) else None
            found[name] = np.dtype(dtype) if dtype in HEAD_DTYPES else np.float32
    return found


def _no_context_warning(context: Any) -> str:
    context = list(context)
    if not context:
        return Warnings.W002
    return Warnings.W001.format(context=context)


def _check_topn(topn: int) -> None:
    if not is_positive_int(topn):
        raise ConfigError(Errors.E021.format(topn=topn))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _read_json(path: Path, limit: int, why: str) -> Any:
    """A JSON model file: a regular file of at most ``limit`` bytes (``why`` says whence)."""
    if not path.exists() and not path.is_symlink():
        raise MissingModelFileError(Errors.E010.format(path=path))
    data = validation.read_regular_file(path, limit, why)
    try:
        return srsly.json_loads(data.decode("utf8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(Errors.E011.format(path=path, reason=describe(err))) from None


def _meta_file(where: str | Path) -> str | Path:
    """Where a model's header came from, for messages: its meta.json, or "<bytes>"."""
    if str(where) == "<bytes>" or Path(where).name == META_FILE:
        return where
    return Path(where) / META_FILE


def _check_header(header: Any, where: str | Path) -> dict[str, validation.ArraySpec]:
    """Check a header (meta.json) before any array is read; returns the (shape, dtype) of
    each array it announces. ModelFileError names ``where`` and the bad key."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(Errors.E015.format(reason="no spacy-hs header"))
    version = header.get("format_version")
    if not validation.is_word_id(version):  # "1" is not 1 (nor is true)
        raise ModelFileError(
            Errors.E062.format(
                path=where, value=version, type=type(version).__name__, expected=FORMAT_VERSION
            )
        )
    if version != FORMAT_VERSION:
        raise ModelFileError(
            Errors.E012.format(
                path=where, found=f"{FORMAT} v{version}", expected=f"{FORMAT} v{FORMAT_VERSION}"
            )
        )
    if not isinstance(header.get("arrays"), dict):
        raise ModelFileError(Errors.E013.format(path=where, reason="meta.json lists no arrays"))
    meta = header.get("meta")
    problem = (
        validation.settings_problem(header.get("settings", {}))
        or validation.head_config_problem(header.get("head"))
        or (None if meta is None or isinstance(meta, dict) else ("meta", meta, "a JSON object"))
    )
    specs: dict[str, validation.ArraySpec] = {}
    if problem is None:
        specs, problem = validation.array_specs(header, {**ARRAYS, **_head_arrays(header)})
    if problem is not None:
        key, value, expected = problem
        raise ModelFileError(
            Errors.E063.format(
                path=where, key=key, value=validation.shown(value), expected=expected
            )
        )
    _check_head_specs(header, specs, where)
    return specs


def _wrong_type_hint(path: Path, found_format: str | None = None) -> str:
    if path.is_file():
        return (
            "It is a file; if it is a gensim model, convert it in Python with "
            "HSModel.from_gensim(Word2Vec.load(path)).to_disk(out_dir), or train with "
            "`spacy-hs train`."
        )
    if (path / "config.cfg").exists():
        return (
            "It looks like a spaCy pipeline: load it with spacy.load(), or point to its "
            "hs_predictor/ subdirectory."
        )
    if found_format:
        return f"Its meta.json describes {found_format!r}."
    return "Point to a directory written by `spacy-hs train` or HSModel.to_disk."


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The header (meta.json) of the model directory at ``path``, or None if it is not one;
    read as ``from_disk`` reads it (a regular file, size-capped), but not checked."""
    return _existing_header(Path(path))


def _existing_header(path: Path) -> dict[str, Any] | None:
    """The header of the model directory at ``path``, or None if it is not one."""
    try:
        data = validation.read_regular_file(
            path / META_FILE, validation.META_MAX_BYTES, "meta.json may have"
        )
        header = srsly.json_loads(data.decode("utf8"))
    except (OSError, ValueError, ModelFileError):
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def model_files(path: str | Path) -> set[str]:
    """The files of the model directory at ``path`` that its format defines (meta.json,
    words.json and the arrays its meta.json lists): what spacy-hs wrote there."""
    header = _existing_header(Path(path))
    if header is None:
        return set()
    arrays = header.get("arrays") if isinstance(header.get("arrays"), dict) else {}
    return {META_FILE, WORDS_FILE, *(f"{name}.npy" for name in arrays if isinstance(name, str))}


def check_output_dir(path: str | Path) -> set[str]:
    """Check that a model may be written to ``path`` before anything is computed for it: it
    must not exist, be an empty directory, or be a model directory that holds nothing but its
    model files (E016, E182). Returns those files, for ``staging_dir``."""
    path = Path(path)
    recover_dir(path)  # a replacement killed between its renames: the old model comes back
    if not path.exists() and not path.is_symlink():
        return set()
    if path.is_dir() and not any(path.iterdir()):
        return set()
    owned = model_files(path)
    if not owned:
        raise OutputExistsError(Errors.E016.format(path=path))
    check_replaceable(path, owned)
    return owned
