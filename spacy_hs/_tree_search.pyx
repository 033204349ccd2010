# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels over the hierarchical-softmax tree.

Conventions (see tree.py): ``children[n, c]`` is the inner node reached from node ``n`` by branch
``c``, or ``-(w + 1)`` for leaf word ``w``. Branch ``c`` at node ``n`` has log-probability
``log_sigmoid((1 - 2c) * h . weights[n])``. Dot products accumulate in double precision.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport exp, log1p, NAN
from libc.stdlib cimport free, malloc, realloc

cnp.import_array()


cdef inline double log_sigmoid(double x) noexcept nogil:
    # log(1 / (1 + exp(-x))), exact for all x: no clipping, no lookup table, no overflow.
    if x >= 0:
        return -log1p(exp(-x))
    return x - log1p(exp(x))


cdef inline double dot(const float* a, const float* b, Py_ssize_t n) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        total += <double>a[i] * <double>b[i]
    return total


# A max-heap of (log-probability, tree item) for best-first search.
cdef struct Frontier:
    double* score
    int* item
    Py_ssize_t size
    Py_ssize_t capacity


cdef int frontier_push(Frontier* f, double score, int item) noexcept nogil:
    cdef Py_ssize_t i, parent
    cdef double* new_score
    cdef int* new_item
    if f.size == f.capacity:
        new_score = <double*>realloc(f.score, 2 * f.capacity * sizeof(double))
        if new_score == NULL:
            return -1
        f.score = new_score
        new_item = <int*>realloc(f.item, 2 * f.capacity * sizeof(int))
        if new_item == NULL:
            return -1
        f.item = new_item
        f.capacity *= 2
    i = f.size
    f.size += 1
    while i > 0:
        parent = (i - 1) >> 1
        if f.score[parent] >= score:
            break
        f.score[i] = f.score[parent]
        f.item[i] = f.item[parent]
        i = parent
    f.score[i] = score
    f.item[i] = item
    return 0


cdef void frontier_pop(Frontier* f, double* score, int* item) noexcept nogil:
    cdef Py_ssize_t i = 0, child
    cdef double last_score
    cdef int last_item
    score[0] = f.score[0]
    item[0] = f.item[0]
    f.size -= 1
    last_score = f.score[f.size]
    last_item = f.item[f.size]
    while True:
        child = 2 * i + 1
        if child >= f.size:
            break
        if child + 1 < f.size and f.score[child + 1] > f.score[child]:
            child += 1
        if f.score[child] <= last_score:
            break
        f.score[i] = f.score[child]
        f.item[i] = f.item[child]
        i = child
    f.score[i] = last_score
    f.item[i] = last_item


cdef Py_ssize_t best_first(
    const float* hidden,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
    Frontier* frontier,
    int* out_ids,
    double* out_log_probs,
    Py_ssize_t* n_expanded,
) noexcept nogil:
    """Exact top-k leaves by best-first search; returns how many were found (-1: out of memory).

    Log-probabilities only decrease going down the tree, so the first k leaves popped from the
    frontier are the k most probable words, in order.
    """
    cdef Py_ssize_t n_dims = weights.shape[1]
    cdef Py_ssize_t found = 0
    cdef double score, d
    cdef int item
    frontier.size = 0
    n_expanded[0] = 0
    if frontier_push(frontier, 0.0, root) != 0:
        return -1
    while found < k and frontier.size > 0:
        frontier_pop(frontier, &score, &item)
        if item < 0:
            out_ids[found] = -(item + 1)
            out_log_probs[found] = score
            found += 1
            continue
        n_expanded[0] += 1
        d = dot(hidden, &weights[item, 0], n_dims)
        if frontier_push(frontier, score + log_sigmoid(d), children[item, 0]) != 0:
            return -1
        if frontier_push(frontier, score + log_sigmoid(-d), children[item, 1]) != 0:
            return -1
    return found


def top_k(
    const float[:, ::1] hidden,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
):
    """Exact top-k words for each row of ``hidden``.

    Returns (word ids int32 (B, k), log-probabilities float64 (B, k), inner nodes expanded
    int64 (B,)). ``k`` must not exceed the vocabulary size.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    if hidden.shape[1] != weights.shape[1]:
        raise ValueError("hidden and weights differ in dimension")
    ids_arr = np.empty((n_rows, k), dtype=np.int32)
    log_probs_arr = np.empty((n_rows, k), dtype=np.float64)
    expanded_arr = np.empty(n_rows, dtype=np.int64)
    cdef int[:, ::1] ids = ids_arr
    cdef double[:, ::1] log_probs = log_probs_arr
    cdef Py_ssize_t[::1] expanded = expanded_arr.view(np.intp)
    cdef Frontier frontier
    cdef Py_ssize_t row, found = 0
    frontier.capacity = 256
    frontier.size = 0
    frontier.score = <double*>malloc(frontier.capacity * sizeof(double))
    frontier.item = <int*>malloc(frontier.capacity * sizeof(int))
    if frontier.score == NULL or frontier.item == NULL:
        free(frontier.score)
        free(frontier.item)
        raise MemoryError()
    try:
        with nogil:
            for row in range(n_rows):
                found = best_first(
                    &hidden[row, 0], weights, children, root, k, &frontier,
                    &ids[row, 0], &log_probs[row, 0], &expanded[row],
                )
                if found != k:
                    break
    finally:
        free(frontier.score)
        free(frontier.item)
    if n_rows and found != k:
        raise MemoryError("tree search ran out of memory") if found < 0 else ValueError(
            f"k={k} exceeds the number of words in the tree"
        )
    return ids_arr, log_probs_arr, expanded_arr


def word_log_probs(const float[:, ::1] dots, const int[:, ::1] children, int root, Py_ssize_t n_words):
    """Log-probability of every word, given the dot products of each hidden vector with every
    inner node (``dots``: (B, n_inner)). One top-down pass over the tree per row: O(V).
    """
    cdef Py_ssize_t n_rows = dots.shape[0]
    cdef Py_ssize_t n_inner = children.shape[0]
    out_arr = np.empty((n_rows, n_words), dtype=np.float64)
    cdef double[:, ::1] out = out_arr
    cdef int* stack_node = <int*>malloc((n_inner + 1) * sizeof(int))
    cdef double* stack_score = <double*>malloc((n_inner + 1) * sizeof(double))
    cdef Py_ssize_t row, top, c
    cdef int node, child
    cdef double score, d, branch
    if stack_node == NULL or stack_score == NULL:
        free(stack_node)
        free(stack_score)
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            top = 0
            stack_node[0] = root
            stack_score[0] = 0.0
            top = 1
            while top > 0:
                top -= 1
                node = stack_node[top]
                score = stack_score[top]
                d = dots[row, node]
                for c in range(2):
                    branch = score + log_sigmoid(d if c == 0 else -d)
                    child = children[node, c]
                    if child < 0:
                        out[row, -(child + 1)] = branch
                    else:
                        stack_node[top] = child
                        stack_score[top] = branch
                        top += 1
    free(stack_node)
    free(stack_score)
    return out_arr


def path_log_probs(
    const float[:, ::1] hidden,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets,
    const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
):
    """Log-probability of ``word_ids[i]`` given ``hidden[i]``, summed along the word's path.

    A negative word id gives NaN.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    cdef Py_ssize_t n_dims = weights.shape[1]
    if word_ids.shape[0] != n_rows:
        raise ValueError("hidden and word_ids differ in length")
    if hidden.shape[1] != n_dims:
        raise ValueError("hidden and weights differ in dimension")
    out_arr = np.empty(n_rows, dtype=np.float64)
    cdef double[::1] out = out_arr
    cdef Py_ssize_t row, step
    cdef int word
    cdef double total, d
    with nogil:
        for row in range(n_rows):
            word = word_ids[row]
            if word < 0:
                out[row] = NAN
                continue
            total = 0.0
            for step in range(path_offsets[word], path_offsets[word + 1]):
                d = dot(&hidden[row, 0], &weights[path_nodes[step], 0], n_dims)
                total += log_sigmoid(d if path_codes[step] == 0 else -d)
            out[row] = total
    return out_arr
