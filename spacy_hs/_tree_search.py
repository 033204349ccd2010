"""The compiled tree kernels under one name: searches (`_search.pyx`), path scores
(`_path_scores.pyx`) and hidden vectors (`_hidden.pyx`), whose shared argument checks live in
`_tree_checks.pxd`. Callers write ``_tree_search.top_k(...)`` and need not know which file a
kernel is in."""

from ._hidden import (
    NGRAM_HASH,
    context_hidden,
    context_hidden_matrix,
    lbl_hidden_matrix,
    ngram_bases_matrix,
)
from ._path_scores import (
    context_path_log_probs,
    lbl_path_log_probs,
    path_log_probs,
    word_log_probs,
)
from ._search import top_k, top_k_context, top_k_mixed

__all__ = [
    "NGRAM_HASH",
    "context_hidden",
    "context_hidden_matrix",
    "context_path_log_probs",
    "lbl_hidden_matrix",
    "lbl_path_log_probs",
    "ngram_bases_matrix",
    "path_log_probs",
    "top_k",
    "top_k_context",
    "top_k_mixed",
    "word_log_probs",
]
