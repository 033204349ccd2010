"""The ``hs_predictor`` pipeline component: exact HS next-word probabilities on spaCy docs.

A thin layer over ``HSModel`` (which knows nothing of spaCy). It sets:

* ``Doc._.hs_next``, ``Span._.hs_next``, ``Token._.hs_next``: the ``top_k`` most probable words
  after the doc / span / token, as ``[(word, probability), ...]``. The context is the known
  words up to and including that position, never crossing a sentence start (when the doc has
  sentences), the last ``context_size`` of them. A span's context starts at the span's start.
* ``Token._.hs_logprob``: natural log P(token | the known words before it in its sentence), or
  None if the token is out of vocabulary, dropped by the normaliser, or has no known context.
* ``Doc._.hs_perplexity``: ``exp(-mean(hs_logprob))`` over the scorable tokens, or None.

Values live in ``doc.user_data["spacy_hs"]`` (plain tuples and dicts, msgpack-able), so they
survive ``DocBin(store_user_data=True)`` and ``nlp.pipe(n_process=2)``; the extension getters
only read them. ``Doc._.hs_next``, ``Token._.hs_logprob`` and ``Doc._.hs_perplexity`` are
computed for a whole batch at once in ``pipe``; ``Token._.hs_next`` and ``Span._.hs_next`` are
computed on first access by the component that made the doc (found through a per-process
registry keyed by the id stored with the doc, so two pipelines with different models each
answer with their own), and cached in the doc.

Word vectors: the model's input vectors are copied into ``nlp.vocab.vectors``. spaCy looks a
token's vector up by the attribute ``Vectors.attr``; for a lowercased model we set it to
``LOWER``, so "United" and "united" both find the vector of "united" (``token.vector``,
``doc.similarity``) without adding a key per casing. Tokens the normaliser maps to a
placeholder (numbers, URLs) or drops have no vector: spaCy reads vectors by a lexeme attribute,
not through the normaliser.

No ``from __future__ import annotations`` here: spaCy validates the factory's settings against
its annotations at run time.
"""

import logging
import math
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from spacy import util
from spacy.attrs import ORTH, SENT_START
from spacy.language import Language
from spacy.lexeme import Lexeme
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span, Token
from spacy.vectors import Vectors
from spacy.vocab import Vocab

from ..cache import CacheSettings, cache_counts, mix_log_probs
from ..corpus.normalize import TokenNormalizer
from ..document import Document, cached_top_k
from ..errors import ConfigError, Errors, PipelineError, Warnings, WrongTypeError
from ..heads.base import context_matrix, stream_contexts
from ..hs_model import Head, HSModel, registered_head_names
from ..orth_table import OrthTable
from ..util import is_positive_int, recover_dir
from ..validation import MAX_CONTEXT_SIZE
from . import DEFAULT_HEAD, DEFAULT_TOP_K

logger = logging.getLogger("spacy_hs")
DATA_KEY = "spacy_hs"  # doc.user_data[DATA_KEY] holds everything this component sets
UNKNOWN = -1  # word id of out-of-vocabulary tokens
LN2 = math.log(2.0)
# Whole distributions (V values each) held at once for ranks and entropies: 16 MB of float64.
CHUNK_ELEMENTS = 1 << 21
DROPPED = -2  # word id of tokens the normaliser drops (e.g. punctuation)

# Components alive in this process, by instance id; docs store the id of the one that made them.
# Unpickled copies share their original's id (same model), hence a set per id.
_COMPONENTS: "dict[str, weakref.WeakSet[HSPredictor]]" = {}


@Language.factory(
    "hs_predictor",
    default_config={
        "model_path": None,
        "top_k": DEFAULT_TOP_K,
        "context_size": None,
        "head": DEFAULT_HEAD,
        "eager": True,
        "set_vectors": True,
        "unknown_word": "auto",
        "cache": "auto",
    },
    assigns=[
        "doc._.hs_next",
        "doc._.hs_perplexity",
        "doc._.hs_unknown",
        "span._.hs_next",
        "token._.hs_next",
        "token._.hs_logprob",
        "token._.hs_surprisal",
        "token._.hs_entropy",
        "token._.hs_rank",
    ],
)
def make_hs_predictor(
    nlp: Language,
    name: str,
    model_path: str | None,
    top_k: int,
    context_size: int | None,
    head: str,
    eager: bool,
    set_vectors: bool,
    unknown_word: str | None,
    cache: Any,
) -> "HSPredictor":
    """Build the ``hs_predictor`` component.

    model_path: an HSModel directory (``spacy-hs train`` output). Optional: the model can also
        come from ``[initialize.components.hs_predictor]`` or ``from_disk``. A path that does not
        exist is not an error here, so a saved pipeline loads on a machine without it (its own
        copy of the model is read by ``from_disk``); calling the component without a model is.
        (Where the path still exists, ``spacy.load`` reads it, then replaces it with the
        pipeline's copy: correct, but slower; ``spacy-hs assemble`` leaves model_path unset.)
    top_k: how many words ``hs_next`` lists.
    context_size: how many known words before a position form its context; None uses the
        head's own (the training window for the CBOW head).
    head: the head that predicts: "auto" (the model's trained head if it has one, else
        "cbow"), "cbow" (gensim's CBOW-style mean of the context vectors, which every model
        has) or the name of the model's trained head (e.g. "directional", "ngram", or one
        another package registers). Checked against the model's heads when it is loaded.
    eager: compute ``Token._.hs_logprob``, ``Doc._.hs_next`` and ``Doc._.hs_perplexity`` while
        processing (batched); if False they are computed on first access.
    set_vectors: copy the model's input vectors into ``nlp.vocab.vectors``.
    unknown_word: the word out-of-vocabulary tokens are scored as, as language models score
        them: "auto" is ``<unk>`` if the model has it; None leaves them unscored. How many
        tokens of a doc were scored so is ``Doc._.hs_unknown``.
    cache: the document cache (``spacy_hs.cache``), which spans one Doc and never crosses into
        another: "auto" (the model's setting, tuned and saved by ``spacy-hs train``; none for
        a model without one), None (off) or ``{"size": N, "weight": λ}``.
    """
    conflicts = register_extensions()
    if conflicts:
        raise PipelineError(Errors.E306.format(names=", ".join(conflicts)))
    model = None
    if model_path is not None and Path(model_path).exists():
        model = HSModel.from_disk(model_path)
    return HSPredictor(
        nlp.vocab,
        name,
        model=model,
        model_path=model_path,
        top_k=top_k,
        context_size=context_size,
        head=head,
        eager=eager,
        set_vectors=set_vectors,
        unknown_word=unknown_word,
        cache=cache,
    )


class HSPredictor(Pipe):
    """Sets next-word predictions, per-token log-probabilities and perplexity on docs."""

    def __init__(
        self,
        vocab: Vocab,
        name: str = "hs_predictor",
        *,
        model: HSModel | None = None,
        model_path: str | Path | None = None,
        top_k: int = DEFAULT_TOP_K,
        context_size: int | None = None,
        head: str = DEFAULT_HEAD,
        eager: bool = True,
        set_vectors: bool = True,
        unknown_word: str | None = "auto",
        cache: Any = "auto",
    ) -> None:
        if not is_positive_int(top_k):
            raise ConfigError(Errors.E301.format(top_k=top_k))
        _check_context_size(context_size)
        _check_cache(cache)
        self.vocab = vocab
        self.name = name
        self.model_path = None if model_path is None else str(model_path)
        self.top_k = top_k
        self.context_size = context_size
        self.head_name = head
        self.eager = eager
        self.set_vectors = set_vectors
        self.unknown_word = unknown_word
        self.cache = cache
        self._cache: CacheSettings | None = None  # the setting resolved for the model
        self._unknown_id: int | None = None
        self.model: HSModel | None = None
        self._lowercase = False  # look tokens up lowercased (set_model)
        self.instance_id = ""
        self._reset_caches()
        if model is not None:
            self.set_model(model)

    # -- the model ------------------------------------------------------------------------

    def set_model(self, model: HSModel, *, copy_vectors: bool | None = None) -> None:
        """Use ``model`` from now on: its head, normaliser and (if ``set_vectors``) vectors."""
        if not isinstance(model, HSModel):
            raise WrongTypeError(Errors.E009.format(type=type(model).__name__))
        _check_context_size(self.context_size)  # it may have been set since __init__
        _check_cache(self.cache)
        if (
            self.head_name not in model.head_names()
            and self.head_name not in registered_head_names()
        ):
            raise ConfigError(
                Errors.E303.format(head=self.head_name, heads=", ".join(model.head_names()))
            )
        predictor = model.head(self.head_name)  # E023: a registered head the model lacks
        normalizer = model.settings.get("normalizer")
        context_size = self.context_size or int(predictor.context_size)
        if context_size > predictor.context_size:  # a head reads at most its own context
            warnings.warn(
                Warnings.W300.format(
                    size=context_size, name=predictor.name, head=predictor.context_size
                ),
                stacklevel=2,
            )
            context_size = int(predictor.context_size)
        model_lang = model.settings.get("lang")
        if model_lang and self.vocab.lang and model_lang != self.vocab.lang:
            warnings.warn(
                Warnings.W301.format(model_lang=model_lang, lang=self.vocab.lang), stacklevel=2
            )
        self.model = model
        self._head: Head = predictor
        self._unknown_id = model.unknown_id(self.unknown_word)
        self._cache = model.cache_settings(self.cache)  # E027: a bad saved setting
        if self._cache is not None and self._cache.weight == 0:
            self._cache = None
        self._context = context_size
        self._normalizer = TokenNormalizer(normalizer) if normalizer is not None else None
        # A model without normaliser settings (e.g. HSModel.from_gensim on a tutorial's
        # lowercased corpus) whose words are all lowercase is looked up lowercased.
        self._lowercase = normalizer is None and model.is_lowercase()
        if self._lowercase:
            logger.info(Warnings.W302.format(name=self.name))
        self._reset_caches()
        # A new model gets a new id: docs made with the old one no longer find a component.
        _register(self, uuid.uuid4().hex)
        if self.set_vectors if copy_vectors is None else copy_vectors:
            self._copy_vectors()

    def _require_model(self) -> HSModel:
        if self.model is None:
            if self.model_path is not None:
                raise PipelineError(Errors.E307.format(name=self.name, path=self.model_path))
            raise PipelineError(Errors.E300.format(name=self.name))
        return self.model

    def _copy_vectors(self) -> None:
        model = self.model
        assert model is not None
        lowercase = self._lowercase or (
            self._normalizer is not None and self._normalizer.settings.lowercase
        )
        self.vocab.vectors = Vectors(
            strings=self.vocab.strings,
            data=np.array(model.vectors, dtype=np.float32, copy=True),
            keys=model.words,
            name=f"spacy_hs_{len(model)}x{model.vector_size}",
            attr="LOWER" if lowercase else "ORTH",
        )

    def _reset_caches(self) -> None:
        # orth hash -> model word id (UNKNOWN if out of vocabulary or dropped). Orth hashes are
        # hashes of the text, the same in every vocab, so one cache serves docs of any vocab.
        # The dict serves single lookups, the table whole batches (``_word_ids``).
        self._orth_ids: dict[int, int] = {}
        self._orth_table = OrthTable()
        # Per Doc: its Document (spacy_hs.document) and where its tokens are in it, for the
        # values computed on first access with the cache; dropped with the Doc.
        self._documents: weakref.WeakKeyDictionary[Doc, _DocDocument] = (
            weakref.WeakKeyDictionary()
        )

    # -- processing -----------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        """Set the eager attributes on one doc (see ``pipe`` for many)."""
        error_handler = self.get_error_handler()
        try:
            self._process([doc])
        except Exception as err:
            error_handler(self.name, self, [doc], err)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Process docs in batches: one batched model call per batch, not one per token."""
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size):
            try:
                self._process(docs)
            except Exception as err:
                error_handler(self.name, self, docs, err)
            yield from docs

    def _process(self, docs: list[Doc]) -> None:
        self._require_model()
        if self.eager:
            self._annotate(docs)
        else:
            for doc in docs:
                doc.user_data[DATA_KEY] = {"component": self.instance_id}

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        """Load the model from ``model_path`` (``[initialize.components.hs_predictor]``).

        Without ``model_path`` the model given in the config or by ``from_disk`` is kept; if
        there is none, raises the error that says how to give one.
        """
        if model_path is not None:
            self.model_path = str(model_path)
            self.set_model(HSModel.from_disk(model_path))
        self._require_model()

    # -- batched computation of the eager attributes --------------------------------------

    def _word_ids(self, orths: np.ndarray, vocabs: Callable[[int], Vocab]) -> np.ndarray:
        """Model word ids (int32) of tokens given by orth hash; UNKNOWN for unknown or dropped
        ones. Orths seen before are mapped by a hash table without Python per token; only new
        ones are looked up (once each).

        vocabs(i): the vocab of token i, to read the lexeme of an orth not seen before.
        """

        def resolve(new: np.ndarray, first: np.ndarray) -> list[int]:
            return [self._lookup(orth, vocabs(i)) for orth, i in zip(new.tolist(), first.tolist())]

        return self._orth_table.lookup(orths, resolve).astype(np.int32)

    def _lookup(self, orth: int, vocab: Vocab) -> int:
        model = self.model
        assert model is not None
        word = self.normal_form(vocab[orth])
        word_id = DROPPED if word is None else model.key_to_index.get(word, UNKNOWN)
        self._orth_ids[orth] = word_id
        return word_id

    def normal_form(self, lex: Lexeme) -> str | None:
        """The corpus word a lexeme is looked up as, or None if the normaliser drops it."""
        if self._normalizer is not None:
            return self._normalizer.norm(lex)
        text = lex.lower_ if self._lowercase else lex.orth_
        return text if text.strip() else None

    def _token_ids(self, docs: Sequence[Doc]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tokens of ``docs``, concatenated: model word ids int32 (UNKNOWN, DROPPED), the
        sentence number of each (a doc start opens a sentence, so no context crosses from one
        doc into the next) and the docs' lengths."""
        lengths = np.fromiter((len(doc) for doc in docs), dtype=np.int64, count=len(docs))
        doc_starts = np.zeros(len(docs), dtype=np.int64)
        np.cumsum(lengths[:-1], out=doc_starts[1:])
        # SENT_START is 1 at a sentence start, else -1 or 0 (0: no sentence annotation).
        arrays = [doc.to_array([ORTH, SENT_START]) for doc in docs]
        table = np.concatenate(arrays) if lengths.sum() else np.zeros((0, 2), dtype=np.uint64)
        is_start = table[:, 1] == 1
        is_start[doc_starts[lengths > 0]] = True
        word_ids = self._word_ids(
            table[:, 0],
            lambda i: docs[int(np.searchsorted(doc_starts, i, side="right")) - 1].vocab,
        )
        return word_ids, np.cumsum(is_start) - 1, lengths

    def _annotate(self, docs: Sequence[Doc]) -> None:
        """Compute the eager attributes of a batch of docs, with one call into the model for
        the log-probabilities and one top-k query for the words after each doc.

        Tokens the normaliser drops are left out of the stream: they are neither scored nor
        context. The model reads each token's context itself (``HSModel.log_prob_ids``).
        """
        model = self._require_model()
        if not docs:
            return
        predictor = self._head
        word_ids, sentence, lengths = self._token_ids(docs)
        n_docs, n_tokens = len(docs), len(word_ids)
        n_sentences = int(sentence[-1]) + 1 if n_tokens else 0
        kept = word_ids != DROPPED
        ids = word_ids[kept]
        log_probs = np.full(n_tokens, np.nan)
        log_probs[kept] = model.log_prob_ids(
            ids,
            np.bincount(sentence[kept], minlength=n_sentences),
            head=predictor.name,  # the head set_model chose
            unknown=self.unknown_word,
            cache=None,  # the docs of a batch are one stream: the cache is mixed in per doc below
            context_size=self._context,
        )
        doc_of_token = np.repeat(np.arange(n_docs), lengths)
        cache = self._cache
        if cache is not None:
            targets = ids.copy()
            if self._unknown_id is not None:
                targets[targets < 0] = self._unknown_id
            counts, held = cache_counts(ids, cache.size, targets, documents=doc_of_token[kept])
            log_probs[kept] = mix_log_probs(log_probs[kept], counts, held, cache.weight)
        scored_unknown = (word_ids == UNKNOWN) & ~np.isnan(log_probs)
        # Perplexity per doc.
        valid = ~np.isnan(log_probs)
        sums = np.bincount(doc_of_token[valid], weights=log_probs[valid], minlength=n_docs)
        counts = np.bincount(doc_of_token[valid], minlength=n_docs)
        unknown_counts = np.bincount(doc_of_token[scored_unknown], minlength=n_docs)
        # Top-k after each doc: the context of an unknown end marker put after the doc's last
        # token, in its last sentence (an empty doc's marker opens a sentence of its own).
        ends = np.cumsum(np.bincount(doc_of_token[kept], minlength=n_docs))
        doc_starts = np.cumsum(lengths) - lengths
        sentence_before = np.concatenate([[-1], sentence])  # [p]: the sentence of token p - 1
        # Keys 2s for sentence s and 2s + 1 for an empty doc's marker after it: non-decreasing
        # along the stream, so each run of a key is a sentence.
        marker_keys = np.where(
            lengths > 0,
            2 * sentence_before[doc_starts + lengths],
            2 * sentence_before[doc_starts] + 1,
        )
        stream = np.insert(ids, ends, UNKNOWN)
        keys = np.insert(2 * sentence[kept], ends, marker_keys)
        runs = np.flatnonzero(np.diff(keys)) + 1
        stream_lengths = np.diff(np.concatenate([[0], runs, [len(keys)]]))
        contexts = stream_contexts(stream, stream_lengths, self._context)
        doc_contexts = contexts[ends + np.arange(n_docs)]
        if cache is None:
            top_ids, top_log_probs = predictor.top_k(doc_contexts, self.top_k)
        else:  # each doc's cache: its last N known tokens
            known = ids >= 0
            known_ids = ids[known]
            known_ends = np.cumsum(np.bincount(doc_of_token[kept][known], minlength=n_docs))
            known_starts = np.maximum(known_ends - np.diff(known_ends, prepend=0), 0)
            windows = [
                known_ids[max(start, end - cache.size) : end]
                for start, end in zip(known_starts.tolist(), known_ends.tolist())
            ]
            top_ids, top_log_probs = cached_top_k(
                predictor, doc_contexts, windows, cache, self.top_k, len(model)
            )
        # Few container objects per doc (a dict and three tuples of atoms): each one allocated
        # counts towards the garbage collector's next run, and those of docs still alive are
        # traversed and promoted by it. With a list per [word, probability] pair, collections
        # took about 7% of the pipeline's time on one-sentence docs (Penn Treebank), half that
        # with these tuples.
        next_words: list[tuple] = [()] * n_docs
        next_probs: list[tuple] = [()] * n_docs
        words = model.words
        for row in np.flatnonzero(top_ids[:, 0] >= 0).tolist():
            next_words[row] = tuple(map(words.__getitem__, top_ids[row].tolist()))
            next_probs[row] = tuple(map(math.exp, top_log_probs[row].tolist()))  # as HSModel
        # Per-token values, None where unscorable: an object array starts as None.
        values = np.empty(n_tokens, dtype=object)
        values[valid] = log_probs[valid]
        instance_id = self.instance_id
        for doc, start, end, total, count, n_unknown, doc_words, doc_probs in zip(
            docs,
            doc_starts.tolist(),
            (doc_starts + lengths).tolist(),
            sums.tolist(),
            counts.tolist(),
            unknown_counts.tolist(),
            next_words,
            next_probs,
        ):
            doc.user_data[DATA_KEY] = {
                "component": instance_id,
                "log_probs": tuple(values[start:end].tolist()),
                "perplexity": math.exp(-total / count) if count else None,
                "unknown": n_unknown,
                "next_words": doc_words,
                "next_probs": doc_probs,
            }

    def token_contexts(self, doc: Doc) -> np.ndarray:
        """The context of every token of ``doc``, as its log-probability reads it: an int32
        matrix (len(doc), context size) of the known word ids before the token in its
        sentence, the last ``context_size``, oldest first, right-aligned, -1 before them.
        Rows of tokens the normaliser drops are all -1."""
        self._require_model()
        word_ids, sentence, _ = self._token_ids([doc])
        kept = word_ids != DROPPED
        out = np.full((len(doc), self._context), -1, dtype=np.int32)
        if kept.any():
            n_sentences = int(sentence[-1]) + 1
            lengths = np.bincount(sentence[kept], minlength=n_sentences)
            out[kept] = stream_contexts(word_ids[kept], lengths, self._context)
        return out

    # -- lazy top-k after a position ------------------------------------------------------

    def context_ids(self, doc: Doc, start: int, end: int) -> list[int]:
        """Word ids of the context that ends at ``doc[end - 1]``: the known words of
        ``doc[start:end]`` from the last sentence start on, the last ``context_size`` of them."""
        self._require_model()
        size = self._context
        check_sentences = doc.has_annotation("SENT_START")
        cache = self._orth_ids
        ids: list[int] = []
        for k in range(end - 1, start - 1, -1):
            token = doc[k]
            orth = token.orth
            word_id = cache[orth] if orth in cache else self._lookup(orth, doc.vocab)
            if word_id >= 0:
                ids.append(word_id)
                if len(ids) == size:
                    break
            if check_sentences and token.is_sent_start:
                break
        ids.reverse()
        return ids

    def next_words(self, context: Sequence[int], top_k: int | None = None) -> list[list[Any]]:
        """The top-k ``[word, probability]`` after a context of word ids (oldest first); [] if
        the head has no prediction for it (an empty context, for a head that needs a word)."""
        model = self._require_model()
        ids, log_probs = self._head.top_k(
            context_matrix([context], self._context), top_k or self.top_k
        )
        if ids[0, 0] < 0:
            return []
        words = model.words
        return [[words[i], math.exp(lp)] for i, lp in zip(ids[0].tolist(), log_probs[0].tolist())]

    def next_after(self, doc: Doc, start: int, end: int) -> list[list[Any]]:
        """The top-k ``[word, probability]`` after ``doc[start:end]``: the context that ends at
        ``doc[end - 1]`` (``context_ids``) and, with the cache, the doc's known tokens before
        ``end``."""
        if self._cache is None:
            return self.next_words(self.context_ids(doc, start, end))
        view = self._document(doc)
        first = max(start, int(view.sentence_first[end - 1])) if end > 0 else start
        ids, log_probs = view.document.top_k_after(
            view.kept_before[[end]], self.top_k, starts=view.kept_before[[first]]
        )
        return _word_probs(self.model, ids[0], log_probs[0])

    def top_k_at(self, doc: Doc, indices: Sequence[int], k: int) -> list[list[Any]]:
        """The top-k ``[word, probability]`` at each of the tokens ``indices`` of ``doc`` (not
        dropped ones): the prediction its log-probability was scored from, cache included."""
        view = self._document(doc)
        ids, log_probs = view.document.top_k_at(view.kept_before[list(indices)], k)
        return [_word_probs(self.model, i, lp) for i, lp in zip(ids, log_probs)]

    def measures(self, doc: Doc, rows_per_chunk: int | None = None) -> dict[str, tuple]:
        """The exact rank and entropy (bits) at every token of ``doc``, computed once and kept
        in the doc: ``{"ranks": ..., "entropies": ...}``, None where undefined. A token has a
        rank if it has a log-probability; an entropy if it has one, or if it is out of the
        vocabulary with a known word before it in its sentence (the prediction at its slot).

        rows_per_chunk: whole distributions (rows of V values) held at once; default: about
        2^21 values."""
        data = _eager(doc)
        if "ranks" in data:
            return data
        model = self._require_model()
        view = self._document(doc)
        log_probs = data["log_probs"]
        unknown = np.flatnonzero(view.word_ids == UNKNOWN)
        with_context = unknown[view.document.has_known_context(view.kept_before[unknown])]
        wanted = sorted(
            {i for i, log_prob in enumerate(log_probs) if log_prob is not None}
            | set(with_context.tolist())
        )
        ranks: list[int | None] = [None] * len(doc)
        entropies: list[float | None] = [None] * len(doc)
        if wanted:
            rows = rows_per_chunk or max(1, CHUNK_ELEMENTS // len(model))
            found_ranks, found_entropies = view.document.ranks_and_entropies(
                view.kept_before[wanted], rows
            )
            for i, rank, entropy in zip(wanted, found_ranks.tolist(), found_entropies.tolist()):
                if log_probs[i] is not None and rank > 0:
                    ranks[i] = rank
                if not math.isnan(entropy):
                    entropies[i] = entropy
        data["ranks"], data["entropies"] = tuple(ranks), tuple(entropies)
        return data

    def _document(self, doc: Doc) -> "_DocDocument":
        """``doc`` as a ``Document`` (dropped tokens left out), made once per Doc."""
        view = self._documents.get(doc)
        if view is not None and len(view.word_ids) == len(doc):
            return view
        model = self._require_model()
        word_ids, sentence, _ = self._token_ids([doc])
        kept = word_ids != DROPPED
        n_sentences = int(sentence[-1]) + 1 if len(doc) else 0
        document = model.document(
            word_ids[kept],
            np.bincount(sentence[kept], minlength=n_sentences),
            head=self._head.name,
            unknown=self.unknown_word,
            cache=self._cache,
            context_size=self._context,
        )
        starts = np.flatnonzero(np.diff(sentence, prepend=-1))
        view = _DocDocument(
            document,
            word_ids,
            np.concatenate([[0], np.cumsum(kept)]).astype(np.int64),
            np.repeat(starts, np.diff(np.append(starts, len(doc)))),
        )
        self._documents[doc] = view
        return view

    @property
    def head(self) -> Head:
        """The head that answers this component's queries (its ``head`` setting)."""
        self._require_model()
        return self._head

    # -- serialization --------------------------------------------------------------------

    def to_bytes(self, *, exclude: Iterable[str] = util.SimpleFrozenList()) -> bytes:
        """The model as bytes (no pickle); empty if there is none yet."""
        serializers = {"model": lambda: self.model.to_bytes() if self.model is not None else b""}
        return util.to_bytes(serializers, exclude)

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = util.SimpleFrozenList()
    ) -> "HSPredictor":
        """Load the model written by ``to_bytes``."""

        def load_model(data: bytes) -> None:
            if data:
                self.set_model(HSModel.from_bytes(data))

        util.from_bytes(bytes_data, {"model": load_model}, exclude)
        return self

    def to_disk(
        self, path: str | Path, *, exclude: Iterable[str] = util.SimpleFrozenList()
    ) -> None:
        """Write the model into ``path/model`` (inside the pipeline directory)."""

        def write_model(model_path: Path) -> None:
            if self.model is not None:
                self.model.to_disk(model_path)

        util.to_disk(path, {"model": write_model}, exclude)

    def from_disk(
        self, path: str | Path, *, exclude: Iterable[str] = util.SimpleFrozenList()
    ) -> "HSPredictor":
        """Load the model from ``path/model``, or from ``path`` itself if it is a model dir."""
        path = util.ensure_path(path)
        if (path / "meta.json").exists() and not (path / "model").exists():
            self.set_model(HSModel.from_disk(path))  # an HSModel directory given directly
            return self

        def read_model(model_path: Path) -> None:
            recover_dir(model_path)  # a replacement interrupted between its two renames
            if model_path.exists():
                self.set_model(HSModel.from_disk(model_path))

        util.from_disk(path, {"model": read_model}, exclude)
        return self

    def __reduce__(self) -> tuple:
        # For nlp.pipe(n_process>1) with the "spawn" start method: the model travels as bytes
        # (no pickle of its arrays) and keeps its instance id, so docs made in a child process
        # find this component when they come back.
        settings = {
            "model_path": self.model_path,
            "top_k": self.top_k,
            "context_size": self.context_size,
            "head": self.head_name,
            "eager": self.eager,
            "set_vectors": self.set_vectors,
            "unknown_word": self.unknown_word,
            "cache": self.cache,
        }
        model_bytes = self.model.to_bytes() if self.model is not None else b""
        return (_unpickle, (self.vocab, self.name, settings, model_bytes, self.instance_id))


class _DocDocument:
    """A Doc's ``Document`` and how its tokens map into it."""

    def __init__(
        self,
        document: Document,
        word_ids: np.ndarray,
        kept_before: np.ndarray,
        sentence_first: np.ndarray,
    ):
        self.document = document
        self.word_ids = word_ids  # per token: word id, UNKNOWN or DROPPED
        self.kept_before = kept_before  # [i]: tokens before token i that are not dropped
        self.sentence_first = sentence_first  # [i]: the first token of token i's sentence


def _word_probs(model: Any, ids: np.ndarray, log_probs: np.ndarray) -> list[list[Any]]:
    """``[[word, probability], ...]`` of a top-k row; [] where the head has no prediction."""
    if not len(ids) or ids[0] < 0:
        return []
    words = model.words
    return [[words[i], math.exp(lp)] for i, lp in zip(ids.tolist(), log_probs.tolist())]


def _check_cache(cache: Any) -> None:
    if not (isinstance(cache, str) and cache == "auto"):
        CacheSettings.from_value(cache)  # E027


def _check_context_size(context_size: Any) -> None:
    # Bounded: contexts are (tokens, context_size) int32 matrices.
    if context_size is not None and not is_positive_int(context_size):
        raise ConfigError(Errors.E302.format(context_size=context_size))
    if context_size is not None and context_size > MAX_CONTEXT_SIZE:
        raise ConfigError(Errors.E330.format(context_size=context_size, limit=MAX_CONTEXT_SIZE))


def _register(component: HSPredictor, instance_id: str) -> None:
    old = _COMPONENTS.get(component.instance_id)
    if old is not None:
        old.discard(component)
    for key in [k for k, members in _COMPONENTS.items() if not members]:
        del _COMPONENTS[key]
    component.instance_id = instance_id
    _COMPONENTS.setdefault(instance_id, weakref.WeakSet()).add(component)


def _unpickle(
    vocab: Vocab, name: str, settings: dict[str, Any], model_bytes: bytes, instance_id: str
) -> HSPredictor:
    component = HSPredictor(vocab, name, **settings)
    if model_bytes:
        # The pickled vocab already holds the vectors.
        component.set_model(HSModel.from_bytes(model_bytes), copy_vectors=False)
        _register(component, instance_id)
    return component


# -- extension attributes ---------------------------------------------------------------------


def _data(doc: Doc) -> dict:
    data = doc.user_data.get(DATA_KEY)
    if data is None:
        raise PipelineError(Errors.E304)
    return data


def component_of(doc: Doc) -> HSPredictor | None:
    """The ``hs_predictor`` that processed ``doc``, if it is still loaded in this process
    (None if not, or if no ``hs_predictor`` processed the doc)."""
    data = doc.user_data.get(DATA_KEY)
    if not isinstance(data, dict):
        return None
    for component in _COMPONENTS.get(data.get("component", ""), ()):
        return component
    return None


def _component(doc: Doc) -> HSPredictor:
    component = component_of(doc)
    if component is None:
        raise PipelineError(Errors.E305)
    return component


def _eager(doc: Doc) -> dict:
    data = _data(doc)
    if "log_probs" not in data:  # processed with eager=False: compute now, keep lazy caches
        _component(doc)._annotate([doc])
        computed = _data(doc)
        computed.update({k: v for k, v in data.items() if k in ("token_next", "span_next")})
        data = computed
    return data


def _pairs(values: Iterable[Sequence[Any]]) -> list[tuple[str, float]]:
    return [(word, prob) for word, prob in values]


def _cached_next(doc: Doc, cache_name: str, key: int | str, start: int, end: int) -> list:
    data = _data(doc)
    cache = data.get(cache_name)
    if cache is None:
        cache = data[cache_name] = {}
    if key not in cache:
        cache[key] = _component(doc).next_after(doc, start, end)
    return _pairs(cache[key])


def doc_hs_next(doc: Doc) -> list[tuple[str, float]]:
    """Top-k words after the doc (its last sentence)."""
    data = _eager(doc)
    return list(zip(data["next_words"], data["next_probs"]))


def doc_hs_perplexity(doc: Doc) -> float | None:
    """Perplexity of the doc's scorable tokens, or None if none is scorable."""
    return _eager(doc)["perplexity"]


def doc_hs_unknown(doc: Doc) -> int:
    """How many tokens of the doc were scored as the model's unknown word (``unknown_word``)."""
    return _eager(doc).get("unknown", 0)


def span_hs_next(span: Span) -> list[tuple[str, float]]:
    """Top-k words after the span, given the span's words (from its last sentence start)."""
    return _cached_next(span.doc, "span_next", f"{span.start}:{span.end}", span.start, span.end)


def token_hs_next(token: Token) -> list[tuple[str, float]]:
    """Top-k words after the token, given the token and the known words before it."""
    return _cached_next(token.doc, "token_next", token.i, 0, token.i + 1)


def token_hs_logprob(token: Token) -> float | None:
    """log P(token | the known words before it in its sentence), or None if unscorable."""
    return _eager(token.doc)["log_probs"][token.i]


def token_hs_surprisal(token: Token) -> float | None:
    """-log2 P(token): ``Token._.hs_logprob`` in bits, or None if unscored."""
    log_prob = token_hs_logprob(token)
    return None if log_prob is None else -log_prob / LN2


def token_hs_entropy(token: Token) -> float | None:
    """The entropy in bits of the whole next-word distribution at the token's slot (the one its
    log-probability is read from), or None where there is none (``HSPredictor.measures``)."""
    doc = token.doc
    return _component_measures(doc)["entropies"][token.i]


def token_hs_rank(token: Token) -> int | None:
    """The exact rank of the token's word at its slot (1: the most probable), or None if
    unscored."""
    return _component_measures(token.doc)["ranks"][token.i]


def _component_measures(doc: Doc) -> dict:
    data = _eager(doc)
    if "ranks" in data:  # computed before, e.g. before a DocBin round trip
        return data
    return _component(doc).measures(doc)


EXTENSIONS: list[tuple[type, str, Callable]] = [
    (Doc, "hs_next", doc_hs_next),
    (Doc, "hs_perplexity", doc_hs_perplexity),
    (Doc, "hs_unknown", doc_hs_unknown),
    (Span, "hs_next", span_hs_next),
    (Token, "hs_next", token_hs_next),
    (Token, "hs_logprob", token_hs_logprob),
    (Token, "hs_surprisal", token_hs_surprisal),
    (Token, "hs_entropy", token_hs_entropy),
    (Token, "hs_rank", token_hs_rank),
]


def register_extensions() -> list[str]:
    """Register the extension attributes once; returns the names taken by someone else.

    Safe to call any number of times (no E090). Our own getters from an earlier import of this
    module (``importlib.reload``) are replaced; anyone else's extension of the same name is left
    alone and reported, and the factory refuses to build a component that would misbehave.
    """
    conflicts = []
    for cls, name, getter in EXTENSIONS:
        existing = cls.get_extension(name)
        if existing is None:
            cls.set_extension(name, getter=getter)
            continue
        current = existing[2]
        if current is getter:
            continue
        if getattr(current, "__module__", None) == __name__:
            cls.set_extension(name, getter=getter, force=True)
        else:
            conflicts.append(f"{cls.__name__}._.{name}")
    return conflicts


register_extensions()
