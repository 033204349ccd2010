"""Next-word prediction on a held-out token file: hit@1, hit@10 and perplexity of every head,
with and without the document cache, beside a unigram baseline and gensim's.

The held-out file is a token file (gensim ``LineSentence`` format: one sentence per line,
tokens split on whitespace). Every token position ``t`` is a *scored position* when

* its word is in the model's vocabulary, and
* at least one in-vocabulary word comes before it in the same sentence.

Everything else is excluded and counted: ``oov_target`` (the word at ``t`` is unknown; a
closed-vocabulary model gives it no probability) and ``no_known_context`` (the word is known, but
nothing known precedes it in its sentence, for example the first token of every sentence).
``coverage = scored / tokens``. A head reads the last ``context_size`` known words before ``t``,
oldest first, never crossing the sentence boundary (unknown words are skipped, not padded).

On the scored positions, for every head the model has (``HSModel.head_names()``: gensim's
CBOW-style head and the trained one, whatever its name) and each baseline:

* ``hit_at_1`` / ``hit_at_10``: the fraction of positions whose word is the top / in the top 10;
* ``perplexity``: ``exp(-mean log P(word | context))``, natural log.

Every predictor is measured on the same scored positions, except gensim's
``predict_output_word``, which costs O(V) per query and so is measured on a random sample of at
most ``max_positions`` of them (``gensim_predict_output_word.same_positions`` gives each HS head
on exactly that sample, for a like-for-like comparison). A head that predicts a sentence's first
word is also measured on every known word (``with_sentence_starts``), as language models are.
The log-probabilities and top-k come from the core (``spacy_hs.document.Documents``), as the
pipeline component's do.

When the model has a saved document cache (``spacy_hs.cache``: ``settings["cache"]``, tuned by
``spacy-hs train``), the trained head is also measured with it, on the same positions
(``"<head>+cache"``). The held-out file is one document, read in its order, unless blank lines
mark where documents end (``spacy-hs preprocess --doc-marker``): then the cache starts empty at
each document. The file is read in chunks; the cache's state at a chunk's end
(``Documents.history_after``) is the next chunk's ``history``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..cache import CacheSettings
from ..corpus import tokenfile
from ..document import Documents
from ..errors import Errors, InputError
from ..heads.protocol import Head
from ..hs_model import HSModel
from .common import check_heldout, check_normalizer, progress
from .gensim_baseline import GensimBaseline
from .scores import TOP_K, Score

# Positions scored together: one batched tree search per head and chunk.
CHUNK_SIZE = 4096
DEFAULT_MAX_POSITIONS = 5000


def model_heads(model: HSModel) -> dict[str, Head]:
    """Every head the model answers through, by name ("auto" is an alias of one of them)."""
    return {name: model.head(name) for name in model.head_names() if name != "auto"}


def next_word_metrics(
    model: HSModel,
    heldout: str | Path,
    *,
    gensim_model: Any = None,
    max_positions: int = DEFAULT_MAX_POSITIONS,
    chunk_size: int = CHUNK_SIZE,
    show_progress: bool = True,
) -> dict[str, Any]:
    """hit@1, hit@10 and perplexity of every head on a held-out token file, beside a unigram
    baseline and (if ``gensim_model`` is given) gensim's ``predict_output_word``.

    See the module docstring for which positions are scored. The file is streamed in chunks of
    about ``chunk_size`` tokens (whole sentences), so memory does not grow with its size.
    """
    heldout = check_heldout(heldout)
    check_normalizer(model, heldout)
    heads = model_heads(model)
    widest = max(heads.values(), key=lambda head: int(head.context_size))
    scores = {name: Score() for name in heads}
    # Heads that predict a sentence's first word are also scored on those.
    starters = {name: head for name, head in heads.items() if head.predicts_sentence_start}
    start_scores = {name: Score() for name in starters}
    unigram = Score()
    unigram_log_probs, unigram_top = _unigram(model)
    gensim = GensimBaseline(model, heads, gensim_model, max_positions)
    counts = {"n_sentences": 0, "n_documents": 0, "n_tokens": 0, "n_scored": 0, "oov_target": 0}
    cached = _CacheRow.of(model)

    def score_chunk(sentences: list[list[str]], documents: list[int]) -> None:
        get = model.key_to_index.get
        token_ids = np.array([get(t, -1) for s in sentences for t in s], dtype=np.int32)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        # The widest head's reading: which tokens have a known word before them, and the
        # contexts gensim's sample keeps for every head (each reads its last columns).
        reader = Documents(token_ids, lengths, widest, n_words=len(model))
        known = token_ids >= 0
        scored = known & reader.has_known_context(np.arange(len(token_ids)))
        starts = known & ~scored
        counts["n_scored"] += int(scored.sum())
        counts["oov_target"] += int((~known).sum())
        for name, head in heads.items():
            if cached is not None and name == cached.name:
                stream = cached.documents(token_ids, lengths, documents)
                plain = stream.without_cache()
            else:
                plain = Documents(token_ids, lengths, head, n_words=len(model))
            log_probs = plain.log_probs()
            for rows, score in ((scored, scores), (starts, start_scores)):
                if name in score:
                    score[name].add_at(plain, np.flatnonzero(rows), log_probs)
            if cached is not None and name == cached.name:
                cached.add(stream, scored, starts if name in starters else None)
        targets = token_ids[scored]
        unigram.add(
            np.broadcast_to(unigram_top, (len(targets), len(unigram_top))),
            unigram_log_probs[targets],
            targets,
        )
        if gensim.enabled:
            rows = np.flatnonzero(scored)
            contexts = reader.contexts_at(rows)
            sentence_of = np.repeat(np.arange(len(sentences)), lengths)
            position = np.arange(len(token_ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            for row, context in zip(rows.tolist(), contexts):
                tokens = sentences[sentence_of[row]]
                gensim.offer(tokens, int(position[row]), context, int(token_ids[row]))

    with progress(heldout, show_progress, "Scoring the held-out file") as bar:
        chunk: list[list[str]] = []
        chunk_documents: list[int] = []  # the document of each sentence of the chunk
        n_chunk = 0
        document, document_open = 0, False  # blank lines end documents (tokenfile.documents)
        for tokens in tokenfile.sentences(
            heldout, what="Held-out file", on_bytes=bar.update, blank_lines=True
        ):
            if not tokens:
                document += document_open
                document_open = False
                continue
            counts["n_documents"] += not document_open
            document_open = True
            counts["n_sentences"] += 1
            counts["n_tokens"] += len(tokens)
            bar.count_tokens(len(tokens))  # shown with the bytes read (on_bytes)
            chunk.append(tokens)
            chunk_documents.append(document)
            n_chunk += len(tokens)
            if n_chunk >= chunk_size:
                score_chunk(chunk, chunk_documents)
                chunk, chunk_documents, n_chunk = [], [], 0
        if chunk:
            score_chunk(chunk, chunk_documents)

    if not counts["n_tokens"]:
        raise InputError(Errors.E201.format(path=heldout))
    n_scored = counts["n_scored"]
    no_known_context = counts["n_tokens"] - n_scored - counts["oov_target"]
    if not n_scored:
        raise InputError(
            Errors.E202.format(
                path=heldout,
                n_tokens=counts["n_tokens"],
                oov=counts["oov_target"],
                no_context=no_known_context,
            )
        )
    predictors: dict[str, Any] = {
        name: scores[name].result(context_size=int(head.context_size))
        for name, head in heads.items()
    }
    for name in starters:  # every known word, as a language model is measured (KenLM, SRILM)
        every_word = (scores[name] + start_scores[name]).result()
        every_word["coverage"] = every_word["n_scored"] / counts["n_tokens"]
        predictors[name]["with_sentence_starts"] = every_word
    if cached is not None:
        predictors.update(cached.results(counts["n_tokens"]))
    predictors["unigram"] = unigram.result()
    predictors["gensim_predict_output_word"] = gensim.result(show_progress)
    return {
        "heldout": str(heldout),
        "n_sentences": counts["n_sentences"],
        "n_documents": counts["n_documents"],
        "n_tokens": counts["n_tokens"],
        "n_scored": n_scored,
        "coverage": n_scored / counts["n_tokens"],
        "excluded": {"oov_target": counts["oov_target"], "no_known_context": no_known_context},
        "scored_positions": (
            "tokens in the vocabulary with at least one in-vocabulary word before them in the "
            "same sentence; excluded: oov_target (word not in the vocabulary) and "
            "no_known_context (no known word before it in its sentence)"
        ),
        "predictors": predictors,
    }


class _CacheRow:
    """The trained head with the model's saved document cache (``spacy_hs.cache``), on the same
    positions as the head alone. The held-out file is one document read in order, or several
    where blank lines mark their ends: the cache runs across sentences and chunks (each chunk's
    ``Documents`` starts from the history the previous one ended with), and starts empty at
    each document."""

    def __init__(self, model: HSModel, head: Head, cache: CacheSettings):
        self.model, self.head, self.cache = model, head, cache
        self.name = head.name
        self.score, self.start_score = Score(), Score()
        self.history = np.zeros(0, dtype=np.int32)  # the open document's last N known ids
        self.history_document = -1

    @classmethod
    def of(cls, model: HSModel) -> _CacheRow | None:
        cache = model.cache_settings("auto")
        if model.trained_head is None or cache is None or cache.weight == 0:
            return None
        return cls(model, model.head(model.trained_head.name), cache)

    def documents(
        self, token_ids: np.ndarray, lengths: np.ndarray, documents: list[int]
    ) -> Documents:
        """A chunk (token ids, sentence lengths, each sentence's document number) as
        ``Documents`` with the cache, continuing the previous chunk's last document."""
        sentence_documents = np.asarray(documents, dtype=np.int64)
        firsts = np.flatnonzero(np.diff(sentence_documents, prepend=-1))
        continued = sentence_documents[0] == self.history_document
        stream = Documents(
            token_ids,
            lengths,
            self.head,
            self.cache,
            n_words=len(self.model),
            document_lengths=np.add.reduceat(lengths, firsts),
            history=self.history if continued else None,
        )
        self.history = stream.history_after()
        self.history_document = int(sentence_documents[-1])
        return stream

    def add(self, stream: Documents, scored: np.ndarray, starts: np.ndarray | None) -> None:
        """Score a chunk's ``scored`` positions, and its ``starts`` apart (if given)."""
        log_probs = stream.log_probs()
        for rows, score in ((scored, self.score), (starts, self.start_score)):
            if rows is not None:
                score.add_at(stream, np.flatnonzero(rows), log_probs)

    def results(self, n_tokens: int) -> dict[str, Any]:
        extra = {
            "head": self.name,
            "cache": self.cache.to_dict(),
            "context_size": int(self.head.context_size),
        }
        result = self.score.result(**extra)
        if self.head.predicts_sentence_start:
            every_word = (self.score + self.start_score).result()
            every_word["coverage"] = every_word["n_scored"] / n_tokens
            result["with_sentence_starts"] = every_word
        return {f"{self.name}+cache": result}


def _unigram(model: HSModel) -> tuple[np.ndarray, np.ndarray]:
    """Unigram log-probabilities (counts / total) and the ids of the TOP_K most frequent
    words (ties broken by id)."""
    counts = model.counts.astype(np.float64)
    log_probs = np.log(counts / counts.sum())
    top = np.argsort(-counts, kind="stable")[:TOP_K]
    return log_probs, top
