"""How spaCy tokens become model word ids, for the ``hs_predictor`` component.

A token is looked up by its lexeme: through the model's normaliser (the one that made the
training corpus), or, for a model without normaliser settings whose words are all lowercase
(``HSModel.from_gensim`` on a tutorial's lowercased corpus), lowercased. Each orth is looked up
once (``OrthTable``); later occurrences are found by numpy alone. The vectors copied into the
vocab are keyed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from spacy.attrs import ORTH, SENT_START
from spacy.lexeme import Lexeme
from spacy.tokens import Doc
from spacy.vectors import Vectors
from spacy.vocab import Vocab

from ..corpus.normalize import TokenNormalizer
from ..hs_model import HSModel
from ..orth_table import OrthTable

UNKNOWN = -1  # word id of out-of-vocabulary tokens
DROPPED = -2  # word id of tokens the normaliser drops (e.g. punctuation)


class WordIds:
    """Maps tokens to the word ids of ``model``: ``normal_form`` per lexeme, ``of_docs`` for a
    batch of docs."""

    def __init__(self, model: HSModel) -> None:
        settings = model.settings.get("normalizer")
        self.key_to_index = model.key_to_index
        self.words = model.words
        self.normalizer = TokenNormalizer(settings) if settings is not None else None
        self.lowercase = settings is None and model.is_lowercase()
        # orth hash -> word id: orth hashes are hashes of the text, the same in every vocab,
        # so one table serves docs of any vocab.
        self.table = OrthTable()

    def normal_form(self, lex: Lexeme) -> str | None:
        """The corpus word a lexeme is looked up as, or None if the normaliser drops it."""
        if self.normalizer is not None:
            return self.normalizer.norm(lex)
        text = lex.lower_ if self.lowercase else lex.orth_
        return text if text.strip() else None

    def scored_word(self, lex: Lexeme, unknown_id: int | None) -> str | None:
        """The word a lexeme is scored as: its normal form if the model has it, else the
        unknown word (``unknown_id``); None if dropped, or unknown without an unknown word."""
        word = self.normal_form(lex)
        if word is None or word in self.key_to_index:
            return word
        return None if unknown_id is None else self.words[unknown_id]

    def of_docs(self, docs: Sequence[Doc]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tokens of ``docs``, concatenated: word ids int32 (``UNKNOWN``, ``DROPPED``), the
        lengths of their sentences (a doc start opens one, so no context crosses from one doc
        into the next) and the docs' lengths."""
        lengths = np.fromiter((len(doc) for doc in docs), dtype=np.int64, count=len(docs))
        doc_starts = np.cumsum(lengths) - lengths
        # SENT_START is 1 at a sentence start, else -1 or 0 (0: no sentence annotation).
        arrays = [doc.to_array([ORTH, SENT_START]) for doc in docs]
        table = np.concatenate(arrays) if lengths.sum() else np.zeros((0, 2), dtype=np.uint64)
        is_start = table[:, 1] == 1
        is_start[doc_starts[lengths > 0]] = True

        def resolve(new: np.ndarray, first: np.ndarray) -> list[int]:
            """Word ids of orths not seen before; ``first``: the position of one of each."""
            found = []
            for orth, i in zip(new.tolist(), first.tolist()):
                vocab = docs[int(np.searchsorted(doc_starts, i, side="right")) - 1].vocab
                word = self.normal_form(vocab[orth])
                found.append(DROPPED if word is None else self.key_to_index.get(word, UNKNOWN))
            return found

        word_ids = self.table.lookup(table[:, 0], resolve).astype(np.int32)
        sentence_lengths = np.diff(np.append(np.flatnonzero(is_start), len(word_ids)))
        return word_ids, sentence_lengths, lengths

    def vectors(self, model: HSModel, vocab: Vocab) -> Vectors:
        """The model's input vectors for ``vocab``, keyed by the attribute tokens are looked up
        by: ``LOWER`` for a lowercased model, so "United" and "united" both find the vector of
        "united" (tokens the normaliser maps to a placeholder or drops have none: spaCy reads
        vectors by a lexeme attribute, not through the normaliser)."""
        lowercase = self.lowercase or (
            self.normalizer is not None and self.normalizer.settings.lowercase
        )
        return Vectors(
            strings=vocab.strings,
            data=np.array(model.vectors, dtype=np.float32, copy=True),
            keys=model.words,
            name=f"spacy_hs_{len(model)}x{model.vector_size}",
            attr="LOWER" if lowercase else "ORTH",
        )
