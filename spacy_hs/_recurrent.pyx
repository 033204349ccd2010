# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The recurrent head's compiled kernel: the tree's loss for a batch of hidden vectors, and
its gradients (training, ``training/recurrent.py``).

For each row b, with ``hidden[b]`` the head's hidden vector and ``targets[b]`` the next word::

    logit(n) = hidden[b] . weights[n] + node term (the n-gram table, optional)
    log P(target | b) = sum over the nodes n on the target's path of log_sigmoid(margin(logit(n)))

The logits, the path log-likelihood and each logit's gradient come from _hs_kernels.h
(``hs_path_log_prob_logits``), the code the inference kernels score with. Gradients are of the
*negative* log-likelihood, scaled by ``scale``: ``d_hidden`` (written) and ``d_weights``
(accumulated: the dense gradient of the output weights, for thinc's optimizer). The node term's
table, being sparse and large, is updated in place by SGD on the log-likelihood (row += rate *
(gradient - l2 * value)), as the n-gram head's engine updates it.
"""

import numpy as np

cimport numpy as cnp
from libc.stdlib cimport free, malloc

from spacy_hs._hs_math cimport dot, node_term

cnp.import_array()


cdef extern from "_hs_kernels.h" nogil:
    double path_log_prob_logits "hs_path_log_prob_logits"(
        const double* logits, const unsigned char* codes, Py_ssize_t depth, double* gradients
    ) noexcept


def path_loss_gradients(
    const float[:, ::1] hidden, const int[::1] targets,
    const float[:, ::1] weights,
    const cnp.int64_t[::1] path_offsets, const int[::1] path_nodes,
    const unsigned char[::1] path_codes,
    float[:, ::1] d_hidden, float[:, ::1] d_weights, double scale,
    float[::1] table, const cnp.int64_t[:, ::1] bases, double table_rate, double table_l2,
):
    """Sum of log P(targets[b] | hidden[b]) over the rows (targets < 0 skipped), float; fills
    ``d_hidden`` (B, d) and adds to ``d_weights`` (V - 1, d) the gradients of ``-scale`` times
    it; updates ``table`` in place where ``bases`` (B, F; -1 absent) reach it (both None: no
    node term)."""
    cdef Py_ssize_t n_rows = hidden.shape[0], d = hidden.shape[1], n_words = path_offsets.shape[0] - 1
    cdef Py_ssize_t row, step, j, depth, max_depth = 0, n_bases = 0, f
    cdef cnp.int64_t start, end
    cdef int node, target
    cdef double total = 0.0, g, value
    cdef double* logits
    cdef double* gradients
    cdef const float* h
    cdef float* w
    cdef float* dh
    if weights.shape[1] != d or d_hidden.shape[0] != n_rows or d_hidden.shape[1] != d:
        raise ValueError("hidden, weights and d_hidden disagree on their widths")
    if d_weights.shape[0] != weights.shape[0] or d_weights.shape[1] != d:
        raise ValueError("d_weights must have the shape of weights")
    if targets.shape[0] != n_rows:
        raise ValueError("one target per row of hidden")
    if (table is None) != (bases is None):
        raise ValueError("table and bases go together")
    if bases is not None:
        if bases.shape[0] != n_rows:
            raise ValueError("one row of bases per row of hidden")
        n_bases = bases.shape[1]
    for row in range(n_rows):
        target = targets[row]
        if target >= n_words:
            raise IndexError(f"target {target} is out of range [0, {n_words})")
        if target >= 0:
            depth = path_offsets[target + 1] - path_offsets[target]
            max_depth = max(max_depth, depth)
    logits = <double*>malloc(max(max_depth, 1) * sizeof(double))
    gradients = <double*>malloc(max(max_depth, 1) * sizeof(double))
    if logits == NULL or gradients == NULL:
        free(logits)
        free(gradients)
        raise MemoryError()
    try:
        with nogil:
            for row in range(n_rows):
                h = &hidden[row, 0]
                dh = &d_hidden[row, 0]
                for j in range(d):
                    dh[j] = 0.0
                target = targets[row]
                if target < 0:
                    continue
                start = path_offsets[target]
                end = path_offsets[target + 1]
                depth = end - start
                for step in range(depth):
                    node = path_nodes[start + step]
                    logits[step] = dot(h, &weights[node, 0], d)
                    if n_bases:
                        logits[step] += node_term(&table[0], &bases[row, 0], n_bases, node)
                total += path_log_prob_logits(logits, &path_codes[start], depth, gradients)
                for step in range(depth):
                    node = path_nodes[start + step]
                    g = gradients[step]  # d log P / d logit
                    w = &d_weights[node, 0]
                    for j in range(d):
                        dh[j] -= <float>(scale * g * weights[node, j])
                        w[j] -= <float>(scale * g * h[j])
                    if n_bases:
                        for f in range(n_bases):
                            if bases[row, f] >= 0:
                                value = table[bases[row, f] + node]
                                table[bases[row, f] + node] = <float>(
                                    value + table_rate * (g - table_l2 * value)
                                )
    finally:
        free(logits)
        free(gradients)
    return total
