"""The Huffman tree of a hierarchical softmax, taken as it was trained.

Naming follows gensim and the original word2vec, where each word has:

* ``point``: the ids of the inner nodes on its path, root first (gensim's ``wv.expandos['point']``);
* ``code``: the branch taken at each of those nodes, 0 or 1 (gensim's ``wv.expandos['code']``).

Inner node ``n`` has output weights ``inner_node_weights[n]`` (gensim's ``syn1``). With
``h`` the hidden vector, taking branch ``c`` at node ``n`` has probability
``sigmoid((1 - 2c) * h . syn1[n])``: code 0 means ``sigmoid(+dot)``, as in gensim's training.

The tree is never rebuilt from counts: a rebuilt tree need not match the one that was trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import Errors, InputError

LEAF = -1  # children entries < 0 are leaves: word id = -(entry + 1)


class HuffmanTree:
    """Paths of all words through the tree, stored flat, plus the derived child table.

    path_offsets: int64 (V + 1,); word ``w``'s path is ``[path_offsets[w], path_offsets[w + 1])``.
    path_nodes: int32, inner-node ids along each path (gensim ``point``).
    path_codes: uint8, branch taken at each node (gensim ``code``).
    children: int32 (V - 1, 2); ``children[n, c]`` is the inner node reached from ``n`` by
        branch ``c``, or ``-(w + 1)`` for leaf word ``w``.
    root: id of the root inner node.
    """

    def __init__(self, path_offsets: np.ndarray, path_nodes: np.ndarray, path_codes: np.ndarray):
        # Checked before narrowing, so that e.g. a code of 256 cannot wrap round to 0.
        self.path_offsets = _integers(path_offsets, "path_offsets", np.int64)
        self.path_nodes = _integers(path_nodes, "path_nodes", np.int32)
        self.path_codes = _integers(path_codes, "path_codes", np.uint8)
        self.children, self.root = _link_children(
            self.path_offsets, self.path_nodes, self.path_codes
        )

    @classmethod
    def from_paths(
        cls, points: Sequence[Sequence[int]], codes: Sequence[Sequence[int]]
    ) -> HuffmanTree:
        """Build from per-word ``point`` and ``code`` lists, as gensim stores them."""
        if len(points) != len(codes):
            raise InputError(Errors.E030.format(points=len(points), codes=len(codes)))
        lengths = np.fromiter((len(p) for p in points), dtype=np.int64, count=len(points))
        offsets = np.zeros(len(points) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Concatenated as given (gensim: uint32 points, uint8 codes); __init__ checks the values.
        return cls(offsets, _concatenate(points), _concatenate(codes))

    @property
    def n_words(self) -> int:
        return len(self.path_offsets) - 1

    @property
    def n_inner(self) -> int:
        return len(self.children)

    def depths(self) -> np.ndarray:
        """Path length of every word."""
        return np.diff(self.path_offsets)

    def path(self, word_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The (point, code) arrays of one word."""
        start, end = self.path_offsets[word_id], self.path_offsets[word_id + 1]
        return self.path_nodes[start:end], self.path_codes[start:end]


def _concatenate(lists: Sequence[Sequence[int]]) -> np.ndarray:
    arrays = [np.asarray(x).reshape(-1) for x in lists if len(x)]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _integers(values: np.ndarray, name: str, dtype: type) -> np.ndarray:
    """A 1-d contiguous array of ``dtype``; ValueError if a value is not an integer or does not
    fit."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(Errors.E031.format(name=name, shape=array.shape))
    if array.size == 0:
        return np.zeros(0, dtype=dtype)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise InputError(Errors.E032.format(name=name, dtype=array.dtype))
    info = np.iinfo(dtype)
    if array.min() < info.min or array.max() > info.max:
        raise InputError(Errors.E033.format(name=name, low=info.min, high=info.max))
    return np.ascontiguousarray(array, dtype=dtype)


def _link_children(
    offsets: np.ndarray, nodes: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, int]:
    """Derive the child table from the paths and check it describes one full binary tree."""
    n_words = len(offsets) - 1
    n_inner = n_words - 1
    if n_words < 2:
        raise InputError(Errors.E034.format(n=n_words))
    lengths = np.diff(offsets)
    if len(nodes) != len(codes):
        raise InputError(Errors.E035)
    if (lengths < 1).any() or offsets[0] != 0 or offsets[-1] != len(nodes):
        raise InputError(Errors.E036)
    if len(nodes) and (nodes.min() < 0 or nodes.max() >= n_inner or codes.max() > 1):
        raise InputError(Errors.E037.format(n_inner=n_inner))
    roots = nodes[offsets[:-1]]
    if (roots != roots[0]).any():
        raise InputError(Errors.E038)
    # The child of path step i is the next node on the path, or the word itself at the end.
    word_of_step = np.repeat(np.arange(n_words, dtype=np.int64), lengths)
    is_last = np.zeros(len(nodes), dtype=bool)
    is_last[offsets[1:] - 1] = True
    child = np.empty(len(nodes), dtype=np.int64)
    child[~is_last] = nodes[1:][~is_last[:-1]]
    child[is_last] = -(word_of_step[is_last] + 1)
    children = np.full((n_inner, 2), np.iinfo(np.int32).min, dtype=np.int64)
    slot = nodes.astype(np.int64) * 2 + codes
    children.reshape(-1)[slot] = child
    # Every (node, branch) slot must be filled, and filled consistently by all paths through it.
    if (children == np.iinfo(np.int32).min).any() or (children.reshape(-1)[slot] != child).any():
        raise InputError(Errors.E039)
    return children.astype(np.int32), int(roots[0])
