"""The conversion from a trained gensim ``Word2Vec`` (``hs=1``) to the parts of an HS model.

Nothing is rebuilt: the words, counts and input vectors, the Huffman tree exactly as gensim
trained it (``code``/``point``) and the inner-node weights (``syn1``) are copied.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import validation
from .errors import Errors, InputError, Warnings, WrongTypeError
from .tree import HuffmanTree


def gensim_parts(
    model: Any, settings: dict[str, Any] | None = None, *, normalizer: Any = None
) -> dict[str, Any]:
    """The arguments of ``HSVocab`` (and ``HSModel``) for a trained gensim ``Word2Vec`` with
    ``hs=1``: words, counts, vectors, tree, inner_node_weights and settings, all copies.

    settings: extra settings to keep with the model (for example preprocessing options).
    normalizer: how the training text was normalised (``NormalizerSettings`` or its dict),
        so the pipeline component normalises new text the same way. Without it, a model
        whose words are all lowercase is looked up lowercased, others as they are.
    """
    if normalizer is not None:
        from .corpus.normalize import NormalizerSettings

        if not isinstance(normalizer, NormalizerSettings):
            normalizer = NormalizerSettings.from_dict(dict(normalizer))
        settings = {**(settings or {}), "normalizer": normalizer.to_dict()}
    from gensim.models import Word2Vec

    if not isinstance(model, Word2Vec) or type(model).__name__ in ("FastText", "Doc2Vec"):
        raise WrongTypeError(Errors.E003.format(type=type(model).__name__))
    if not model.hs:
        raise InputError(Errors.E001.format(hs=model.hs, negative=model.negative))
    if not hasattr(model, "syn1") or len(model.wv) < 2 or not model.syn1.any():
        if len(model.wv) < 2:
            raise InputError(Errors.E004.format(n=len(model.wv)))
        if hasattr(model, "syn1") and getattr(model, "train_count", 0):
            # Trained, yet not one update: down-sampling or the window left no example.
            words = int(getattr(model, "corpus_total_words", 0) or 0)
            raise InputError(Errors.E067.format(words=words, sample=model.sample))
        raise InputError(Errors.E002)
    for name, array in (("vectors", model.wv.vectors), ("inner-node weights", model.syn1)):
        if validation.non_finite(array) is not None:
            raise InputError(Errors.E066.format(name=name))
    if model.negative:
        warnings.warn(Warnings.W020.format(negative=model.negative), stacklevel=3)
    wv = model.wv
    n_words = len(wv.index_to_key)
    # gensim keeps per-word attributes in ``wv.expandos`` (what get_vecattr reads one by
    # one); reading the arrays whole is ~5x faster on large vocabularies.
    tree = HuffmanTree.from_paths(wv.expandos["point"][:n_words], wv.expandos["code"][:n_words])
    gensim_settings = {
        "sg": int(model.sg),
        "cbow_mean": int(model.cbow_mean),
        "window": int(model.window),
        "vector_size": int(model.vector_size),
    }
    word2vec = {
        "hs": int(model.hs),
        "negative": int(model.negative),
        "min_count": int(model.min_count),
        "sample": float(model.sample),
        "epochs": int(model.epochs),
    }
    return {
        "words": wv.index_to_key,
        "counts": np.asarray(wv.expandos["count"][:n_words], dtype=np.int64),
        # Copies: training the gensim model further must not change this one.
        "vectors": np.array(wv.vectors, dtype=np.float32),
        "tree": tree,
        "inner_node_weights": np.array(model.syn1[: n_words - 1], dtype=np.float32),
        "settings": {**gensim_settings, "word2vec": word2vec, **(settings or {})},
    }
