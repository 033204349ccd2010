/* The inner loops over the hierarchical-softmax tree, shared by the inference kernels
   (_search.pyx, _path_scores.pyx, _hidden.pyx) and the head's training kernels
   (_head_train.pyx), declared for Cython in _hs_math.pxd. Header-only: every extension module that includes it compiles the same code.

   Conventions (see tree.py): a word's path is path_nodes[path_offsets[w]:path_offsets[w + 1]]
   with codes path_codes[...]; code 0 means the branch taken has probability sigmoid(+logit),
   code 1 sigmoid(-logit) (gensim's convention). A node's logit is hidden . weights[node].

   The hot loops are compiled twice: for AVX2 processors and for any x86-64, the copy chosen
   once when the module loads (GCC function multiversioning, an ifunc; glibc only). Per lane
   the arithmetic is the same in both copies (no fused multiply-add: the avx2 target does not
   enable FMA), so results are identical; with AVX2 the log-probability scoring takes about a
   fifth less time. Elsewhere one portable copy is built. */

#ifndef SPACY_HS_KERNELS_H
#define SPACY_HS_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define HS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HS_CLONES
#endif
#if defined(__GNUC__) || defined(__clang__)
#define HS_INLINE static inline __attribute__((always_inline))
#define HS_UNUSED __attribute__((unused))
#define HS_RESTRICT __restrict__
#define HS_PREFETCH(address) __builtin_prefetch(address)
#else
#define HS_INLINE static __inline
#define HS_UNUSED
#define HS_RESTRICT __restrict
#define HS_PREFETCH(address) ((void)0)
#endif

typedef int64_t hs_offset_t;

/* Dot product in sixteen float32 lanes. Each lane is its own running sum, so compilers
   vectorise the loop without -ffast-math (no reassociation), at any vector width, with the
   same result; about twice as fast as eight double lanes, which convert every product. The
   rounding error (~1e-7 relative) is that of the float32 weights themselves. */
HS_INLINE double hs_dot(const float* a, const float* b, ptrdiff_t n) {
    float s[16] = {0};
    ptrdiff_t i = 0, j;
    for (; i + 16 <= n; i += 16)
        for (j = 0; j < 16; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    for (j = 0; j < 8; j++) s[j] += s[j + 8];
    for (j = 0; j < 4; j++) s[j] += s[j + 4];
    return ((double)s[0] + s[1]) + ((double)s[2] + s[3]);
}

/* y += a * x, in float32. */
HS_INLINE void hs_axpy(float a, const float* HS_RESTRICT x, float* HS_RESTRICT y, ptrdiff_t n) {
    ptrdiff_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

/* The margin of a node for a word whose path takes branch `code` there:
   log P(branch | hidden) = log_sigmoid(margin). */
HS_INLINE double hs_margin(double logit, unsigned char code) {
    return logit * (1.0 - 2.0 * code);
}

/* The optional sparse node term of a context (e.g. the n-gram head's hashed features):
   `n_bases` offsets into `table`, negative ones absent; each adds table[base + node] to the
   logit of every inner node. The table holds at least max(base) + V - 1 values. */
HS_INLINE double hs_node_term(
    const float* table, const int64_t* bases, ptrdiff_t n_bases, int node
) {
    double sum = 0.0;
    ptrdiff_t f;
    for (f = 0; f < n_bases; f++)
        if (bases[f] >= 0) sum += table[bases[f] + node];
    return sum;
}

/* The path log-likelihood, defined once: a running sum over a word's path of
   log_sigmoid(margin), one node at a time (hs_path_add), closed by hs_path_total.
   The log1p terms of a path are added as one log1p of their product, prod(1 + e_i) - 1 kept
   as `excess` (updated as x + e + x * e: positive terms only, so no cancellation): one log1p
   per word rather than one per node, and no branch on the sign of the margin. Equal to
   summing log_sigmoid(margin) node by node up to rounding (~1e-16). Returns exp(-|logit|),
   from which a caller can form the node's gradient. */
typedef struct {
    double linear, excess;
} hs_path_sum;

HS_INLINE double hs_path_add(hs_path_sum* sum, double logit, unsigned char code) {
    double d = hs_margin(logit, code), e = exp(-fabs(d));
    sum->excess = sum->excess + e + sum->excess * e;
    sum->linear += 0.5 * (d - fabs(d)); /* min(d, 0), exactly */
    if (sum->excess > 1e300) {          /* it at most doubles per node: flush before overflow */
        sum->linear -= log1p(sum->excess);
        sum->excess = 0.0;
    }
    return e;
}

HS_INLINE double hs_path_total(const hs_path_sum* sum) {
    return sum->linear - log1p(sum->excess);
}

/* log P(word | hidden): a node's logit is hidden . weights[node] plus the node term (none if
   n_bases is 0). The path's weight rows (and table values) are requested up front: mostly
   cache misses in a large tree, and the path is known. */
static HS_UNUSED HS_CLONES double hs_path_log_prob(
    const float* hidden, const float* weights, ptrdiff_t n_dims,
    const hs_offset_t* path_offsets, const int* path_nodes, const unsigned char* path_codes,
    int word, const float* table, const int64_t* bases, ptrdiff_t n_bases
) {
    hs_path_sum sum = {0.0, 0.0};
    double d;
    hs_offset_t step, start = path_offsets[word], end = path_offsets[word + 1];
    ptrdiff_t line, f;
    for (step = start; step < end; step++) {
        for (line = 0; line < n_dims; line += 16)
            HS_PREFETCH(weights + (ptrdiff_t)path_nodes[step] * n_dims + line);
        for (f = 0; f < n_bases; f++)
            if (bases[f] >= 0) HS_PREFETCH(table + bases[f] + path_nodes[step]);
    }
    for (step = start; step < end; step++) {
        d = hs_dot(hidden, weights + (ptrdiff_t)path_nodes[step] * n_dims, n_dims);
        if (n_bases) d += hs_node_term(table, bases, n_bases, path_nodes[step]);
        hs_path_add(&sum, d, path_codes[step]);
    }
    return hs_path_total(&sum);
}

/* The same log-probability from logits already computed (one per node of the word's path,
   in path order), and each logit's gradient d log P / d logit = (1 - code) - sigmoid(logit)
   into `gradients`, from the same exp(-|x|). The training kernels use this after adding
   their own terms to the logits. */
HS_INLINE double hs_path_log_prob_logits(
    const double* logits, const unsigned char* codes, ptrdiff_t depth, double* gradients
) {
    hs_path_sum sum = {0.0, 0.0};
    double d, e, sigmoid_abs;
    ptrdiff_t step;
    for (step = 0; step < depth; step++) {
        d = logits[step];
        e = hs_path_add(&sum, d, codes[step]); /* exp(-|margin|) = exp(-|d|) */
        sigmoid_abs = 1.0 / (1.0 + e);          /* sigmoid(|d|); sigmoid(-|d|) = e * that */
        gradients[step] = (1.0 - codes[step]) - (d >= 0 ? sigmoid_abs : e * sigmoid_abs);
    }
    return hs_path_total(&sum);
}

/* log_sigmoid(x), and log_sigmoid(-x) = log_sigmoid(x) - x into *negative: one exp and one
   log1p for both branches of a node (the tree searches and the all-words pass). */
HS_INLINE double hs_log_sigmoid_pair(double x, double* negative) {
    double loss = log1p(exp(-fabs(x)));
    if (x >= 0) {
        *negative = -loss - x;
        return -loss;
    }
    *negative = -loss;
    return -loss + x;
}

/* The hidden vector of a context of `width` word ids, negative ones (padding) skipped:
   each element summed in float32 from 0 in the context's order, then divided by the
   number of words if `mean` (exactly what sum_rows gives). Returns that number. */
static HS_UNUSED HS_CLONES ptrdiff_t hs_context_hidden(
    const float* vectors, ptrdiff_t n_dims, const int* ids, ptrdiff_t width, int mean,
    float* HS_RESTRICT out
) {
    ptrdiff_t i, j, n = 0;
    float count;
    for (j = 0; j < n_dims; j++) out[j] = 0.0f;
    for (i = 0; i < width; i++) {
        if (ids[i] >= 0) {
            const float* HS_RESTRICT row = vectors + (ptrdiff_t)ids[i] * n_dims;
            for (j = 0; j < n_dims; j++) out[j] += row[j];
            n++;
        }
    }
    count = (float)n;
    if (mean && n > 1)
        for (j = 0; j < n_dims; j++) out[j] /= count;
    return n;
}


/* The directional (log-bilinear) hidden vector from its gathered context rows, `gathered`
   (K rows of d: the i-th most recent word's input vector, or the padding vector):
       hidden = b + sum over i of C_i * x_i, then a constant 1 in column d
   with diagonal C ((K, d): elementwise scales) or full C ((d, K * d)). The one definition,
   used by the training step (after dropout) and by inference. */
HS_INLINE void hs_lbl_hidden(
    const float* HS_RESTRICT gathered, const float* positions, const float* bias,
    ptrdiff_t context_size, ptrdiff_t n_dims, int diagonal, float* HS_RESTRICT hidden
) {
    ptrdiff_t d = n_dims, K = context_size, i, j;
    /* The products are summed from zero in position order and the bias added last: the order
       of the numpy pass that models of earlier versions were scored with, so they score the
       same bit for bit. */
    if (diagonal) {
        memset(hidden, 0, d * sizeof(float));
        for (i = 0; i < K; i++) {
            const float* HS_RESTRICT c = positions + i * d;
            const float* HS_RESTRICT x = gathered + i * d;
            for (j = 0; j < d; j++) hidden[j] += c[j] * x[j];
        }
    } else {
        for (j = 0; j < d; j++) hidden[j] = (float)hs_dot(positions + j * K * d, gathered, K * d);
    }
    for (j = 0; j < d; j++) hidden[j] += bias[j];
    hidden[d] = 1.0f;
}

/* The n-gram features' hash, version 1: a fixed function of the order and the word ids, in
   64-bit unsigned arithmetic (the same on every platform). `context` holds word ids, most
   recent first; the order-k feature hashes k and context[0..k-1]. Each step is a multiply by
   an odd constant and MurmurHash3's 64-bit finaliser (xor-shifts and multiplies). */
#define HS_NGRAM_HASH_VERSION 1

HS_INLINE uint64_t hs_mix64(uint64_t z) {
    z ^= z >> 33;
    z *= 0xFF51AFD7ED558CCDULL;
    z ^= z >> 33;
    z *= 0xC4CEB9FE1A85EC53ULL;
    z ^= z >> 33;
    return z;
}

/* The table offsets of a context's n-gram features, orders 1..n_orders, into `bases`:
   (hash mod modulus) for order k, or -1 where the history would reach a padding id (the
   sentence start) at or before position k. modulus = table size - (V - 1), so an offset plus
   any inner node stays inside the table. */
HS_INLINE void hs_ngram_bases(
    const int* context, ptrdiff_t n_orders, int padding, uint64_t modulus, int64_t* bases
) {
    uint64_t h;
    ptrdiff_t k;
    int valid = 1;
    for (k = 0; k < n_orders; k++) {
        valid = valid && context[k] != padding && context[k] >= 0;
        if (!valid) {
            bases[k] = -1;
            continue;
        }
        h = hs_mix64((uint64_t)(k + 1) * 0x9E3779B97F4A7C15ULL);
        {
            ptrdiff_t i;
            for (i = 0; i <= k; i++)
                h = hs_mix64(h ^ ((uint64_t)(uint32_t)context[i] * 0xD6E8FEB86659FD93ULL));
        }
        bases[k] = (int64_t)(h % modulus);
    }
}

#endif /* SPACY_HS_KERNELS_H */
