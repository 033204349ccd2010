# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Argument checks and row builders shared by the tree kernels (_search.pyx, _path_scores.pyx,
_hidden.pyx), cimported as gensim's kernels cimport word2vec_inner.pxd. They are ``inline``,
so each kernel module compiles its own copy: no call across modules. A check of several
arrays fills a struct of their pointers (``LBL``), which the row builders then read.

A check raises the error a Python caller sees (ValueError, IndexError) before any ``nogil``
loop runs, so the loops themselves check nothing."""

cimport numpy as cnp
from libc.string cimport memcpy

from spacy_hs._hs_math cimport lbl_hidden


cdef inline int check_context_ids(const int[:, ::1] context_ids, Py_ssize_t n_words) except -1:
    cdef Py_ssize_t row, i
    for row in range(context_ids.shape[0]):
        for i in range(context_ids.shape[1]):
            if context_ids[row, i] >= n_words:
                raise IndexError(f"word id {context_ids[row, i]} is out of range [0, {n_words})")
    return 0


cdef inline Py_ssize_t check_node_term(
    const float[::1] table, const cnp.int64_t[:, ::1] bases, Py_ssize_t n_rows,
    Py_ssize_t n_inner,
) except -1:
    """The number of node-term offsets per row (0: no node term), after checking that every
    offset plus every inner node lies inside the table."""
    cdef Py_ssize_t row, f
    if table is None and bases is None:
        return 0
    if table is None or bases is None:
        raise ValueError("a node term needs both the table and the offsets")
    if bases.shape[0] != n_rows:
        raise ValueError(f"{bases.shape[0]} rows of node-term offsets for {n_rows} rows")
    for row in range(n_rows):
        for f in range(bases.shape[1]):
            if bases[row, f] >= 0 and bases[row, f] + n_inner > table.shape[0]:
                raise IndexError(
                    f"node-term offset {bases[row, f]} + {n_inner} nodes exceeds the table "
                    f"({table.shape[0]} values)"
                )
    return bases.shape[1]


cdef inline Py_ssize_t check_targets(
    const int[::1] word_ids, Py_ssize_t n_rows, const cnp.int64_t[::1] path_offsets,
    const float[:, ::1] weights, Py_ssize_t n_dims,
) except -1:
    """The tree's number of words, after checking that there is one word id per row, each
    below it (a negative id is "no word"), and that the output weights have ``n_dims`` columns
    and a row per inner node."""
    cdef Py_ssize_t n_words = path_offsets.shape[0] - 1, row
    if word_ids.shape[0] != n_rows:
        raise ValueError(f"{word_ids.shape[0]} word ids for {n_rows} rows")
    if weights.shape[1] != n_dims:
        raise ValueError(f"the output weights have {weights.shape[1]} columns, not {n_dims}")
    if n_words < 0 or weights.shape[0] < n_words - 1:
        raise ValueError(f"{weights.shape[0]} weight rows for a tree of {n_words} words")
    for row in range(n_rows):
        if word_ids[row] >= n_words:
            raise IndexError(f"word id {word_ids[row]} is out of range [0, {n_words})")
    return n_words


# The directional head's parameters, checked once (``check_lbl``) and read by pointer in the
# loops: input vectors (n_vectors, n_dims), whose id ``n_vectors`` is the padding vector, the
# position weights of ``size`` context words (diagonal or full) and the hidden bias.
cdef struct LBL:
    const float* vectors
    Py_ssize_t n_vectors
    Py_ssize_t n_dims
    Py_ssize_t size
    const float* padding
    const float* positions
    const float* bias
    bint diagonal


cdef inline int check_lbl(
    const float[:, ::1] vectors, const float[::1] padding, const float[::1] positions,
    const float[::1] bias, const int[:, ::1] contexts, bint diagonal, LBL* lbl,
) except -1:
    """Checks that the directional head's parameters fit each other and the contexts' ids are
    in range (``len(vectors)`` being the padding), then sets ``lbl`` to them."""
    cdef Py_ssize_t size = contexts.shape[1], n_dims = vectors.shape[1]
    cdef Py_ssize_t row, i
    if positions.shape[0] != (size * n_dims if diagonal else size * n_dims * n_dims):
        raise ValueError("position weights do not match the context size and vector size")
    if padding.shape[0] != n_dims or bias.shape[0] != n_dims:
        raise ValueError("padding and bias must have one value per dimension")
    for row in range(contexts.shape[0]):
        for i in range(size):
            if contexts[row, i] < 0 or contexts[row, i] > vectors.shape[0]:
                raise IndexError(f"context id {contexts[row, i]} is out of range")
    lbl.vectors = &vectors[0, 0]
    lbl.n_vectors = vectors.shape[0]
    lbl.n_dims = n_dims
    lbl.size = size
    lbl.padding = &padding[0]
    lbl.positions = &positions[0]
    lbl.bias = &bias[0]
    lbl.diagonal = diagonal
    return 0


cdef inline void sum_rows(
    const float[:, ::1] vectors, const cnp.int64_t* ids, Py_ssize_t n, bint mean, float* out
) noexcept nogil:
    """The hidden vector of one context: its rows of ``vectors`` added in float32 in order (as
    gensim sums a CBOW context), then divided by their number if ``mean``."""
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t i, j
    cdef const float* row
    cdef float count
    for j in range(n_dims):
        out[j] = 0.0
    for i in range(n):
        row = &vectors[ids[i], 0]
        for j in range(n_dims):
            out[j] = out[j] + row[j]
    if mean and n > 1:
        # A float32 division gives exactly the double division rounded to float32 (double
        # rounding is harmless for a division when 53 >= 2 * 24 + 2), without converting.
        count = <float>n
        for j in range(n_dims):
            out[j] = out[j] / count


cdef inline void lbl_row(
    const LBL* lbl, const int* context, float* gathered, float* hidden
) noexcept nogil:
    """One context's hidden vector: its rows gathered into ``gathered`` (the padding vector for
    the id ``n_vectors``), then ``hs_lbl_hidden``."""
    cdef Py_ssize_t n_dims = lbl.n_dims, i
    cdef const float* row
    for i in range(lbl.size):
        row = lbl.padding if context[i] == lbl.n_vectors else lbl.vectors + context[i] * n_dims
        memcpy(gathered + i * n_dims, row, n_dims * sizeof(float))
    lbl_hidden(gathered, lbl.positions, lbl.bias, lbl.size, n_dims, lbl.diagonal, hidden)
