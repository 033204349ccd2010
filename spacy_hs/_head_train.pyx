# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled training kernels of the tree heads (head_engine.py drives them).

The model is the one heads/directional.py and heads/ngram.py define (d = vector size, K =
context size, N = n-gram orders, 0 for the directional head)::

    hidden = sum over i = 1..K of C_i * vec(w_{t-i}) + b, then a constant 1 appended
    logit(n) = hidden . W[n] + sum over k = 1..N of M[offset_k(w_{t-1}, ..., w_{t-k}) + n]
    log P(w | context) = sum over the nodes n on w's path of log_sigmoid(margin(logit(n)))

with the hidden vector, the n-gram offsets, the node term, the log-sigmoids and their gradients
from _hs_kernels.h, the code the inference kernels (_path_scores.pyx) score with. Training
maximises the log-likelihood by stochastic gradient ascent, one next-word prediction at a time,
as word2vec does:

* each worker thread streams its own chunks of an encoded token file (int32 word ids, -1 after
  each sentence; head_engine.py writes it) through a fixed buffer, so memory does not grow with
  the corpus;
* several threads update the shared arrays without locks (Hogwild, as word2vec.c and gensim);
* only the rows a prediction touches are updated: the K context rows of the input vectors and
  the path's rows of the output weights. The small dense parameters (C, b) are accumulated per
  thread and applied every FLUSH predictions, which keeps threads from fighting over their cache
  lines;
* L2 is applied to the rows a prediction touches, as part of their update (row += rate *
  (gradient - l2 * row)): rows not touched are not decayed. The table's values are updated
  the same way, with their own step size and L2;
* context dropout zeroes entries of the gathered context vectors (inverted dropout), masks read
  at a random offset of a fixed random 0/1 pool;
* the optimiser is SGD (the driver sets the learning rate per chunk) or row-wise AdaGrad (one
  accumulator per row of the sparse arrays: the mean squared gradient of the row).
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport sqrt
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport FILE, SEEK_SET, fclose, fopen, fread
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from spacy_hs._hs_math cimport path_log_prob

cnp.import_array()

cdef extern from "stdio.h" nogil:
    int fseeko(FILE* stream, int64_t offset, int whence)

cdef enum:
    # Predictions between two updates of the dense parameters by a worker.
    FLUSH = 256
    # Word ids read from the file at a time.
    BUFFER = 16384
    SENTENCE_END = -1

cdef double ADAM_BETA1 = 0.9, ADAM_BETA2 = 0.999, ADAM_EPS = 1e-8

OPTIMIZERS = {"sgd": 0, "adagrad": 1}


cdef extern from "_head_train.h" nogil:
    ctypedef struct hs_head:
        float* inputs
        float* positions
        float* bias
        float* outputs
        float* table
        float* input_accum
        float* output_accum
        const cnp.int64_t* path_offsets
        const int* path_nodes
        const unsigned char* path_codes
        Py_ssize_t n_words, n_dims, context_size, n_orders
        uint64_t modulus
        int diagonal, fine_tune
        double l2, table_l2
        const float* keep_pool
        Py_ssize_t pool_size

    ctypedef struct hs_step:
        double learn_rate
        double table_rate
        int train
        float* d_inputs
        float* d_outputs
        float* d_positions
        float* d_bias
        float* d_table

    ctypedef struct hs_buffers:
        float* gathered
        float* hidden
        float* d_hidden
        float* d_context
        double* logits
        double* gradients
        int* context
        int64_t* bases
        uint64_t rng

    void head_hidden "hs_head_hidden"(const hs_head* p, hs_buffers* b, const float* keep) noexcept
    Py_ssize_t head_bases "hs_head_bases"(const hs_head* p, hs_buffers* b) noexcept
    double predict "hs_head_predict"(
        const hs_head* p, hs_buffers* b, const hs_step* step, int target
    ) noexcept


cdef struct Params:
    # The model, for the C step, and what only this module uses.
    hs_head head
    Py_ssize_t max_depth
    int optimizer
    # Adam's moments for the dense parameters: (2, len(positions)) and (2, d).
    float* positions_moments
    float* bias_moments
    double adam_step       # Adam's update count (shared; races only perturb it)
    bint dense_sgd


cdef inline void push_context(Params* p, hs_buffers* b, int word) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(p.head.context_size - 1, 0, -1):
        b.context[i] = b.context[i - 1]
    b.context[0] = word


cdef inline void reset_context(Params* p, hs_buffers* b) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(p.head.context_size):
        b.context[i] = <int>p.head.n_words


cdef inline double score(hs_head* head, hs_buffers* b, int target) noexcept nogil:
    """log P(target | context), no dropout: the hidden vector and n-gram offsets, then the
    inference kernel."""
    cdef Py_ssize_t n_bases = head_bases(head, b)
    head_hidden(head, b, NULL)
    return path_log_prob(
        b.hidden, head.outputs, head.n_dims + 1, head.path_offsets, head.path_nodes,
        head.path_codes, target, head.table, <const cnp.int64_t*>b.bases, n_bases,
    )


cdef class Worker:
    """One thread's buffers and random state (not shared between threads)."""

    cdef hs_buffers buffers
    cdef float* positions_grad
    cdef float* bias_grad
    cdef int* ids
    cdef Py_ssize_t n_pending

    def __cinit__(self, HeadTrainer trainer, uint64_t seed):
        cdef Params* p = &trainer.params
        cdef Py_ssize_t d = p.head.n_dims, K = p.head.context_size
        cdef Py_ssize_t n_positions = K * d if p.head.diagonal else K * d * d
        self.buffers.gathered = <float*>malloc(K * d * sizeof(float))
        self.buffers.hidden = <float*>malloc((d + 1) * sizeof(float))
        self.buffers.d_hidden = <float*>malloc((d + 1) * sizeof(float))
        self.buffers.d_context = <float*>malloc(K * d * sizeof(float))
        self.buffers.logits = <double*>malloc(max(p.max_depth, 1) * sizeof(double))
        self.buffers.gradients = <double*>malloc(max(p.max_depth, 1) * sizeof(double))
        self.buffers.context = <int*>malloc(K * sizeof(int))
        self.buffers.bases = <int64_t*>malloc(max(p.head.n_orders, 1) * sizeof(int64_t))
        self.buffers.rng = seed
        self.positions_grad = <float*>malloc(n_positions * sizeof(float))
        self.bias_grad = <float*>malloc(d * sizeof(float))
        self.ids = <int*>malloc(BUFFER * sizeof(int))
        if (
            self.buffers.gathered == NULL or self.buffers.hidden == NULL
            or self.buffers.d_hidden == NULL or self.buffers.d_context == NULL
            or self.buffers.logits == NULL or self.buffers.gradients == NULL
            or self.buffers.context == NULL or self.buffers.bases == NULL
            or self.positions_grad == NULL
            or self.bias_grad == NULL or self.ids == NULL
        ):
            raise MemoryError()
        memset(self.positions_grad, 0, n_positions * sizeof(float))
        memset(self.bias_grad, 0, d * sizeof(float))
        self.n_pending = 0

    def __dealloc__(self):
        free(self.buffers.gathered)
        free(self.buffers.hidden)
        free(self.buffers.d_hidden)
        free(self.buffers.d_context)
        free(self.buffers.logits)
        free(self.buffers.gradients)
        free(self.buffers.context)
        free(self.buffers.bases)
        free(self.positions_grad)
        free(self.bias_grad)
        free(self.ids)


cdef inline void adam_update(
    float* values, float* moments, float* grads, Py_ssize_t n, double rate,
    double correction1, double correction2, double scale,
) noexcept nogil:
    cdef Py_ssize_t j
    cdef double g, m, v
    for j in range(n):
        g = grads[j] * scale
        m = moments[j] = <float>(ADAM_BETA1 * moments[j] + (1 - ADAM_BETA1) * g)
        v = moments[n + j] = <float>(ADAM_BETA2 * moments[n + j] + (1 - ADAM_BETA2) * g * g)
        values[j] = values[j] + <float>(
            rate * (m / correction1) / (sqrt(v / correction2) + ADAM_EPS)
        )
        grads[j] = 0


cdef void flush_dense(Params* p, Worker w, double rate) noexcept nogil:
    """Apply a worker's accumulated gradient of C and b to the shared parameters: one Adam
    step on the mean gradient of its pending predictions (the dense parameters see every
    prediction, so they get a minibatch optimiser), or with ``dense_optimizer = "sgd"`` a plain
    step on their sum."""
    cdef Py_ssize_t d = p.head.n_dims, K = p.head.context_size
    cdef Py_ssize_t n_positions = K * d if p.head.diagonal else K * d * d
    cdef double t, correction1, correction2
    cdef Py_ssize_t j
    if w.n_pending == 0:
        return
    if p.dense_sgd:  # plain SGD on the summed gradient: per-prediction steps, applied late
        for j in range(n_positions):
            p.head.positions[j] += <float>(rate * w.positions_grad[j])
            w.positions_grad[j] = 0
        for j in range(d):
            p.head.bias[j] += <float>(rate * w.bias_grad[j])
            w.bias_grad[j] = 0
        w.n_pending = 0
        return
    p.adam_step += 1
    t = p.adam_step
    correction1 = 1 - ADAM_BETA1 ** t
    correction2 = 1 - ADAM_BETA2 ** t
    adam_update(
        p.head.positions, p.positions_moments, w.positions_grad, n_positions, rate,
        correction1, correction2, 1.0 / w.n_pending,
    )
    adam_update(
        p.head.bias, p.bias_moments, w.bias_grad, d, rate, correction1, correction2,
        1.0 / w.n_pending,
    )
    w.n_pending = 0


cdef int run_chunk(
    Params* p, Worker w, FILE* f, int64_t start, int64_t end, hs_step* step,
    double dense_rate, double* log_likelihood, int64_t* n_predictions,
) noexcept nogil:
    """Read the sentences whose first word lies in [start, end) of the encoded file and predict
    each of their words (a sentence that starts before `start` belongs to the chunk before).
    Returns -1 on a read error."""
    cdef hs_buffers* b = &w.buffers
    cdef int64_t position = start - 1 if start > 0 else 0
    cdef Py_ssize_t n_read = 0, i = 0
    cdef bint skipping = start > 0
    cdef bint first = start > 0  # position start - 1: is it a sentence end?
    cdef int word
    cdef double total = 0.0
    cdef int64_t count = 0
    if fseeko(f, position * <int64_t>sizeof(int), SEEK_SET) != 0:
        return -1
    reset_context(p, b)
    while True:
        if i == n_read:
            n_read = fread(w.ids, sizeof(int), BUFFER, f)
            i = 0
            if n_read == 0:
                break
        word = w.ids[i]
        i += 1
        if first:
            first = False
            skipping = word != SENTENCE_END
            position += 1
            continue
        if skipping:
            if word == SENTENCE_END:
                skipping = False
                if position + 1 >= end:
                    break
            position += 1
            continue
        if word == SENTENCE_END:
            reset_context(p, b)
            if position + 1 >= end:
                break
            position += 1
            continue
        if step.train or step.learn_rate != 0:
            total += predict(&p.head, b, step, word)
        else:
            total += score(&p.head, b, word)
        count += 1
        push_context(p, b, word)
        position += 1
        if step.train:
            w.n_pending += 1
            if w.n_pending == FLUSH:
                flush_dense(p, w, dense_rate)
    if step.train and w.n_pending:
        flush_dense(p, w, dense_rate)
    log_likelihood[0] = total
    n_predictions[0] = count
    return 0


cdef tuple run_file(
    Params* p, Worker w, bytes path, int64_t start, int64_t end, hs_step* step,
    double dense_rate,
):
    """``run_chunk`` on the encoded file at ``path``, without the GIL: (sum of log P, number of
    predictions); OSError if the file cannot be read."""
    cdef double total = 0.0
    cdef int64_t count = 0
    cdef int status
    cdef const char* c_path = path
    cdef FILE* f
    with nogil:
        f = fopen(c_path, "rb")
        if f == NULL:
            status = -1
        else:
            status = run_chunk(p, w, f, start, end, step, dense_rate, &total, &count)
            fclose(f)
    if status != 0:
        raise OSError(f"cannot read {path.decode()}")
    return total, count


cdef class HeadTrainer:
    """The head's parameters as shared float32 arrays, and the kernels that train and score them.

    All arrays are kept (not copied) and updated in place: inputs (V + 1, d) with the padding
    vector as row V, positions (K, d) or (d, K * d), bias (d,), outputs (V - 1, d + 1), and
    with ``n_orders`` > 0 the n-gram features' table (T,), T >= V - 1 + 1.
    """

    cdef Params params
    cdef readonly object inputs, positions, bias, outputs, table
    cdef object _accums, _tree, _pool

    def __init__(
        self,
        float[:, ::1] inputs not None,
        float[::1] positions not None,
        float[::1] bias not None,
        float[:, ::1] outputs not None,
        const cnp.int64_t[::1] path_offsets not None,
        const int[::1] path_nodes not None,
        const unsigned char[::1] path_codes not None,
        *,
        Py_ssize_t context_size,
        bint diagonal,
        bint fine_tune,
        str optimizer,
        double dropout,
        uint64_t seed,
        double l2,
        Py_ssize_t n_orders,
        double table_l2,
        str dense_optimizer,
        float[::1] table=None,
        Py_ssize_t pool_size=1 << 18,
    ):
        cdef Py_ssize_t n_words = inputs.shape[0] - 1, d = inputs.shape[1]
        cdef Py_ssize_t n_positions = context_size * d if diagonal else context_size * d * d
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if n_words < 2 or outputs.shape[0] != n_words - 1 or outputs.shape[1] != d + 1:
            raise ValueError("output weights must be (V - 1, d + 1) for inputs (V + 1, d)")
        if positions.shape[0] != n_positions or bias.shape[0] != d or context_size < 1:
            raise ValueError("position weights or bias do not fit the context size and width")
        if path_offsets.shape[0] != n_words + 1 or path_offsets[0] != 0:
            raise ValueError("the tree's paths do not fit the vocabulary")
        if path_offsets[n_words] != path_nodes.shape[0] or path_nodes.shape[0] != path_codes.shape[0]:
            raise ValueError("the tree's path arrays differ in length")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout {dropout} is not in [0, 1)")
        if n_orders < 0 or n_orders > context_size:
            raise ValueError(f"{n_orders} n-gram orders for a context of {context_size} words")
        if n_orders and (table is None or table.shape[0] < n_words):
            raise ValueError(f"n-gram features need a table of at least {n_words} values")
        self.inputs, self.positions, self.bias, self.outputs = (
            inputs.base, positions.base, bias.base, outputs.base
        )
        self.table = table.base if n_orders else None
        self._tree = (path_offsets, path_nodes, path_codes)
        p = &self.params
        p.head.inputs = &inputs[0, 0]
        p.head.positions = &positions[0]
        p.head.bias = &bias[0]
        p.head.outputs = &outputs[0, 0]
        p.head.table = &table[0] if n_orders else NULL
        p.head.n_orders = n_orders
        p.head.modulus = table.shape[0] - (n_words - 1) if n_orders else 1
        p.head.path_offsets = &path_offsets[0]
        p.head.path_nodes = &path_nodes[0]
        p.head.path_codes = &path_codes[0]
        p.head.n_words = n_words
        p.head.n_dims = d
        p.head.context_size = context_size
        p.head.l2 = l2
        p.head.table_l2 = table_l2
        p.max_depth = int(np.diff(np.asarray(path_offsets)).max())
        p.head.diagonal = diagonal
        p.head.fine_tune = fine_tune
        p.optimizer = OPTIMIZERS[optimizer]
        if dense_optimizer not in ("adam", "sgd"):
            raise ValueError(f"dense_optimizer {dense_optimizer!r} is not adam or sgd")
        p.dense_sgd = dense_optimizer == "sgd"
        self._accums = []
        p.head.input_accum = p.head.output_accum = NULL
        if p.optimizer == 1:
            p.head.input_accum = self._zeros(n_words + 1)
            p.head.output_accum = self._zeros(n_words - 1)
        p.positions_moments = self._zeros(2 * n_positions)
        p.bias_moments = self._zeros(2 * d)
        p.adam_step = 0
        p.head.keep_pool = NULL
        p.head.pool_size = 1
        cdef const float[::1] pool
        if dropout > 0:
            rng = np.random.default_rng(seed)
            keep = rng.random(pool_size + context_size * d) >= dropout
            self._pool = keep.astype(np.float32) / np.float32(1.0 - dropout)
            pool = self._pool
            p.head.keep_pool = &pool[0]
            p.head.pool_size = pool_size

    cdef float* _zeros(self, Py_ssize_t n) except NULL:
        array = np.zeros(max(n, 1), dtype=np.float32)
        self._accums.append(array)
        cdef float[::1] view = array
        return &view[0]

    @property
    def n_words(self) -> int:
        return self.params.head.n_words

    def worker(self, uint64_t seed) -> Worker:
        """Buffers for one thread."""
        return Worker(self, seed)

    def train_chunk(
        self, Worker worker, bytes path, int64_t start, int64_t end, double learn_rate,
        double dense_rate, double table_rate,
    ):
        """Train on the sentences starting in [start, end) of the encoded file at ``path``
        (ids, not bytes), one prediction at a time, at ``learn_rate`` (the sparse rows),
        ``dense_rate`` (Adam's step size for C and b) and ``table_rate`` (the n-gram table).
        Returns (sum of log P over the predictions, with dropout; number of predictions).
        Releases the GIL."""
        cdef hs_step step
        step.learn_rate = learn_rate
        step.table_rate = table_rate
        step.train = True
        step.d_inputs = self.params.head.inputs
        step.d_outputs = self.params.head.outputs
        step.d_positions = worker.positions_grad
        step.d_bias = worker.bias_grad
        step.d_table = self.params.head.table
        return run_file(&self.params, worker, path, start, end, &step, dense_rate)

    def score_chunk(self, Worker worker, bytes path, int64_t start, int64_t end):
        """Sum of log P and number of predictions over [start, end) of an encoded file, with
        no dropout and no update (the held-out score). Releases the GIL."""
        cdef hs_step step
        memset(&step, 0, sizeof(hs_step))
        return run_file(&self.params, worker, path, start, end, &step, 0)

    def log_probs(self, const int[:, ::1] contexts not None, const int[::1] targets not None):
        """log P(targets[i] | contexts[i]) (float64), contexts as rows of K ids, most recent
        first, ``V`` for padding, as the held-out score computes it: the hidden vector and
        n-gram offsets, then the inference kernel's ``path_log_prob`` (that of _tree_search)."""
        cdef Py_ssize_t n = targets.shape[0], row
        self._check_batch(contexts, targets)
        out = np.empty(n, dtype=np.float64)
        cdef double[::1] out_view = out
        cdef Worker w = Worker(self, 0)
        with nogil:
            for row in range(n):
                self._set_context(w, &contexts[row, 0])
                out_view[row] = score(&self.params.head, &w.buffers, targets[row])
        return out

    def gradient(self, const int[:, ::1] contexts not None, const int[::1] targets not None):
        """log P(targets[i] | contexts[i]) by the training kernel's forward pass, and the
        gradient of their sum with respect to (inputs, positions, bias, outputs, table) by its
        backward pass: the code that makes every update, here with no dropout, L2 or optimiser
        state. Returns (log-probabilities float64, then five float32 arrays shaped as the
        parameters; the last None without a table)."""
        cdef Py_ssize_t n = targets.shape[0], row
        self._check_batch(contexts, targets)
        d_inputs = np.zeros_like(self.inputs)
        d_positions = np.zeros_like(self.positions)
        d_bias = np.zeros_like(self.bias)
        d_outputs = np.zeros_like(self.outputs)
        d_table = None if self.table is None else np.zeros_like(self.table)
        cdef float[:, ::1] di = d_inputs, do = d_outputs
        cdef float[::1] dp = d_positions, db = d_bias
        cdef float[::1] dt
        cdef hs_step step
        memset(&step, 0, sizeof(hs_step))
        step.learn_rate = 1.0
        step.table_rate = 1.0
        step.d_inputs = &di[0, 0]
        step.d_outputs = &do[0, 0]
        step.d_positions = &dp[0]
        step.d_bias = &db[0]
        if d_table is not None:
            dt = d_table
            step.d_table = &dt[0]
        cdef Worker w = Worker(self, 0)
        out = np.empty(n, dtype=np.float64)
        cdef double[::1] out_view = out
        with nogil:
            for row in range(n):
                self._set_context(w, &contexts[row, 0])
                out_view[row] = predict(&self.params.head, &w.buffers, &step, targets[row])
        return out, d_inputs, d_positions, d_bias, d_outputs, d_table

    cdef void _set_context(self, Worker w, const int* ids) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(self.params.head.context_size):
            w.buffers.context[i] = ids[i]

    def _check_batch(self, const int[:, ::1] contexts, const int[::1] targets):
        if contexts.shape[0] != targets.shape[0] or contexts.shape[1] != self.params.head.context_size:
            raise ValueError("contexts must be (n, context_size) for n targets")
        if np.asarray(contexts).size and not (
            0 <= np.asarray(contexts).min() and np.asarray(contexts).max() <= self.params.head.n_words
        ):
            raise IndexError("a context id is out of range")
        if targets.shape[0] and not (
            0 <= np.asarray(targets).min() and np.asarray(targets).max() < self.params.head.n_words
        ):
            raise IndexError("a target id is out of range")
