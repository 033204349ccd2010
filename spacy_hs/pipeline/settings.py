"""The ``hs_predictor`` component's settings: their defaults, what each means, their checks, and
what they resolve to for a given model.

* model_path: an HSModel directory (``spacy-hs train`` output). Optional: the model can also
  come from ``[initialize.components.hs_predictor]`` or ``from_disk``. A path that does not
  exist is not an error, so a saved pipeline loads on a machine without it (its own copy of the
  model is read by ``from_disk``); calling the component without a model is. (Where the path
  still exists, ``spacy.load`` reads it, then replaces it with the pipeline's copy: correct, but
  slower; ``spacy-hs assemble`` leaves model_path unset.)
* top_k: how many words ``hs_next`` lists.
* context_size: how many known words before a position form its context; None uses the head's
  own (the training window for the CBOW head).
* head: the head that predicts: "auto" (the model's trained head if it has one, else "cbow"),
  "cbow" (gensim's CBOW-style mean of the context vectors, which every model has) or the name of
  the model's trained head (e.g. "directional", "ngram", or one another package registers).
  Checked against the model's heads when it is loaded.
* eager: compute ``Token._.hs_logprob``, ``Doc._.hs_next`` and ``Doc._.hs_perplexity`` while
  processing (batched); if False they are computed on first access.
* set_vectors: copy the model's input vectors into ``nlp.vocab.vectors``.
* unknown_word: the word out-of-vocabulary tokens are scored as, as language models score them:
  "auto" is ``<unk>`` if the model has it; None leaves them unscored. ``Doc._.hs_unknown``
  counts a doc's out-of-vocabulary tokens either way (KenLM's OOV count): without an unknown
  word they are left out of ``Doc._.hs_perplexity`` (``Token._.hs_logprob`` None), and
  ``hs_unknown`` says how many were.
* cache: the document cache (``spacy_hs.cache``), which spans one Doc and never crosses into
  another: "auto" (the model's setting, tuned and saved by ``spacy-hs train``; none for a model
  without one), None (off) or ``{"size": N, "weight": λ}``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cache import CacheSettings
from ..document import Documents
from ..errors import ConfigError, Errors, Warnings
from ..hs_model import Head, HSModel, registered_head_names
from ..util import is_positive_int
from ..validation import MAX_CONTEXT_SIZE, is_context_size
from . import DEFAULT_HEAD, DEFAULT_TOP_K

SETTINGS: dict[str, Any] = {
    "model_path": None,
    "top_k": DEFAULT_TOP_K,
    "context_size": None,
    "head": DEFAULT_HEAD,
    "eager": True,
    "set_vectors": True,
    "unknown_word": "auto",
    "cache": "auto",
}


def check_settings(top_k: Any, context_size: Any, cache: Any) -> None:
    """ConfigError for a setting that no model could make valid."""
    if not is_positive_int(top_k):
        raise ConfigError(Errors.E301.format(top_k=top_k))
    if not (isinstance(cache, str) and cache == "auto"):
        CacheSettings.from_value(cache)  # E027
    # Bounded: contexts are (tokens, context_size) int32 matrices.
    if context_size is not None and not is_context_size(context_size):
        if is_positive_int(context_size):  # too large
            raise ConfigError(
                Errors.E330.format(context_size=context_size, limit=MAX_CONTEXT_SIZE)
            )
        raise ConfigError(Errors.E302.format(context_size=context_size))


@dataclass(frozen=True)
class Resolved:
    """The settings for one model: its head, the context read, the id unknown words are
    scored as (None: unscored), the cache (None: off) and the vocabulary size."""

    head: Head
    context_size: int
    unknown_id: int | None
    cache: CacheSettings | None
    n_words: int

    def documents(
        self,
        word_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        document_lengths: np.ndarray,
        dropped: np.ndarray,
    ) -> Documents:
        """Documents (``spacy_hs.document``) read with these settings."""
        return Documents(
            word_ids,
            sentence_lengths,
            self.head,
            self.cache,
            self.unknown_id,
            n_words=self.n_words,
            context_size=self.context_size,
            document_lengths=document_lengths,
            dropped=dropped,
        )


def resolve(
    model: HSModel,
    head: str,
    context_size: int | None,
    unknown_word: str | None,
    cache: Any,
    lang: str | None = None,
) -> Resolved:
    """What the settings mean for ``model`` (E303, E023: a head it lacks; E027: a bad saved
    cache); warns of a context longer than the head's (W300) and of another language (W301)."""
    if head not in model.head_names() and head not in registered_head_names():
        raise ConfigError(Errors.E303.format(head=head, heads=", ".join(model.head_names())))
    found = model.head(head)  # E023: a registered head the model lacks
    size = context_size or int(found.context_size)
    if size > found.context_size:  # a head reads at most its own context
        warning = Warnings.W300.format(size=size, name=found.name, head=found.context_size)
        warnings.warn(warning, stacklevel=3)
        size = int(found.context_size)
    model_lang = model.settings.get("lang")
    if model_lang and lang and model_lang != lang:
        warnings.warn(Warnings.W301.format(model_lang=model_lang, lang=lang), stacklevel=3)
    settings = model.cache_settings(cache)
    return Resolved(
        found,
        size,
        model.unknown_id(unknown_word),
        settings if settings is not None and settings.weight else None,
        len(model),
    )
