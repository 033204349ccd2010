# cython: language_level=3
"""Declarations of the shared tree kernels (C in _hs_kernels.h), cimported by the inference
kernels (_search.pyx, _path_scores.pyx, _hidden.pyx) and the head's training kernels
(_head_train.pyx): one definition of the path log-likelihood, the node term, the directional
hidden vector and the n-gram hash for both."""

cimport numpy as cnp


cdef extern from "_hs_kernels.h" nogil:
    double dot "hs_dot"(const float* a, const float* b, Py_ssize_t n) noexcept
    double path_log_prob "hs_path_log_prob"(
        const float* hidden, const float* weights, Py_ssize_t n_dims,
        const cnp.int64_t* path_offsets, const int* path_nodes, const unsigned char* path_codes,
        int word, const float* table, const cnp.int64_t* bases, Py_ssize_t n_bases,
    ) noexcept
    double node_term "hs_node_term"(
        const float* table, const cnp.int64_t* bases, Py_ssize_t n_bases, int node
    ) noexcept
    void lbl_hidden "hs_lbl_hidden"(
        const float* gathered, const float* positions, const float* bias,
        Py_ssize_t context_size, Py_ssize_t n_dims, bint diagonal, float* hidden,
    ) noexcept
    void ngram_bases "hs_ngram_bases"(
        const int* context, Py_ssize_t n_orders, int padding, cnp.uint64_t modulus,
        cnp.int64_t* bases,
    ) noexcept
    int NGRAM_HASH_VERSION "HS_NGRAM_HASH_VERSION"
    double log_sigmoid_pair "hs_log_sigmoid_pair"(double x, double* negative) noexcept
    Py_ssize_t context_hidden_row "hs_context_hidden"(
        const float* vectors, Py_ssize_t n_dims, const int* ids, Py_ssize_t width, bint mean,
        float* out,
    ) noexcept
