# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Path scores: log P(word | hidden) summed along the word's path in the tree, for given
words (``path_log_probs`` and the fused passes that build each hidden vector in a buffer) or
for every word (``word_log_probs``).

Conventions (see tree.py): ``children[n, c]`` is the inner node reached from node ``n`` by branch
``c``, or ``-(w + 1)`` for leaf word ``w``. Branch ``c`` at node ``n`` has log-probability
``log_sigmoid((1 - 2c) * h . weights[n])``. The path log-likelihood is ``hs_path_log_prob``
(_hs_kernels.h), the same definition the head's training kernels use.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport NAN
from libc.stdlib cimport free, malloc

from spacy_hs._hs_math cimport (
    context_hidden_row,
    log_sigmoid_pair,
    ngram_bases,
    node_term,
    path_log_prob,
)
from spacy_hs._tree_checks cimport (
    LBL,
    check_context_ids,
    check_lbl,
    check_node_term,
    check_targets,
    lbl_row,
)

cnp.import_array()


def path_log_probs(
    const float[:, ::1] hidden, const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets, const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
    const float[::1] table=None, const cnp.int64_t[:, ::1] bases=None,
):
    """Log-probability of ``word_ids[i]`` given ``hidden[i]``, summed along the word's path;
    with ``table`` and ``bases``, each logit gains row i's node term (see ``top_k``).

    A negative word id gives NaN; an id past the vocabulary raises IndexError.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    cdef Py_ssize_t n_dims = hidden.shape[1]
    cdef Py_ssize_t n_words = check_targets(word_ids, n_rows, path_offsets, weights, n_dims)
    cdef Py_ssize_t row
    cdef Py_ssize_t n_bases = check_node_term(table, bases, n_rows, max(n_words - 1, 0))
    cdef const float* table_ptr = &table[0] if n_bases else NULL
    out_arr = np.empty(n_rows, dtype=np.float64)
    cdef double[::1] out = out_arr
    cdef const int* nodes = &path_nodes[0] if path_nodes.shape[0] else NULL
    cdef const unsigned char* codes = &path_codes[0] if path_codes.shape[0] else NULL
    with nogil:
        for row in range(n_rows):
            if word_ids[row] < 0:
                out[row] = NAN
            else:
                out[row] = path_log_prob(
                    &hidden[row, 0], &weights[0, 0], n_dims, &path_offsets[0], nodes, codes,
                    word_ids[row], table_ptr, &bases[row, 0] if n_bases else NULL, n_bases,
                )
    return out_arr


def word_log_probs(
    const float[:, ::1] dots, const int[:, ::1] children, int root, Py_ssize_t n_words,
    const float[::1] table=None, const cnp.int64_t[:, ::1] bases=None,
):
    """Log-probability of every word, given the dot products of each hidden vector with every
    inner node (``dots``: (B, n_inner)), plus row b's node term with ``table`` and ``bases``
    (see ``top_k``). One top-down pass over the tree per row: O(V).
    """
    cdef Py_ssize_t n_rows = dots.shape[0]
    cdef Py_ssize_t n_inner = children.shape[0]
    cdef Py_ssize_t n_bases = check_node_term(table, bases, n_rows, n_inner)
    cdef const float* table_ptr = &table[0] if n_bases else NULL
    cdef double logit
    if n_words != n_inner + 1 or children.shape[1] != 2:
        raise ValueError(f"a tree of {n_inner} inner nodes has {n_inner + 1} words, not {n_words}")
    if dots.shape[1] < n_inner:
        raise ValueError(f"{dots.shape[1]} dot products per row for {n_inner} inner nodes")
    if not 0 <= root < n_inner:
        raise ValueError(f"root {root} is not an inner node of the tree")
    out_arr = np.empty((n_rows, n_words), dtype=np.float64)
    cdef double[:, ::1] out = out_arr
    cdef int* stack_node = <int*>malloc((n_inner + 1) * sizeof(int))
    cdef double* stack_score = <double*>malloc((n_inner + 1) * sizeof(double))
    cdef Py_ssize_t row, top, c
    cdef int node, child
    cdef double score
    cdef double branch[2]
    if stack_node == NULL or stack_score == NULL:
        free(stack_node)
        free(stack_score)
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            stack_node[0] = root
            stack_score[0] = 0.0
            top = 1
            while top > 0:
                top -= 1
                node = stack_node[top]
                score = stack_score[top]
                logit = dots[row, node]
                if n_bases:
                    logit += node_term(table_ptr, &bases[row, 0], n_bases, node)
                branch[0] = score + log_sigmoid_pair(logit, &branch[1])
                branch[1] += score
                for c in range(2):
                    child = children[node, c]
                    if child < 0:
                        out[row, -(child + 1)] = branch[c]
                    else:
                        stack_node[top] = child
                        stack_score[top] = branch[c]
                        top += 1
    free(stack_node)
    free(stack_score)
    return out_arr


def context_path_log_probs(
    const float[:, ::1] vectors, const int[:, ::1] context_ids, bint mean,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets, const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
):
    """``path_log_probs(context_hidden_matrix(vectors, context_ids, mean)[0], word_ids, ...)``
    in one pass: each hidden vector is built in a buffer and scored at once, never stored.
    NaN where the word id is negative or the context has no word."""
    cdef Py_ssize_t n_rows = context_ids.shape[0]
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t n_words = check_targets(word_ids, n_rows, path_offsets, weights, n_dims)
    cdef Py_ssize_t row
    check_context_ids(context_ids, vectors.shape[0])
    out_arr = np.full(n_rows, np.nan, dtype=np.float64)
    if n_rows == 0 or context_ids.shape[1] == 0:
        return out_arr
    cdef double[::1] out = out_arr
    cdef const int* nodes = &path_nodes[0] if path_nodes.shape[0] else NULL
    cdef const unsigned char* codes = &path_codes[0] if path_codes.shape[0] else NULL
    cdef float* hidden = <float*>malloc(max(n_dims, 1) * sizeof(float))
    if hidden == NULL:
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            if word_ids[row] < 0:
                continue
            if context_hidden_row(
                &vectors[0, 0], n_dims, &context_ids[row, 0], context_ids.shape[1], mean, hidden
            ) > 0:
                out[row] = path_log_prob(
                    hidden, &weights[0, 0], n_dims, &path_offsets[0], nodes, codes, word_ids[row],
                    NULL, NULL, 0,
                )
    free(hidden)
    return out_arr


def lbl_path_log_probs(
    const float[:, ::1] vectors, const float[::1] padding, const float[::1] positions,
    const float[::1] bias, const int[:, ::1] contexts, bint diagonal,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets, const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
    const float[::1] table=None, Py_ssize_t n_orders=0,
):
    """log P(word_ids[b] | contexts[b]) under the directional head (and its n-gram features
    with ``table`` and ``n_orders``), row by row in one compiled pass: each row's hidden vector
    (``hs_lbl_hidden``) and n-gram offsets (``hs_ngram_bases``) are formed in buffers and
    scored at once (``hs_path_log_prob``), never stored. The same values as
    ``lbl_hidden_matrix`` + ``ngram_bases_matrix`` + ``path_log_probs``. ``contexts`` as in
    ``lbl_hidden_matrix`` (most recent first, ``len(vectors)`` = padding); NaN where the word
    id is negative."""
    cdef Py_ssize_t n_rows = contexts.shape[0], size = contexts.shape[1]
    cdef Py_ssize_t n_dims = vectors.shape[1], n_vectors = vectors.shape[0]
    cdef Py_ssize_t row
    cdef cnp.uint64_t modulus = 1
    cdef LBL lbl
    check_lbl(vectors, padding, positions, bias, contexts, diagonal, &lbl)
    cdef Py_ssize_t n_words = check_targets(word_ids, n_rows, path_offsets, weights, n_dims + 1)
    if n_orders:
        if table is None or n_orders < 0 or n_orders > size or table.shape[0] < n_words:
            raise ValueError("n-gram features need a table of at least V values and K >= N")
        modulus = table.shape[0] - (n_words - 1)
    out_arr = np.full(n_rows, np.nan, dtype=np.float64)
    if n_rows == 0:
        return out_arr
    cdef double[::1] out = out_arr
    cdef const int* nodes = &path_nodes[0] if path_nodes.shape[0] else NULL
    cdef const unsigned char* codes = &path_codes[0] if path_codes.shape[0] else NULL
    cdef const float* table_ptr = &table[0] if n_orders else NULL
    cdef float* gathered = <float*>malloc(max(size * n_dims, 1) * sizeof(float))
    cdef float* hidden = <float*>malloc((n_dims + 1) * sizeof(float))
    cdef cnp.int64_t* bases = <cnp.int64_t*>malloc(max(n_orders, 1) * sizeof(cnp.int64_t))
    if gathered == NULL or hidden == NULL or bases == NULL:
        free(gathered)
        free(hidden)
        free(bases)
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            if word_ids[row] < 0:
                continue
            lbl_row(&lbl, &contexts[row, 0], gathered, hidden)
            if n_orders:
                ngram_bases(&contexts[row, 0], n_orders, <int>n_vectors, modulus, bases)
            out[row] = path_log_prob(
                hidden, &weights[0, 0], n_dims + 1, &path_offsets[0], nodes, codes,
                word_ids[row], table_ptr, bases, n_orders,
            )
    free(gathered)
    free(hidden)
    free(bases)
    return out_arr
