# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels over the hierarchical-softmax tree.

Conventions (see tree.py): ``children[n, c]`` is the inner node reached from node ``n`` by branch
``c``, or ``-(w + 1)`` for leaf word ``w``. Branch ``c`` at node ``n`` has log-probability
``log_sigmoid((1 - 2c) * h . weights[n])``. Dot products accumulate in float32, in sixteen
independent lanes (relative error about 1e-7, the precision of the float32 inputs themselves);
log-sigmoids and their sums are computed in double precision. The innermost loops are C
(_hs_kernels.h, declared in _hs_math.pxd and shared with the head's training kernels) so that
they can also be compiled for AVX2 and chosen at load time.

Cython rather than numba or numpy batching: the best-first search is a loop of small, dependent
steps (pop, one 100-float dot product, two pushes) that vectorises badly, and Cython is what
spaCy, thinc and gensim already build with, so it adds no runtime dependency.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport exp, fabs, log1p, NAN
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from spacy_hs._hs_math cimport (
    NGRAM_HASH_VERSION,
    context_hidden_row,
    dot,
    lbl_hidden,
    log_sigmoid_pair,
    ngram_bases,
    node_term,
    path_log_prob,
)

cnp.import_array()


# A max-heap of (log-probability, tree item) for best-first search.
cdef struct Frontier:
    double* score
    int* item
    Py_ssize_t size
    Py_ssize_t capacity


cdef int frontier_init(Frontier* f) noexcept nogil:
    f.size = 0
    f.capacity = 256
    f.score = <double*>malloc(f.capacity * sizeof(double))
    f.item = <int*>malloc(f.capacity * sizeof(int))
    return -1 if f.score == NULL or f.item == NULL else 0


cdef void frontier_free(Frontier* f) noexcept nogil:
    free(f.score)
    free(f.item)
    f.score = NULL
    f.item = NULL


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
    const float* table,
    const cnp.int64_t* bases,
    Py_ssize_t n_bases,
) noexcept nogil:
    """Exact top-k leaves by best-first search; returns how many were found (-1: out of memory).

    Log-probabilities only decrease going down the tree, so the first k leaves popped from the
    frontier are the k most probable words, in order. Only inner nodes at least as probable as
    the k-th word are expanded: about k times the depth for a peaked distribution.
    """
    cdef Py_ssize_t n_dims = weights.shape[1]
    cdef Py_ssize_t found = 0
    cdef double score, d, best_score, other_score, magnitude, loss
    cdef int item, best, other, flip
    frontier.size = 0
    n_expanded[0] = 0
    if frontier_push(frontier, 0.0, root) != 0:
        return -1
    while found < k and frontier.size > 0:
        frontier_pop(frontier, &score, &item)
        # Descend while the current item is at least as probable as everything on the frontier:
        # the same order as pushing it and popping it again, without the heap traffic.
        while True:
            if item < 0:
                out_ids[found] = -(item + 1)
                out_log_probs[found] = score
                found += 1
                break
            n_expanded[0] += 1
            d = dot(hidden, &weights[item, 0], n_dims)
            if n_bases:
                d += node_term(table, bases, n_bases, item)
            # The more probable branch is 1 when d < 0. Indexing with that, rather than swapping
            # after an unpredictable comparison, saves about a tenth of the search time. Its
            # log-sigmoid is -log1p(exp(-|d|)), the other's that minus |d|: the same values, bit
            # for bit, as log_sigmoid_pair gives. (Prefetching the children's rows cost more
            # than it saved, even at V = 1M.)
            flip = d < 0
            best = children[item, flip]
            other = children[item, 1 - flip]
            magnitude = fabs(d)
            loss = log1p(exp(-magnitude))
            best_score = score + -loss
            other_score = (-loss - magnitude) + score
            if frontier_push(frontier, other_score, other) != 0:
                return -1
            if frontier.score[0] > best_score:
                if frontier_push(frontier, best_score, best) != 0:
                    return -1
                break
            score = best_score
            item = best
    return found


cdef int check_tree(
    const float[:, ::1] weights, const int[:, ::1] children, int root, Py_ssize_t n_dims
) except -1:
    if weights.shape[1] != n_dims:
        raise ValueError(
            f"hidden vectors have {n_dims} dimensions but the weights {weights.shape[1]}"
        )
    if children.shape[1] != 2 or weights.shape[0] < children.shape[0]:
        raise ValueError(
            f"{weights.shape[0]} weight rows for a tree of {children.shape[0]} inner nodes"
        )
    if not 0 <= root < children.shape[0]:
        raise ValueError(f"root {root} is not an inner node of the tree")
    return 0


def top_k(
    const float[:, ::1] hidden,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
    const float[::1] table=None,
    const cnp.int64_t[:, ::1] bases=None,
):
    """Exact top-k words for each row of ``hidden``; with ``table`` and ``bases`` (B, F), each
    node's logit gains row b's node term (``hs_node_term``: table[bases[b, f] + node] summed
    over the row's non-negative offsets).

    Returns (word ids int32 (B, k), log-probabilities float64 (B, k), inner nodes expanded
    int64 (B,)). ``k`` must not exceed the vocabulary size.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    check_tree(weights, children, root, hidden.shape[1])
    cdef Py_ssize_t n_bases = check_node_term(table, bases, n_rows, children.shape[0])
    cdef const float* table_ptr = &table[0] if n_bases else NULL
    if k < 0 or k > children.shape[0] + 1:
        raise ValueError(f"k={k} must lie in [0, {children.shape[0] + 1}], the number of words")
    ids_arr = np.empty((n_rows, k), dtype=np.int32)
    log_probs_arr = np.empty((n_rows, k), dtype=np.float64)
    expanded_arr = np.zeros(n_rows, dtype=np.int64)
    if k == 0:
        return ids_arr, log_probs_arr, expanded_arr
    cdef int[:, ::1] ids = ids_arr
    cdef double[:, ::1] log_probs = log_probs_arr
    cdef Py_ssize_t[::1] expanded = expanded_arr.view(np.intp)
    cdef Frontier frontier
    cdef Py_ssize_t row, found = k
    if frontier_init(&frontier) != 0:
        frontier_free(&frontier)
        raise MemoryError()
    try:
        with nogil:
            for row in range(n_rows):
                found = best_first(
                    &hidden[row, 0], weights, children, root, k, &frontier,
                    &ids[row, 0], &log_probs[row, 0], &expanded[row],
                    table_ptr, &bases[row, 0] if n_bases else NULL, n_bases,
                )
                if found != k:
                    break
    finally:
        frontier_free(&frontier)
    check_found(found, k)
    return ids_arr, log_probs_arr, expanded_arr


cdef int check_found(Py_ssize_t found, Py_ssize_t k) except -1:
    """What a best-first search's count of leaves found means: -1 out of memory, fewer than k
    a tree that is not full."""
    if found < 0:
        raise MemoryError("tree search ran out of memory")
    if found != k:
        raise ValueError("the tree is not a full binary tree: a search ran out of leaves")
    return 0


cdef void sum_rows(
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


def context_hidden(
    const float[:, ::1] vectors,
    const cnp.int64_t[::1] flat_ids,
    const cnp.int64_t[::1] offsets,
    bint mean,
):
    """Hidden vectors (B, d) of B contexts: context ``b`` is
    ``flat_ids[offsets[b]:offsets[b + 1]]``. An empty context gives a zero row."""
    cdef Py_ssize_t n_rows = offsets.shape[0] - 1
    cdef Py_ssize_t n_words = vectors.shape[0]
    cdef Py_ssize_t row, i
    if n_rows < 0:
        raise ValueError("offsets must hold at least one entry")
    if offsets[0] != 0 or offsets[n_rows] != flat_ids.shape[0]:
        raise ValueError("offsets do not match flat_ids")
    for row in range(n_rows):
        if offsets[row + 1] < offsets[row]:
            raise ValueError("offsets must not decrease")
    for i in range(flat_ids.shape[0]):
        if flat_ids[i] < 0 or flat_ids[i] >= n_words:
            raise IndexError(f"word id {flat_ids[i]} is out of range [0, {n_words})")
    hidden_arr = np.zeros((n_rows, vectors.shape[1]), dtype=np.float32)
    cdef float[:, ::1] hidden = hidden_arr
    if vectors.shape[1] == 0 or flat_ids.shape[0] == 0:
        return hidden_arr
    cdef const cnp.int64_t* ids = &flat_ids[0]
    with nogil:
        for row in range(n_rows):
            if offsets[row + 1] > offsets[row]:
                sum_rows(
                    vectors, ids + offsets[row], offsets[row + 1] - offsets[row], mean,
                    &hidden[row, 0],
                )
    return hidden_arr


def context_hidden_matrix(
    const float[:, ::1] vectors,
    const int[:, ::1] context_ids,
    bint mean,
):
    """Hidden vectors (B, d) and has_context (B,) of B contexts given as rows of word ids,
    oldest first; negative entries (padding) are skipped. Row ``b`` is exactly what
    ``context_hidden`` gives for the row's non-negative ids; a row with none gives a zero row
    and has_context False."""
    cdef Py_ssize_t n_rows = context_ids.shape[0]
    cdef Py_ssize_t row
    check_context_ids(context_ids, vectors.shape[0])
    hidden_arr = np.zeros((n_rows, vectors.shape[1]), dtype=np.float32)
    has_context_arr = np.zeros(n_rows, dtype=bool)
    if n_rows == 0 or context_ids.shape[1] == 0 or vectors.shape[1] == 0:
        has_context_arr[:] = (np.asarray(context_ids) >= 0).any(axis=1)
        return hidden_arr, has_context_arr
    cdef float[:, ::1] hidden = hidden_arr
    cdef cnp.npy_bool[::1] has_context = has_context_arr.view(np.uint8)
    with nogil:
        for row in range(n_rows):
            has_context[row] = context_hidden_row(
                &vectors[0, 0], vectors.shape[1], &context_ids[row, 0], context_ids.shape[1],
                mean, &hidden[row, 0],
            ) > 0
    return hidden_arr, has_context_arr


def context_path_log_probs(
    const float[:, ::1] vectors,
    const int[:, ::1] context_ids,
    bint mean,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets,
    const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
):
    """``path_log_probs(context_hidden_matrix(vectors, context_ids, mean)[0], word_ids, ...)``
    in one pass: each hidden vector is built in a buffer and scored at once, never stored.
    NaN where the word id is negative or the context has no word."""
    cdef Py_ssize_t n_rows = context_ids.shape[0]
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t n_words = path_offsets.shape[0] - 1
    cdef Py_ssize_t row
    if word_ids.shape[0] != n_rows:
        raise ValueError("context_ids and word_ids differ in length")
    if weights.shape[1] != n_dims:
        raise ValueError(f"vectors have {n_dims} dimensions but the weights {weights.shape[1]}")
    if n_words < 0 or weights.shape[0] < n_words - 1:
        raise ValueError(f"{weights.shape[0]} weight rows for a tree of {n_words} words")
    check_context_ids(context_ids, vectors.shape[0])
    for row in range(n_rows):
        if word_ids[row] >= n_words:
            raise IndexError(f"word id {word_ids[row]} is out of range [0, {n_words})")
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


def top_k_context(
    const float[:, ::1] vectors,
    list context_ids,
    bint mean,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
):
    """Exact top-k for one context given as a non-empty list of word ids.

    The hidden vector is built here too, exactly as ``context_hidden`` builds it, so a single
    query pays for no intermediate arrays.

    Returns (word ids: list, log-probabilities: list, inner nodes expanded: int).
    """
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t n_words = vectors.shape[0]
    cdef Py_ssize_t n_context = len(context_ids)
    cdef Py_ssize_t i, found
    cdef Py_ssize_t n_expanded = 0
    cdef cnp.int64_t word
    cdef Frontier frontier
    check_tree(weights, children, root, n_dims)
    if n_context == 0:
        raise ValueError("the context has no words")
    if k < 1 or k > children.shape[0] + 1:
        raise ValueError(f"k={k} must lie in [1, {children.shape[0] + 1}], the number of words")
    cdef cnp.int64_t* ids = <cnp.int64_t*>malloc(n_context * sizeof(cnp.int64_t))
    cdef float* hidden = <float*>malloc(n_dims * sizeof(float))
    cdef int* out_ids = <int*>malloc(k * sizeof(int))
    cdef double* out_log_probs = <double*>malloc(k * sizeof(double))
    cdef int failed = frontier_init(&frontier)
    try:
        if failed or ids == NULL or hidden == NULL or out_ids == NULL or out_log_probs == NULL:
            raise MemoryError()
        for i in range(n_context):
            word = context_ids[i]
            if word < 0 or word >= n_words:
                raise IndexError(f"word id {word} is out of range [0, {n_words})")
            ids[i] = word
        with nogil:
            sum_rows(vectors, ids, n_context, mean, hidden)
            found = best_first(
                hidden, weights, children, root, k, &frontier, out_ids, out_log_probs, &n_expanded,
                NULL, NULL, 0,
            )
        check_found(found, k)
        return [out_ids[i] for i in range(k)], [out_log_probs[i] for i in range(k)], n_expanded
    finally:
        free(ids)
        free(hidden)
        free(out_ids)
        free(out_log_probs)
        frontier_free(&frontier)


def word_log_probs(
    const float[:, ::1] dots,
    const int[:, ::1] children,
    int root,
    Py_ssize_t n_words,
    const float[::1] table=None,
    const cnp.int64_t[:, ::1] bases=None,
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


cdef int check_context_ids(const int[:, ::1] context_ids, Py_ssize_t n_words) except -1:
    cdef Py_ssize_t row, i
    for row in range(context_ids.shape[0]):
        for i in range(context_ids.shape[1]):
            if context_ids[row, i] >= n_words:
                raise IndexError(f"word id {context_ids[row, i]} is out of range [0, {n_words})")
    return 0


def path_log_probs(
    const float[:, ::1] hidden,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets,
    const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
    const float[::1] table=None,
    const cnp.int64_t[:, ::1] bases=None,
):
    """Log-probability of ``word_ids[i]`` given ``hidden[i]``, summed along the word's path;
    with ``table`` and ``bases``, each logit gains row i's node term (see ``top_k``).

    A negative word id gives NaN; an id past the vocabulary raises IndexError.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    cdef Py_ssize_t n_dims = weights.shape[1]
    cdef Py_ssize_t n_words = path_offsets.shape[0] - 1
    if word_ids.shape[0] != n_rows:
        raise ValueError("hidden and word_ids differ in length")
    if hidden.shape[1] != n_dims:
        raise ValueError(f"hidden vectors have {hidden.shape[1]} dimensions but the weights {n_dims}")
    if n_words < 0 or weights.shape[0] < n_words - 1:
        raise ValueError(f"{weights.shape[0]} weight rows for a tree of {n_words} words")
    cdef Py_ssize_t row
    cdef Py_ssize_t n_bases = check_node_term(table, bases, n_rows, max(n_words - 1, 0))
    cdef const float* table_ptr = &table[0] if n_bases else NULL
    for row in range(n_rows):
        if word_ids[row] >= n_words:
            raise IndexError(f"word id {word_ids[row]} is out of range [0, {n_words})")
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


NGRAM_HASH = NGRAM_HASH_VERSION


cdef Py_ssize_t check_node_term(
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


cdef int check_lbl(
    const float[:, ::1] vectors,
    const float[::1] padding,
    const float[::1] positions,
    const float[::1] bias,
    const int[:, ::1] contexts,
    bint diagonal,
) except -1:
    """The directional head's parameters fit each other and the contexts' ids are in range
    (``len(vectors)`` being the padding)."""
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
    return 0


cdef inline void lbl_row(
    const float[:, ::1] vectors,
    const float[::1] padding,
    const float[::1] positions,
    const float[::1] bias,
    const int* context,
    Py_ssize_t size,
    bint diagonal,
    float* gathered,
    float* hidden,
) noexcept nogil:
    """One context's hidden vector: its rows gathered into ``gathered`` (the padding vector for
    the id ``len(vectors)``), then ``hs_lbl_hidden``."""
    cdef Py_ssize_t n_dims = vectors.shape[1], i
    for i in range(size):
        if context[i] == vectors.shape[0]:
            memcpy(gathered + i * n_dims, &padding[0], n_dims * sizeof(float))
        else:
            memcpy(gathered + i * n_dims, &vectors[context[i], 0], n_dims * sizeof(float))
    lbl_hidden(gathered, &positions[0], &bias[0], size, n_dims, diagonal, hidden)


def lbl_hidden_matrix(
    const float[:, ::1] vectors,
    const float[::1] padding,
    const float[::1] positions,
    const float[::1] bias,
    const int[:, ::1] contexts,
    bint diagonal,
):
    """Directional (log-bilinear) hidden vectors, float32 (B, d + 1), by ``hs_lbl_hidden``
    (the training step's definition). ``contexts[:, i]`` is the (i+1)-th most recent word; the
    id ``len(vectors)`` stands for ``padding``. ``positions`` is C flattened: (K, d) diagonal,
    (d, K * d) full."""
    cdef Py_ssize_t n_rows = contexts.shape[0]
    cdef Py_ssize_t size = contexts.shape[1]
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t row
    check_lbl(vectors, padding, positions, bias, contexts, diagonal)
    hidden_arr = np.empty((n_rows, n_dims + 1), dtype=np.float32)
    if n_rows == 0:
        return hidden_arr
    cdef float[:, ::1] hidden = hidden_arr
    cdef float* gathered = <float*>malloc(max(size * n_dims, 1) * sizeof(float))
    if gathered == NULL:
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            lbl_row(
                vectors, padding, positions, bias, &contexts[row, 0], size, diagonal, gathered,
                &hidden[row, 0],
            )
    free(gathered)
    return hidden_arr


def ngram_bases_matrix(const int[:, ::1] contexts, Py_ssize_t n_orders, int padding, cnp.uint64_t modulus):
    """The n-gram features' table offsets, int64 (B, n_orders), of contexts given most recent
    word first with ``padding`` before the sentence start (``hs_ngram_bases``): -1 where an
    order reaches the padding."""
    cdef Py_ssize_t n_rows = contexts.shape[0], row
    if n_orders < 0 or n_orders > contexts.shape[1]:
        raise ValueError(f"{n_orders} orders need at least as many context columns")
    if modulus < 1:
        raise ValueError("the modulus must be positive")
    out_arr = np.empty((n_rows, n_orders), dtype=np.int64)
    if n_rows == 0 or n_orders == 0:
        return out_arr
    cdef cnp.int64_t[:, ::1] out = out_arr
    with nogil:
        for row in range(n_rows):
            ngram_bases(&contexts[row, 0], n_orders, padding, modulus, &out[row, 0])
    return out_arr


cdef Py_ssize_t best_first_mixed(
    const float* hidden,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
    Frontier* frontier,
    const float* table,
    const cnp.int64_t* bases,
    Py_ssize_t n_bases,
    double weight,
    const double* word_cache,
    const double* node_cache,
    int* out_ids,
    double* out_probs,
) noexcept nogil:
    """Exact top-k of the mixture (1 - weight) * P_tree(w) + weight * C(w) by best-first
    search in probability space. An inner node's priority is an upper bound of the mixture
    over its leaves, (1 - weight) * P(node) + weight * max C below it (``node_cache``); a leaf's
    is its exact mixture probability, so the leaves come off the frontier best first."""
    cdef Py_ssize_t n_dims = weights.shape[1]
    cdef Py_ssize_t found = 0
    cdef double score, path, d, branch, negative, child_path
    cdef int item, child, c, word
    frontier.size = 0
    # An inner node's tree probability is recovered from its priority when it is popped,
    # P(node) = (priority - weight * bound) / (1 - weight): no second heap.
    if frontier_push(frontier, (1 - weight) + weight * node_cache[root], root) != 0:
        return -1
    while found < k and frontier.size > 0:
        frontier_pop(frontier, &score, &item)
        if item < 0:
            out_ids[found] = -(item + 1)
            out_probs[found] = score
            found += 1
            continue
        path = (score - weight * node_cache[item]) / (1 - weight)
        d = dot(hidden, &weights[item, 0], n_dims)
        if n_bases:
            d += node_term(table, bases, n_bases, item)
        branch = log_sigmoid_pair(d, &negative)
        for c in range(2):
            child = children[item, c]
            child_path = path * exp(branch if c == 0 else negative)
            if child < 0:
                word = -(child + 1)
                score = (1 - weight) * child_path + weight * word_cache[word]
            else:
                score = (1 - weight) * child_path + weight * node_cache[child]
            if frontier_push(frontier, score, child) != 0:
                return -1
    return found


def top_k_mixed(
    const float[:, ::1] hidden,
    const float[:, ::1] weights,
    const int[:, ::1] children,
    int root,
    Py_ssize_t k,
    const int[::1] windows,
    const cnp.int64_t[::1] window_offsets,
    double weight,
    const cnp.int64_t[::1] path_offsets,
    const int[::1] path_nodes,
    const float[::1] table=None,
    const cnp.int64_t[:, ::1] bases=None,
):
    """The exact top-k of (1 - weight) * P(w | hidden[b]) + weight * C_b(w) for each row b,
    where C_b is the unigram distribution of the cache's word ids
    ``windows[window_offsets[b]:window_offsets[b + 1]]``: each cache word's share goes to its
    leaf and, as a maximum, to every inner node on its path (undone after the row), then one
    best-first search. ``table`` and ``bases`` (B, F) add the node term (see ``top_k``).
    Returns (word ids int32 (B, k), probabilities float64 (B, k)), best first."""
    cdef Py_ssize_t n_rows = hidden.shape[0]
    cdef Py_ssize_t n_inner = children.shape[0], n_words = n_inner + 1
    cdef Py_ssize_t row, i, found = k, start, end
    cdef cnp.int64_t step
    cdef int word
    cdef double share
    cdef Frontier frontier
    check_tree(weights, children, root, hidden.shape[1])
    if not 0 <= weight < 1:
        raise ValueError(f"weight {weight} is not in [0, 1)")
    if k < 1 or k > n_words:
        raise ValueError(f"k={k} must lie in [1, {n_words}], the number of words")
    if path_offsets.shape[0] != n_words + 1:
        raise ValueError("the paths do not fit the tree")
    if window_offsets.shape[0] != n_rows + 1 or window_offsets[0] != 0:
        raise ValueError("window_offsets must hold one offset per row, and one more")
    for row in range(n_rows):
        if window_offsets[row + 1] < window_offsets[row]:
            raise ValueError("window_offsets must not decrease")
    if window_offsets[n_rows] != windows.shape[0]:
        raise ValueError("window_offsets do not match windows")
    cdef Py_ssize_t n_bases = check_node_term(table, bases, n_rows, n_inner)
    cdef const float* table_ptr = &table[0] if n_bases else NULL
    for i in range(windows.shape[0]):
        if windows[i] < 0 or windows[i] >= n_words:
            raise IndexError(f"word id {windows[i]} is out of range [0, {n_words})")
    word_cache_arr = np.zeros(n_words, dtype=np.float64)
    node_cache_arr = np.zeros(n_inner, dtype=np.float64)
    cdef double[::1] word_cache = word_cache_arr, node_cache = node_cache_arr
    ids_arr = np.empty((n_rows, k), dtype=np.int32)
    probs_arr = np.empty((n_rows, k), dtype=np.float64)
    if n_rows == 0:
        return ids_arr, probs_arr
    cdef int[:, ::1] ids = ids_arr
    cdef double[:, ::1] probs = probs_arr
    if frontier_init(&frontier) != 0:
        frontier_free(&frontier)
        raise MemoryError()
    try:
        with nogil:
            for row in range(n_rows):
                start, end = window_offsets[row], window_offsets[row + 1]
                share = 1.0 / (end - start) if end > start else 0.0
                for i in range(start, end):
                    word_cache[windows[i]] += share
                for i in range(start, end):
                    word = windows[i]
                    for step in range(path_offsets[word], path_offsets[word + 1]):
                        if node_cache[path_nodes[step]] < word_cache[word]:
                            node_cache[path_nodes[step]] = word_cache[word]
                found = best_first_mixed(
                    &hidden[row, 0], weights, children, root, k, &frontier,
                    table_ptr, &bases[row, 0] if n_bases else NULL, n_bases,
                    weight, &word_cache[0], &node_cache[0], &ids[row, 0], &probs[row, 0],
                )
                for i in range(start, end):  # back to zeros for the next row
                    word = windows[i]
                    word_cache[word] = 0.0
                    for step in range(path_offsets[word], path_offsets[word + 1]):
                        node_cache[path_nodes[step]] = 0.0
                if found != k:
                    break
    finally:
        frontier_free(&frontier)
    check_found(found, k)
    return ids_arr, probs_arr


def lbl_path_log_probs(
    const float[:, ::1] vectors,
    const float[::1] padding,
    const float[::1] positions,
    const float[::1] bias,
    const int[:, ::1] contexts,
    bint diagonal,
    const int[::1] word_ids,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets,
    const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
    const float[::1] table=None,
    Py_ssize_t n_orders=0,
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
    cdef Py_ssize_t n_words = path_offsets.shape[0] - 1, row
    cdef cnp.uint64_t modulus = 1
    if word_ids.shape[0] != n_rows:
        raise ValueError("contexts and word_ids differ in length")
    check_lbl(vectors, padding, positions, bias, contexts, diagonal)
    if weights.shape[1] != n_dims + 1 or weights.shape[0] < n_words - 1:
        raise ValueError("the output weights do not fit the vectors and the tree")
    if n_orders:
        if table is None or n_orders < 0 or n_orders > size or table.shape[0] < n_words:
            raise ValueError("n-gram features need a table of at least V values and K >= N")
        modulus = table.shape[0] - (n_words - 1)
    for row in range(n_rows):
        if word_ids[row] >= n_words:
            raise IndexError(f"word id {word_ids[row]} is out of range [0, {n_words})")
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
            lbl_row(
                vectors, padding, positions, bias, &contexts[row, 0], size, diagonal, gathered,
                hidden,
            )
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
