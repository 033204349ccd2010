/* One training step of a tree head (directional, optionally with n-gram node features): the
   forward pass, gradient and sparse update of one next-word prediction. Used by
   _head_train.pyx (which documents the model and the update rules). The hidden vector, the
   node term, the n-gram hash and the path log-likelihood come from _hs_kernels.h, the code the
   inference kernels use. In C so that it is compiled for AVX2 and for any x86-64 (HS_CLONES). */

#ifndef SPACY_HS_HEAD_TRAIN_H
#define SPACY_HS_HEAD_TRAIN_H

#include <string.h>

#include "_hs_kernels.h"

typedef struct {
    /* Shared parameters. */
    float* inputs;        /* (V + 1, d): input vectors, the padding vector as row V */
    float* positions;     /* diagonal: (K, d); full: (d, K * d) */
    float* bias;          /* (d,) */
    float* outputs;       /* (V - 1, d + 1): node weights, the node bias as the last column */
    float* table;         /* (T,): the n-gram features' node values; NULL: no features */
    /* Row-wise AdaGrad accumulators (NULL: plain SGD). */
    float* input_accum;   /* (V + 1,) */
    float* output_accum;  /* (V - 1,) */
    /* The tree. */
    const hs_offset_t* path_offsets;
    const int* path_nodes;
    const unsigned char* path_codes;
    /* Shapes and switches. */
    ptrdiff_t n_words, n_dims, context_size, n_orders;
    uint64_t modulus;     /* T - (V - 1): the n-gram offsets' range */
    int diagonal, fine_tune;
    double l2;            /* L2 of the sparse rows, applied to the rows a prediction touches */
    double table_l2;      /* the same for the table's values */
    /* Context dropout: a pool of keep factors (0 or 1 / (1 - rate)); NULL: no dropout. */
    const float* keep_pool;
    ptrdiff_t pool_size;
} hs_head;

typedef struct {
    double learn_rate;    /* 0: score only */
    double table_rate;    /* the table's step size */
    int train;            /* dropout, L2 and optimiser state on */
    /* Where the gradient steps go: the parameters when training; zeroed gradient arrays when
       computing a gradient (learn_rate 1, table_rate 1, train 0). C and b always go to an
       accumulator. */
    float* d_inputs;
    float* d_outputs;
    float* d_positions;
    float* d_bias;
    float* d_table;
} hs_step;

typedef struct {
    float* gathered;      /* (K * d): the context vectors as used (dropout applied) */
    float* hidden;        /* (d + 1) */
    float* d_hidden;      /* (d + 1) */
    float* d_context;     /* (K * d): full C only */
    double* logits;       /* (max depth) */
    double* gradients;    /* (max depth) */
    int* context;         /* (K): most recent first; V = padding */
    int64_t* bases;       /* (n_orders): the context's n-gram offsets, -1 absent */
    uint64_t rng;
} hs_buffers;

HS_INLINE uint64_t hs_next_random(uint64_t* state) { /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The step size of a row update with this squared gradient norm: the learning rate (SGD), or
   row-wise AdaGrad's learning_rate / sqrt(sum of the row's mean squared gradients). */
HS_INLINE double hs_row_rate(float* accum, double learn_rate, double squared_norm, ptrdiff_t n) {
    if (accum == NULL) return learn_rate;
    *accum += (float)(squared_norm / n);
    return learn_rate / sqrt(*accum + 1e-8);
}

/* row *= 1 - rate * l2: the L2 part of a touched row's update. */
HS_INLINE void hs_decay(float* row, ptrdiff_t n, double rate, double l2) {
    ptrdiff_t j;
    float factor = (float)(1.0 - rate * l2);
    if (l2 > 0)
        for (j = 0; j < n; j++) row[j] *= factor;
}

/* Gather the context rows (dropped out) and form the hidden vector (hs_lbl_hidden). */
HS_INLINE void hs_head_hidden(const hs_head* p, hs_buffers* b, const float* keep) {
    ptrdiff_t d = p->n_dims, K = p->context_size, i, j;
    for (i = 0; i < K; i++) {
        const float* row = p->inputs + (ptrdiff_t)b->context[i] * d;
        float* HS_RESTRICT x = b->gathered + i * d;
        if (keep != NULL)
            for (j = 0; j < d; j++) x[j] = row[j] * keep[i * d + j];
        else
            memcpy(x, row, d * sizeof(float));
    }
    hs_lbl_hidden(b->gathered, p->positions, p->bias, K, d, p->diagonal, b->hidden);
}

/* The context's n-gram offsets into b->bases (none without a table). */
HS_INLINE ptrdiff_t hs_head_bases(const hs_head* p, hs_buffers* b) {
    if (p->table == NULL || p->n_orders == 0) return 0;
    hs_ngram_bases(b->context, p->n_orders, (int)p->n_words, p->modulus, b->bases);
    return p->n_orders;
}

/* log P(target | context in b->context) and, unless step->learn_rate is 0, the gradient step
   it implies. */
static HS_UNUSED HS_CLONES double hs_head_predict(
    const hs_head* p, hs_buffers* b, const hs_step* step, int target
) {
    ptrdiff_t d = p->n_dims, width = p->n_dims + 1, K = p->context_size, i, j, s, f, depth;
    ptrdiff_t n_bases;
    hs_offset_t start = p->path_offsets[target];
    const float* keep = NULL;
    float* HS_RESTRICT h = b->hidden;
    float* HS_RESTRICT dh = b->d_hidden;
    double log_prob, h_norm;
    depth = p->path_offsets[target + 1] - start;
    n_bases = hs_head_bases(p, b);
    /* The path's rows and table values are known: request them while the hidden vector is
       formed, and the target's input row, which the next prediction reads. */
    for (s = 0; s < depth; s++) {
        int node = p->path_nodes[start + s];
        for (j = 0; j < width; j += 16) HS_PREFETCH(p->outputs + (ptrdiff_t)node * width + j);
        for (f = 0; f < n_bases; f++)
            if (b->bases[f] >= 0) HS_PREFETCH(p->table + b->bases[f] + node);
    }
    for (j = 0; j < d; j += 16) HS_PREFETCH(p->inputs + (ptrdiff_t)target * d + j);
    if (step->train && p->keep_pool != NULL)
        keep = p->keep_pool + (ptrdiff_t)(hs_next_random(&b->rng) % (uint64_t)p->pool_size);
    hs_head_hidden(p, b, keep);
    for (s = 0; s < depth; s++) {
        int node = p->path_nodes[start + s];
        b->logits[s] = hs_dot(h, p->outputs + (ptrdiff_t)node * width, width);
        if (n_bases) b->logits[s] += hs_node_term(p->table, b->bases, n_bases, node);
    }
    log_prob = hs_path_log_prob_logits(b->logits, p->path_codes + start, depth, b->gradients);
    if (step->learn_rate == 0) return log_prob;

    /* Output rows: d log P / d W[n] = g_n * hidden; d log P / d hidden = sum_n g_n * W[n]
       (with W[n] before its own update, as word2vec does). Table values: d log P / d value =
       g_n for each of the context's offsets. */
    memset(dh, 0, width * sizeof(float));
    h_norm = hs_dot(h, h, width);
    for (s = 0; s < depth; s++) {
        int node = p->path_nodes[start + s];
        double g = b->gradients[s], rate;
        float* row = p->outputs + (ptrdiff_t)node * width;
        float* d_row = step->d_outputs + (ptrdiff_t)node * width;
        hs_axpy((float)g, row, dh, d);
        rate = hs_row_rate(
            step->train && p->output_accum ? p->output_accum + node : NULL, step->learn_rate,
            g * g * h_norm, width
        );
        if (step->train) hs_decay(d_row, width, rate, p->l2);
        hs_axpy((float)(rate * g), h, d_row, width);
        for (f = 0; f < n_bases; f++) {
            if (b->bases[f] < 0) continue;
            {
                float* value = step->d_table + b->bases[f] + node;
                double decay = step->train ? p->table_l2 * *value : 0.0;
                *value += (float)(step->table_rate * (g - decay));
            }
        }
    }
    /* Dense parameters: accumulated here, applied by the caller. */
    for (j = 0; j < d; j++) step->d_bias[j] += dh[j];
    if (p->diagonal) {
        for (i = 0; i < K; i++) {
            float* HS_RESTRICT acc = step->d_positions + i * d;
            const float* HS_RESTRICT x = b->gathered + i * d;
            for (j = 0; j < d; j++) acc[j] += dh[j] * x[j];
        }
    } else {
        memset(b->d_context, 0, K * d * sizeof(float));
        for (j = 0; j < d; j++) {
            hs_axpy(dh[j], b->gathered, step->d_positions + j * K * d, K * d);
            hs_axpy(dh[j], p->positions + j * K * d, b->d_context, K * d);
        }
    }
    /* Input rows: d log P / d vec(w_{t-i}) = dh * C_i (or (C^T dh)_i), times the dropout
       factors. The padding row is trained even when the input vectors are not. */
    for (i = 0; i < K; i++) {
        int word = b->context[i];
        float* HS_RESTRICT x = b->gathered + i * d; /* reused as this row's gradient */
        float* d_row = step->d_inputs + (ptrdiff_t)word * d;
        double rate, norm = 0.0;
        if (!(p->fine_tune || word == p->n_words)) continue;
        if (p->diagonal) {
            const float* HS_RESTRICT c = p->positions + i * d;
            for (j = 0; j < d; j++) x[j] = dh[j] * c[j];
        } else {
            memcpy(x, b->d_context + i * d, d * sizeof(float));
        }
        if (keep != NULL)
            for (j = 0; j < d; j++) x[j] *= keep[i * d + j];
        if (step->train && p->input_accum != NULL) norm = hs_dot(x, x, d);
        rate = hs_row_rate(
            step->train && p->input_accum ? p->input_accum + word : NULL, step->learn_rate,
            norm, d
        );
        if (step->train) hs_decay(d_row, d, rate, p->l2);
        hs_axpy((float)rate, x, d_row, d);
    }
    return log_prob;
}

#endif /* SPACY_HS_HEAD_TRAIN_H */
