"""HuffmanTree: gensim's trained paths taken as they are, the child table derived from them, and
bad paths refused."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import Word2Vec

from spacy_hs import HuffmanTree

# A hand-made full binary tree of 4 words. Inner nodes 0 (root), 1, 2:
#        0
#     0/   \1
#     1     2
#   0/ \1 0/ \1
#   w0 w1 w2  w3
POINTS = [[0, 1], [0, 1], [0, 2], [0, 2]]
CODES = [[0, 0], [0, 1], [1, 0], [1, 1]]


def gensim_paths(model: Word2Vec) -> tuple[list[np.ndarray], list[np.ndarray]]:
    wv = model.wv
    return list(wv.expandos["point"]), list(wv.expandos["code"])


def test_from_gensim_paths_keeps_them_exactly(cbow_gensim: Word2Vec) -> None:
    points, codes = gensim_paths(cbow_gensim)
    tree = HuffmanTree.from_paths(points, codes)
    assert tree.n_words == len(cbow_gensim.wv)
    assert tree.n_inner == tree.n_words - 1
    for word_id in (0, 1, len(points) // 2, len(points) - 1):
        nodes, bits = tree.path(word_id)
        np.testing.assert_array_equal(nodes, points[word_id])
        np.testing.assert_array_equal(bits, codes[word_id])
    np.testing.assert_array_equal(tree.depths(), [len(p) for p in points])
    # Huffman: the most frequent word is never deeper than the rarest.
    assert tree.depths()[0] <= tree.depths()[-1]


def test_child_table_is_one_full_binary_tree(cbow_gensim: Word2Vec) -> None:
    points, codes = gensim_paths(cbow_gensim)
    tree = HuffmanTree.from_paths(points, codes)
    children = tree.children
    assert children.shape == (tree.n_inner, 2)
    # Every word is a leaf exactly once, every inner node but the root a child exactly once.
    leaves = np.sort(-(children[children < 0] + 1))
    np.testing.assert_array_equal(leaves, np.arange(tree.n_words))
    inner = np.sort(children[children >= 0])
    expected_inner = np.setdiff1d(np.arange(tree.n_inner), [tree.root])
    np.testing.assert_array_equal(inner, expected_inner)
    assert tree.root == points[0][0]
    # Following the child table along each word's codes from the root ends at that word.
    for word_id in range(0, tree.n_words, 97):
        node = tree.root
        for step, bit in enumerate(codes[word_id]):
            assert node == points[word_id][step]
            node = children[node, bit]
        assert node == -(word_id + 1)


def test_hand_made_tree() -> None:
    tree = HuffmanTree.from_paths(POINTS, CODES)
    assert tree.root == 0
    np.testing.assert_array_equal(tree.children, [[1, 2], [-1, -2], [-3, -4]])
    np.testing.assert_array_equal(tree.path_offsets, [0, 2, 4, 6, 8])
    assert tree.children.dtype == np.int32
    assert tree.path_nodes.dtype == np.int32
    assert tree.path_codes.dtype == np.uint8


def test_two_word_tree() -> None:
    tree = HuffmanTree.from_paths([[0], [0]], [[1], [0]])
    np.testing.assert_array_equal(tree.children, [[-2, -1]])


def replace(lists: list[list[int]], word: int, new: list[int]) -> list[list[int]]:
    changed = [list(x) for x in lists]
    changed[word] = new
    return changed


@pytest.mark.parametrize(
    "points,codes,message",
    [
        # Not a full tree: word 3 takes word 2's branch, so slot (2, 1) is never filled.
        (POINTS, replace(CODES, 3, [1, 0]), "full binary tree"),
        # Duplicated slot: word 1 claims word 0's leaf slot (1, 0).
        (POINTS, replace(CODES, 1, [0, 0]), "full binary tree"),
        # A word stops at an inner node: slot (0, 1) holds node 2 and word 3.
        (replace(POINTS, 3, [0]), replace(CODES, 3, [1]), "full binary tree"),
        # Out of range node id, negative node id, code 2, code 256 (must not wrap to 0).
        (replace(POINTS, 0, [0, 3]), CODES, "path node ids"),
        (replace(POINTS, 0, [0, -1]), CODES, "path node ids"),
        (POINTS, replace(CODES, 0, [0, 2]), "codes in"),
        (POINTS, replace(CODES, 0, [0, 256]), "path_codes has values outside"),
        (POINTS, replace(CODES, 0, [0, -1]), "path_codes has values outside"),
        # Paths that do not share a root.
        (replace(POINTS, 0, [1, 1]), CODES, "one root"),
        # An empty path; points and codes of different lengths.
        (replace(POINTS, 0, []), replace(CODES, 0, []), "empty"),
        (POINTS, replace(CODES, 0, [0]), "differ in length"),
        (POINTS, CODES[:3], "code lists"),
        # Too few words; non-integer ids.
        ([[0]], [[0]], "at least 2 words"),
        (replace(POINTS, 0, [0.0, 1.5]), CODES, "integers"),
    ],
)
def test_bad_paths_raise(points: list, codes: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HuffmanTree.from_paths(points, codes)


def test_bad_flat_arrays_raise() -> None:
    good = HuffmanTree.from_paths(POINTS, CODES)
    with pytest.raises(ValueError, match="offsets"):
        HuffmanTree(good.path_offsets[:-1], good.path_nodes, good.path_codes)
    with pytest.raises(ValueError, match="one-dimensional"):
        HuffmanTree(good.path_offsets, good.path_nodes.reshape(2, -1), good.path_codes)
    with pytest.raises(ValueError, match="offsets"):
        offsets = good.path_offsets.copy()
        offsets[0] = 1
        HuffmanTree(offsets, good.path_nodes, good.path_codes)
