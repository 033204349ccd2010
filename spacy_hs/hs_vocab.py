"""``HSVocab``: the vocabulary and arrays of a hierarchical-softmax Word2Vec.

The words in gensim's order, their counts, the input vectors, the Huffman tree and the inner-node
weights (gensim's ``syn1``), checked once when built, with the lookups from words to ids. It
answers no next-word query: ``HSModel`` (``hs_model.py``) adds those, through the heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import validation
from .errors import ConfigError, Errors, InputError, UnknownWordError
from .tree import HuffmanTree

# What language-model corpora (Penn Treebank, WikiText) call the words outside the vocabulary.
UNKNOWN_WORD = "<unk>"


class HSVocab:
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

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def is_lowercase(self) -> bool:
        """Whether no word of the vocabulary has an uppercase letter."""
        if self._lowercase is None:
            self._lowercase = all(word == word.lower() for word in self.words)
        return self._lowercase

    def word_ids(self, words: Iterable[str | int]) -> list[int]:
        """Ids of the in-vocabulary words, unknown words skipped.

        ``words`` is a sequence of words (str) or word ids (int); an id outside the vocabulary
        raises WordIdError (an IndexError), a string instead of a sequence, or an entry of
        another type (a bool, a float, a spaCy Token), WrongTypeError (a TypeError).
        """
        return [i for i in self.ids_or_unknown(words) if i >= 0]

    def ids_or_unknown(self, words: Iterable[str | int]) -> list[int]:
        """``word_ids`` with -1 in the place of each unknown word instead of skipping it."""
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

    def word_id(self, word: str | int) -> int:
        """The id of one word (or id); UnknownWordError (a KeyError) if it is not known."""
        ids = self.word_ids([word])
        if not ids:
            raise UnknownWordError(Errors.E020.format(word=word, n=len(self.words)))
        return ids[0]

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
