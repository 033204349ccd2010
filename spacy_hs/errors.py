"""Error and warning messages, in one place. Each message says what went wrong and how to fix it."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model file or byte string is corrupt, inconsistent or of another format."""


class MissingModelFileError(ModelFileError, FileNotFoundError):
    """A model file or directory does not exist."""


class Errors:
    # Building an HSModel from gensim
    E001 = (
        "This gensim model was not trained with hierarchical softmax "
        "(hs={hs}, negative={negative}). spacy-hs needs the Huffman tree and its inner-node "
        "weights: train with Word2Vec(..., hs=1, negative=0)."
    )
    E002 = (
        "This gensim model has no inner-node weights (syn1): it was built but never trained, or "
        "was loaded from KeyedVectors only. Train it with hs=1, negative=0 and pass the full "
        "Word2Vec model, not model.wv."
    )
    E003 = (
        "Expected a gensim Word2Vec model, got {type}. Pass a trained gensim.models.Word2Vec "
        "(FastText and Doc2Vec are not supported)."
    )
    E004 = "The vocabulary has {n} word(s); an HS model needs at least 2. Train on a larger corpus."
    # Model files
    E010 = (
        "Missing model file {path}. Point to a directory written by HSModel.to_disk or "
        "`spacy-hs train`."
    )
    E011 = (
        "Cannot read model file {path}: {reason}. The file is truncated or corrupted; "
        "re-create the model with `spacy-hs train` or HSModel.to_disk."
    )
    E012 = (
        "Model file {path} has format {found!r}, but this version of spacy-hs reads "
        "{expected!r}. Re-create the model with this version, or install the spacy-hs version "
        "that wrote it."
    )
    E013 = "Model directory {path} is inconsistent: {reason}. Re-create it with `spacy-hs train`."
    E014 = "{path} is not an spacy-hs model directory (no meta.json). {hint}"
    E015 = (
        "Model data is not an spacy-hs byte string: {reason}. Pass bytes from HSModel.to_bytes()."
    )
    # Queries
    E020 = "Unknown word {word!r}: it is not in the model's vocabulary of {n} words."
    E021 = "topn must be a positive integer, got {topn!r}."
    E022 = (
        "Expected {n} contexts to go with {n_words} words; pass one context (a list of words) "
        "per target word."
    )
    E023 = (
        "This model has no directional next-word head. Train one with `spacy-hs train` and a "
        "[head] section, or use head='cbow'."
    )
    E024 = "Unknown head {head!r}: choose 'auto', 'directional' or 'cbow'."


class Warnings:
    W001 = (
        "All the context words are out of vocabulary ({context}); no prediction is possible. "
        "Check the text is normalised as the training corpus was (see model.settings)."
    )
