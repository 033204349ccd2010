"""The batch processor: texts -> token-file text (tokenize, normalise, split sentences).

Speed comes from doing no Python work per token. spaCy's tokenizer produces the ``Doc``; the rest
runs on numpy arrays of orth ids:

- every decision (the corpus word, the sentence-boundary flags) depends only on the lexeme, so it
  is computed once per vocabulary entry and stored in a direct-mapped table keyed by orth id;
- sentence boundaries follow spaCy's ``sentencizer`` rule exactly, vectorised over the batch
  (running the component itself costs about a third of the tokenizer's time);
- each batch becomes one string by a single ``str.join``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spacy
from spacy.attrs import ORTH
from spacy.lexeme import Lexeme
from spacy.pipeline import Sentencizer
from spacy.strings import get_string_id, hash_string

from ..errors import Errors, InputError
from ..orth_table import OrthTable
from . import tokenfile
from .heldout import heldout_sentences
from .inputs import Batch
from .normalize import TokenNormalizer


@dataclass
class ProcessorConfig:
    lang: str
    normalizer: dict[str, Any]
    pretokenized: bool
    min_sentence_length: int
    heldout_fraction: float  # 0: no held-out split
    heldout_seed: int
    document_marker: bool = False  # a blank line after each document


@dataclass
class SplitPart:
    """One batch's share of one output file."""

    text: str = ""
    sentences: int = 0
    tokens: int = 0
    documents: int = 0  # distinct documents with a sentence in this part
    first_doc: int = -1
    last_doc: int = -1
    new_types: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    splits: list[SplitPart]
    input_tokens: int


# Lexeme flags for the sentence rule: bit 0 "punctuation-like" (is_punct or a sentence-final
# character), bit 1 "sentence-final character" (in the sentencizer's punct_chars).
_PUNCT_LIKE, _FINAL, _FLAGS = 1, 2, 3


class BatchProcessor:
    """Turns batches of texts into token-file text. One per process; keeps its own caches."""

    def __init__(self, config: ProcessorConfig):
        self.config = config
        self.nlp = _blank(config.lang)
        self.vocab = self.nlp.vocab
        self.normalizer = TokenNormalizer(config.normalizer)
        # The sentencizer's sentence-final characters, as orth ids (no string decoding per type).
        self.final_orths = frozenset(map(get_string_id, Sentencizer.default_punct_chars))
        self.table = OrthTable(1 << 16)
        self._by_text: dict[str, int] = {}  # pretokenized input: token text -> packed value
        self._word_ids: dict[str, int] = {}
        self._words: list[str] = []
        # Word id w at 2w followed by a space, at 2w+1 ending its line: one fancy index then
        # one str.join build a whole batch.
        self._word_array = np.empty(1024, dtype=object)
        # spaCy's 64-bit string hash of each word: the same in every process and run.
        self._word_hashes = np.zeros(512, dtype=np.uint64)
        # Per output file: which word ids it has received, to count its types.
        self._seen = [np.zeros(512, dtype=bool) for _ in range(2)]

    def reset_types(self) -> None:
        """Count types afresh: the next batches report every word as new once (a unit's
        statistics then stand alone, whichever process read the units before)."""
        for seen in self._seen:
            seen[:] = False

    def process_batch(self, batch: Batch) -> BatchResult:
        if self.config.pretokenized:
            return self._pretokenized(batch)
        arrays = [doc.to_array(ORTH) for doc in self.nlp.tokenizer.pipe(batch.texts)]
        lengths = np.fromiter(map(len, arrays), dtype=np.intp, count=len(arrays))
        orths = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)
        packed = self.table.lookup(orths, lambda new, _: self._resolve_orths(new.tolist()))
        starts = _sentence_starts(packed & _FLAGS, lengths)
        return self._emit(packed, starts, lengths, batch.doc_ids)

    def _pretokenized(self, batch: Batch) -> BatchResult:
        lines: list[list[str]] = []
        doc_ids: list[int] = []
        for text, doc_id in zip(batch.texts, batch.doc_ids):
            for line in text.splitlines():
                tokens = line.split()
                if tokens:
                    lines.append(tokens)
                    doc_ids.append(doc_id)
        lengths = np.fromiter(map(len, lines), dtype=np.intp, count=len(lines))
        get = self._by_text.get
        values = [get(token) for tokens in lines for token in tokens]
        if None in values:
            flat = (token for tokens in lines for token in tokens)
            values = [self._resolve_text(t) if v is None else v for t, v in zip(flat, values)]
        packed = np.array(values, dtype=np.int64)
        starts = np.zeros(len(packed), dtype=bool)
        starts[_offsets(lengths)[:-1][lengths > 0]] = True
        return self._emit(packed, starts, lengths, doc_ids)

    def _emit(
        self, packed: np.ndarray, starts: np.ndarray, lengths: np.ndarray, doc_ids: list[int]
    ) -> BatchResult:
        """Build the output text of a batch from each token's packed value and sentence starts."""
        n_parts = 2 if self.config.heldout_fraction else 1
        parts = [SplitPart() for _ in range(n_parts)]
        result = BatchResult(parts, input_tokens=len(packed))
        if not len(packed):
            return result
        word_ids = (packed >> 2) - 1
        sentence_ids = np.cumsum(starts) - 1
        n_sentences = int(sentence_ids[-1]) + 1
        doc_of_token = np.repeat(np.asarray(doc_ids, dtype=np.int64), lengths)
        sentence_docs = doc_of_token[starts]
        kept = word_ids >= 0
        sizes = np.bincount(sentence_ids[kept], minlength=n_sentences)
        valid = sizes >= self.config.min_sentence_length
        kept &= valid[sentence_ids]
        words, sentences = word_ids[kept], sentence_ids[kept]
        if not len(words):
            return result
        line_end = _line_ends(sentences)
        if n_parts == 1:
            text = self._text(2 * words + line_end, sentence_docs[valid])
            self._fill(parts[0], 0, text, words, sentence_docs[valid], int(valid.sum()))
            return result
        # Held-out split: hash each sentence's words, then split tokens by their sentence's side.
        heldout = heldout_sentences(
            self._word_hashes[words],
            line_end,
            self.config.heldout_fraction,
            self.config.heldout_seed,
        )
        token_heldout = np.repeat(heldout, np.diff(np.flatnonzero(line_end), prepend=-1))
        valid_docs = sentence_docs[valid]
        for side, part in enumerate(parts):
            chosen, side_words = (heldout, token_heldout) if side else (~heldout, ~token_heldout)
            side_words = words[side_words]
            side_ends = line_end[token_heldout] if side else line_end[~token_heldout]
            text = self._text(2 * side_words + side_ends, valid_docs[chosen])
            n_sentences = int(np.count_nonzero(chosen))
            self._fill(part, side, text, side_words, valid_docs[chosen], n_sentences)
        return result

    def _text(self, indices: np.ndarray, line_documents: np.ndarray) -> str:
        """The text of the lines given by word-array indices (``2 w``, or ``2 w + 1`` ending a
        line); with the document marker, a blank line after each document that ends before
        the last line (``write_units`` adds the one after the last)."""
        pieces = self._word_array[indices]
        if self.config.document_marker and len(line_documents) > 1:
            line_ends = np.flatnonzero(indices & 1)
            ends = line_ends[:-1][line_documents[1:] != line_documents[:-1]]
            pieces[ends] = pieces[ends] + tokenfile.LINE_END
        return "".join(pieces.tolist())

    def _fill(
        self,
        part: SplitPart,
        side: int,
        text: str,
        words: np.ndarray,
        sentence_docs: np.ndarray,
        n_sentences: int,
    ) -> None:
        part.text, part.sentences, part.tokens = text, n_sentences, len(words)
        if n_sentences:
            part.documents = 1 + int(np.count_nonzero(sentence_docs[1:] != sentence_docs[:-1]))
            part.first_doc, part.last_doc = int(sentence_docs[0]), int(sentence_docs[-1])
        seen = self._seen[side]
        if len(seen) < len(self._words):
            grown = np.zeros(2 * len(self._words), dtype=bool)
            grown[: len(seen)] = seen
            seen = self._seen[side] = grown
        fresh = np.unique(words[~seen[words]])  # usually few: no sort of the whole batch
        seen[fresh] = True
        part.new_types = [self._words[i] for i in fresh.tolist()]

    def _resolve_orths(self, orths: list[int]) -> list[int]:
        # Runs once per type, so it is a large share of the cost beyond the tokenizer's:
        # Lexeme(vocab, orth) is 7x faster than vocab[orth].
        vocab, pack = self.vocab, self._pack
        return [pack(Lexeme(vocab, orth)) for orth in orths]

    def _resolve_text(self, text: str) -> int:
        value = self._by_text[text] = self._pack(self.vocab[text])
        return value

    def _pack(self, lexeme: Lexeme) -> int:
        """(word id + 1) << 2 | sentence flags; word id -1 (0 when packed) for a dropped token."""
        word = self.normalizer.norm(lexeme)
        word_id = -1 if word is None else self._word_id(word)
        final = lexeme.orth in self.final_orths
        flags = (_PUNCT_LIKE if (final or lexeme.is_punct) else 0) | (_FINAL if final else 0)
        return ((word_id + 1) << 2) | flags

    def _word_id(self, word: str) -> int:
        word_id = self._word_ids.get(word)
        if word_id is None:
            word_id = self._word_ids[word] = len(self._words)
            self._words.append(word)
            if 2 * word_id + 1 >= len(self._word_array):
                grown = np.empty(2 * len(self._word_array), dtype=object)
                grown[: len(self._word_array)] = self._word_array
                self._word_array = grown
                hashes = np.zeros(len(grown) // 2, dtype=np.uint64)
                hashes[: len(self._word_hashes)] = self._word_hashes
                self._word_hashes = hashes
            # Each word followed by what follows it in a token file: a space, or the line's end.
            self._word_array[2 * word_id] = word + tokenfile.SEPARATOR
            self._word_array[2 * word_id + 1] = word + tokenfile.LINE_END
            if self.config.heldout_fraction:
                self._word_hashes[word_id] = hash_string(word)
        return word_id


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.intp)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _sentence_starts(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """spaCy's sentencizer rule, vectorised over a batch of concatenated documents.

    The sentencizer starts a sentence at each document's first token, and at a token that is
    neither punctuation nor sentence-final when a sentence-final character (``punct_chars``)
    occurred since the last such token of the same document. (Equivalent to its loop because
    its ``seen_period`` is reset at every non-punctuation token.)
    """
    n = len(flags)
    starts = np.zeros(n, dtype=bool)
    offsets = _offsets(lengths)
    starts[offsets[:-1][lengths > 0]] = True
    finals_before = np.zeros(n + 1, dtype=np.int64)  # finals_before[i]: finals in tokens [0, i)
    np.cumsum((flags & _FINAL) != 0, out=finals_before[1:])
    words = np.flatnonzero((flags & _PUNCT_LIKE) == 0)
    if not len(words):
        return starts
    doc_begin = offsets[:-1][np.repeat(np.arange(len(lengths)), lengths)[words]]
    previous = np.empty_like(words)
    previous[0] = -1
    previous[1:] = words[:-1]
    boundary = np.maximum(previous, doc_begin - 1)  # last word before, or before the document
    seen_final = finals_before[words] - finals_before[boundary + 1] > 0
    starts[words[seen_final]] = True
    return starts


def _line_ends(sentences: np.ndarray) -> np.ndarray:
    """True at the last token of each sentence, given each token's (non-decreasing) sentence."""
    line_end = np.empty(len(sentences), dtype=bool)
    np.not_equal(sentences[1:], sentences[:-1], out=line_end[:-1])
    line_end[-1] = True
    return line_end


def _blank(lang: str) -> spacy.Language:
    try:
        return spacy.blank(lang)
    except (ImportError, KeyError, ValueError) as err:
        raise InputError(Errors.E109.format(lang=lang, reason=err)) from None
