# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact top-k searches over the hierarchical-softmax tree (best-first, with an optional cache
mixture).

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
from libc.math cimport exp, fabs, log1p
from libc.stdlib cimport free, malloc, realloc

from spacy_hs._hs_math cimport dot, log_sigmoid_pair, node_term
from spacy_hs._tree_checks cimport check_node_term, sum_rows

cnp.import_array()


# A max-heap of (log-probability, tree item) for best-first search.
cdef struct Frontier:
    double* score
    int* item
    Py_ssize_t size
    Py_ssize_t capacity


# The tree a search walks, checked once (``check_tree``) and read by pointer in the loops:
# output weights (n_inner, n_dims), children (n_inner, 2), the root, and the node term's table
# with its number of offsets per row (0: none).
cdef struct Tree:
    const float* weights
    Py_ssize_t n_dims
    const int* children
    int root
    const float* table
    Py_ssize_t n_bases


cdef inline void frontier_set(Frontier* f, Py_ssize_t i, double score, int item) noexcept nogil:
    f.score[i] = score
    f.item[i] = item


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


cdef int frontier_start(Frontier* f) except -1:
    """``frontier_init``, or MemoryError."""
    if frontier_init(f) != 0:
        frontier_free(f)
        raise MemoryError()
    return 0


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
        frontier_set(f, i, f.score[parent], f.item[parent])
        i = parent
    frontier_set(f, i, score, item)
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
        frontier_set(f, i, f.score[child], f.item[child])
        i = child
    frontier_set(f, i, last_score, last_item)


cdef inline double node_logit(
    const Tree* tree, const float* hidden, const cnp.int64_t* bases, int node
) noexcept nogil:
    """h . weights[node], plus the node term of the row's offsets ``bases`` if the tree has one."""
    cdef double d = dot(hidden, tree.weights + node * tree.n_dims, tree.n_dims)
    if tree.n_bases:
        d += node_term(tree.table, bases, tree.n_bases, node)
    return d


cdef Py_ssize_t best_first(
    const Tree* tree, const float* hidden, const cnp.int64_t* bases, Py_ssize_t k,
    Frontier* frontier, int* out_ids, double* out_log_probs, Py_ssize_t* n_expanded,
) noexcept nogil:
    """Exact top-k leaves by best-first search; returns how many were found (-1: out of memory).

    Log-probabilities only decrease going down the tree, so the first k leaves popped from the
    frontier are the k most probable words, in order. Only inner nodes at least as probable as
    the k-th word are expanded: about k times the depth for a peaked distribution.
    """
    cdef Py_ssize_t found = 0
    cdef double score, d, best_score, other_score, magnitude, loss
    cdef int item, best, other, flip
    frontier.size = 0
    n_expanded[0] = 0
    if frontier_push(frontier, 0.0, tree.root) != 0:
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
            d = node_logit(tree, hidden, bases, item)
            # The more probable branch is 1 when d < 0. Indexing with that, rather than swapping
            # after an unpredictable comparison, saves about a tenth of the search time. Its
            # log-sigmoid is -log1p(exp(-|d|)), the other's that minus |d|: the same values, bit
            # for bit, as log_sigmoid_pair gives. (Prefetching the children's rows cost more
            # than it saved, even at V = 1M.)
            flip = d < 0
            best = tree.children[2 * item + flip]
            other = tree.children[2 * item + 1 - flip]
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
    const float[:, ::1] weights, const int[:, ::1] children, int root, Py_ssize_t n_dims,
    Tree* tree,
) except -1:
    """Checks that the weights have ``n_dims`` columns and a row per inner node, and the root
    is an inner node, then sets ``tree`` (without a node term) to them."""
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
    tree.weights = &weights[0, 0]
    tree.n_dims = n_dims
    tree.children = &children[0, 0]
    tree.root = root
    tree.table = NULL
    tree.n_bases = 0
    return 0


cdef int check_found(Py_ssize_t found, Py_ssize_t k) except -1:
    """What a best-first search's count of leaves found means: -1 out of memory, fewer than k
    a tree that is not full."""
    if found < 0:
        raise MemoryError("tree search ran out of memory")
    if found != k:
        raise ValueError("the tree is not a full binary tree: a search ran out of leaves")
    return 0


def top_k(
    const float[:, ::1] hidden,
    const float[:, ::1] weights, const int[:, ::1] children, int root,
    Py_ssize_t k,
    const float[::1] table=None, const cnp.int64_t[:, ::1] bases=None,
):
    """Exact top-k words for each row of ``hidden``; with ``table`` and ``bases`` (B, F), each
    node's logit gains row b's node term (``hs_node_term``: table[bases[b, f] + node] summed
    over the row's non-negative offsets).

    Returns (word ids int32 (B, k), log-probabilities float64 (B, k), inner nodes expanded
    int64 (B,)). ``k`` must not exceed the vocabulary size.
    """
    cdef Py_ssize_t n_rows = hidden.shape[0]
    cdef Tree tree
    check_tree(weights, children, root, hidden.shape[1], &tree)
    tree.n_bases = check_node_term(table, bases, n_rows, children.shape[0])
    tree.table = &table[0] if tree.n_bases else NULL
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
    frontier_start(&frontier)
    try:
        with nogil:
            for row in range(n_rows):
                found = best_first(
                    &tree, &hidden[row, 0], &bases[row, 0] if tree.n_bases else NULL, k,
                    &frontier, &ids[row, 0], &log_probs[row, 0], &expanded[row],
                )
                if found != k:
                    break
    finally:
        frontier_free(&frontier)
    check_found(found, k)
    return ids_arr, log_probs_arr, expanded_arr


def top_k_context(
    const float[:, ::1] vectors, list context_ids, bint mean,
    const float[:, ::1] weights, const int[:, ::1] children, int root,
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
    cdef Tree tree
    check_tree(weights, children, root, n_dims, &tree)
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
                &tree, hidden, NULL, k, &frontier, out_ids, out_log_probs, &n_expanded
            )
        check_found(found, k)
        return [out_ids[i] for i in range(k)], [out_log_probs[i] for i in range(k)], n_expanded
    finally:
        free(ids)
        free(hidden)
        free(out_ids)
        free(out_log_probs)
        frontier_free(&frontier)


cdef Py_ssize_t best_first_mixed(
    const Tree* tree, const float* hidden, const cnp.int64_t* bases, Py_ssize_t k,
    Frontier* frontier, double weight, const double* word_cache, const double* node_cache,
    int* out_ids, double* out_probs,
) noexcept nogil:
    """Exact top-k of the mixture (1 - weight) * P_tree(w) + weight * C(w) by best-first
    search in probability space. An inner node's priority is an upper bound of the mixture
    over its leaves, (1 - weight) * P(node) + weight * max C below it (``node_cache``); a leaf's
    is its exact mixture probability, so the leaves come off the frontier best first."""
    cdef Py_ssize_t found = 0
    cdef double score, path, d, branch, negative, child_path
    cdef int item, child, c, word
    frontier.size = 0
    # An inner node's tree probability is recovered from its priority when it is popped,
    # P(node) = (priority - weight * bound) / (1 - weight): no second heap.
    if frontier_push(frontier, (1 - weight) + weight * node_cache[tree.root], tree.root) != 0:
        return -1
    while found < k and frontier.size > 0:
        frontier_pop(frontier, &score, &item)
        if item < 0:
            out_ids[found] = -(item + 1)
            out_probs[found] = score
            found += 1
            continue
        path = (score - weight * node_cache[item]) / (1 - weight)
        d = node_logit(tree, hidden, bases, item)
        branch = log_sigmoid_pair(d, &negative)
        for c in range(2):
            child = tree.children[2 * item + c]
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
    const float[:, ::1] weights, const int[:, ::1] children, int root,
    Py_ssize_t k,
    const int[::1] windows, const cnp.int64_t[::1] window_offsets,
    const double[::1] weights_per_row,
    const cnp.int64_t[::1] path_offsets, const int[::1] path_nodes,
    const float[::1] table=None, const cnp.int64_t[:, ::1] bases=None,
):
    """The exact top-k of (1 - λ_b) * P(w | hidden[b]) + λ_b * C_b(w) for each row b, with
    λ_b = ``weights_per_row[b]`` (the cache's weight at that row's history), where C_b is the
    unigram distribution of the cache's word ids
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
    cdef Tree tree
    check_tree(weights, children, root, hidden.shape[1], &tree)
    if weights_per_row.shape[0] != n_rows:
        raise ValueError("weights_per_row must hold one weight per row")
    for row in range(n_rows):
        if not 0 <= weights_per_row[row] < 1:
            raise ValueError(f"weight {weights_per_row[row]} is not in [0, 1)")
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
    tree.n_bases = check_node_term(table, bases, n_rows, n_inner)
    tree.table = &table[0] if tree.n_bases else NULL
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
    frontier_start(&frontier)
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
                    &tree, &hidden[row, 0], &bases[row, 0] if tree.n_bases else NULL, k,
                    &frontier, weights_per_row[row], &word_cache[0], &node_cache[0],
                    &ids[row, 0], &probs[row, 0],
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
