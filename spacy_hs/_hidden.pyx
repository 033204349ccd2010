# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hidden vectors of contexts: the CBOW sum or mean of context vectors, the directional
(log-bilinear) hidden vector, and the n-gram features' table offsets, for batches of contexts.
Each row is built by the C kernels of _hs_kernels.h, the definitions training uses.
"""

import numpy as np

cimport numpy as cnp
from libc.stdlib cimport free, malloc

from spacy_hs._hs_math cimport NGRAM_HASH_VERSION, context_hidden_row, ngram_bases
from spacy_hs._tree_checks cimport LBL, check_context_ids, check_lbl, lbl_row, sum_rows

cnp.import_array()


NGRAM_HASH = NGRAM_HASH_VERSION


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


def context_hidden_matrix(const float[:, ::1] vectors, const int[:, ::1] context_ids, bint mean):
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


def lbl_hidden_matrix(
    const float[:, ::1] vectors, const float[::1] padding, const float[::1] positions,
    const float[::1] bias, const int[:, ::1] contexts, bint diagonal,
):
    """Directional (log-bilinear) hidden vectors, float32 (B, d + 1), by ``hs_lbl_hidden``
    (the training step's definition). ``contexts[:, i]`` is the (i+1)-th most recent word; the
    id ``len(vectors)`` stands for ``padding``. ``positions`` is C flattened: (K, d) diagonal,
    (d, K * d) full."""
    cdef Py_ssize_t n_rows = contexts.shape[0]
    cdef Py_ssize_t size = contexts.shape[1]
    cdef Py_ssize_t n_dims = vectors.shape[1]
    cdef Py_ssize_t row
    cdef LBL lbl
    check_lbl(vectors, padding, positions, bias, contexts, diagonal, &lbl)
    hidden_arr = np.empty((n_rows, n_dims + 1), dtype=np.float32)
    if n_rows == 0:
        return hidden_arr
    cdef float[:, ::1] hidden = hidden_arr
    cdef float* gathered = <float*>malloc(max(size * n_dims, 1) * sizeof(float))
    if gathered == NULL:
        raise MemoryError()
    with nogil:
        for row in range(n_rows):
            lbl_row(&lbl, &contexts[row, 0], gathered, &hidden[row, 0])
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
