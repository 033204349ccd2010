"""The vocabulary and arrays (``hs_vocab.py``): the checks when built, and the lookups from
words (or ids) to ids that every query goes through."""

from __future__ import annotations

import numpy as np
import pytest

from spacy_hs import HSModel
from spacy_hs.errors import InputError, UnknownWordError, WordIdError, WrongTypeError
from spacy_hs.hs_vocab import UNKNOWN_WORD, HSVocab
from spacy_hs.tree import HuffmanTree


def chain_tree(n_words: int) -> HuffmanTree:
    """A chain-shaped tree: word w < V - 1 leaves the chain at inner node w."""
    points = [list(range(min(w, n_words - 2) + 1)) for w in range(n_words)]
    codes = [[1] * w + [0] if w < n_words - 1 else [1] * (n_words - 1) for w in range(n_words)]
    return HuffmanTree.from_paths(points, codes)


def small(words: list[str], dims: int = 3) -> HSVocab:
    """A vocabulary of ``words`` on a chain-shaped tree, with made-up counts and arrays."""
    counts = np.arange(len(words), 0, -1, dtype=np.int64) * 10
    tree = chain_tree(len(words))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(words), dims)).astype(np.float32)
    weights = rng.normal(size=(len(words) - 1, dims)).astype(np.float32)
    return HSVocab(words, counts, vectors, tree, weights)


def test_an_hs_model_is_a_vocabulary(hs_model: HSModel) -> None:
    assert isinstance(hs_model, HSVocab) and len(hs_model) == len(hs_model.words)
    assert hs_model.settings["vector_size"] == hs_model.vector_size == 32


def test_word_ids_skip_unknown_words_and_ids_or_unknown_keep_their_place() -> None:
    vocab = small(["the", "cat", "sat", UNKNOWN_WORD])
    assert vocab.word_ids(["cat", "zzz", 0, np.int32(2)]) == [1, 0, 2]
    assert vocab.ids_or_unknown(["cat", "zzz", 0]) == [1, -1, 0]
    assert vocab.word_id("sat") == 2 and vocab.word_id(3) == 3
    with pytest.raises(UnknownWordError, match=r"\[E020\] .*'zzz'"):
        vocab.word_id("zzz")
    with pytest.raises(WordIdError, match=r"\[E068\]"):
        vocab.word_ids([4])
    with pytest.raises(WrongTypeError, match=r"\[E070\]"):
        vocab.ids_or_unknown("the cat")
    with pytest.raises(WrongTypeError, match=r"\[E071\]"):
        vocab.word_ids([True])


def test_unknown_id() -> None:
    with_unk = small(["the", "cat", UNKNOWN_WORD])
    assert with_unk.unknown_id() == 2 and with_unk.unknown_id("cat") == 1
    assert with_unk.unknown_id(None) is None
    without = small(["the", "cat"])
    assert without.unknown_id() is None
    with pytest.raises(UnknownWordError, match=r"\[E025\]"):
        without.unknown_id("zzz")


def test_is_lowercase() -> None:
    assert small(["the", "cat", "<unk>"]).is_lowercase()
    assert not small(["the", "Cat"]).is_lowercase()


def test_the_arrays_are_checked_when_built() -> None:
    vocab = small(["a", "b", "c"])
    parts = (vocab.words, vocab.counts, vocab.vectors, vocab.tree, vocab.inner_node_weights)
    with pytest.raises(InputError, match=r"\[E005\]"):
        HSVocab(["a", "b", "a"], *parts[1:])
    with pytest.raises(InputError, match=r"\[E006\] counts has shape \(2,\)"):
        HSVocab(parts[0], parts[1][:2], *parts[2:])
    with pytest.raises(InputError, match=r"\[E006\] inner_node_weights has shape \(3, 3\)"):
        HSVocab(*parts[:4], np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(InputError, match=r"\[E007\] The tree has 2 words"):
        HSVocab(*parts[:3], chain_tree(2), parts[4])
    with pytest.raises(InputError, match=r"\[E004\]"):
        HSVocab(["a"], np.ones(1), np.zeros((1, 3)), parts[3], np.zeros((0, 3)))
