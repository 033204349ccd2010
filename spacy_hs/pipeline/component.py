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

from ..corpus.normalize import TokenNormalizer
from ..errors import ConfigError, Errors, PipelineError, Warnings, WrongTypeError
from ..hs_model import HSModel, Predictor
from ..orth_table import OrthTable
from ..util import is_positive_int, recover_dir
from ..validation import MAX_CONTEXT_SIZE
from . import DEFAULT_HEAD, DEFAULT_TOP_K, HEADS

logger = logging.getLogger("spacy_hs")
DATA_KEY = "spacy_hs"  # doc.user_data[DATA_KEY] holds everything this component sets
UNKNOWN = -1  # word id of out-of-vocabulary tokens
DROPPED = -2  # word id of tokens the normaliser drops (e.g. punctuation)
CHUNK = 8192  # token contexts per model call

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
    },
    assigns=[
        "doc._.hs_next",
        "doc._.hs_perplexity",
        "doc._.hs_unknown",
        "span._.hs_next",
        "token._.hs_next",
        "token._.hs_logprob",
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
    head: "cbow" (gensim's CBOW-style mean of context vectors), "directional" (a trained
        next-word head) or "auto" (directional if the model has one).
    eager: compute ``Token._.hs_logprob``, ``Doc._.hs_next`` and ``Doc._.hs_perplexity`` while
        processing (batched); if False they are computed on first access.
    set_vectors: copy the model's input vectors into ``nlp.vocab.vectors``.
    unknown_word: the word out-of-vocabulary tokens are scored as, as language models score
        them: "auto" is ``<unk>`` if the model has it; None leaves them unscored. How many
        tokens of a doc were scored so is ``Doc._.hs_unknown``.
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
    ) -> None:
        if not is_positive_int(top_k):
            raise ConfigError(Errors.E301.format(top_k=top_k))
        _check_context_size(context_size)
        if head not in HEADS:
            raise ConfigError(Errors.E303.format(head=head, heads=", ".join(HEADS)))
        self.vocab = vocab
        self.name = name
        self.model_path = None if model_path is None else str(model_path)
        self.top_k = top_k
        self.context_size = context_size
        self.head = head
        self.eager = eager
        self.set_vectors = set_vectors
        self.unknown_word = unknown_word
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
        predictor = model.predictor(self.head)  # E023/E024 if the head is unavailable
        normalizer = model.settings.get("normalizer")
        context_size = self.context_size or int(predictor.context_size)
        if self.context_size and predictor.name != "cbow" and context_size > predictor.context_size:
            warnings.warn(
                Warnings.W300.format(size=context_size, head=predictor.context_size), stacklevel=2
            )
            context_size = int(predictor.context_size)
        model_lang = model.settings.get("lang")
        if model_lang and self.vocab.lang and model_lang != self.vocab.lang:
            warnings.warn(
                Warnings.W301.format(model_lang=model_lang, lang=self.vocab.lang), stacklevel=2
            )
        self.model = model
        self._predictor: Predictor = predictor
        self._unknown_id = model.unknown_id(self.unknown_word)
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

    def _annotate(self, docs: Sequence[Doc]) -> None:
        """Compute the eager attributes of a batch of docs with batched model calls.

        The docs are concatenated; a doc start counts as a sentence start, so no context
        crosses from one doc (or sentence) into the next. Contexts are built as a matrix of
        word ids with numpy (``_context_matrix``) and go to the model in chunks of ``CHUNK``,
        which bounds memory whatever the batch size.
        """
        model = self._require_model()
        weights = self._predictor.output_weights
        size = self._context
        n_docs = len(docs)
        lengths = np.fromiter(map(len, docs), np.int64, n_docs)
        n_tokens = int(lengths.sum())
        doc_starts = np.zeros(n_docs, dtype=np.int64)
        np.cumsum(lengths[:-1], out=doc_starts[1:])
        # SENT_START is 1 at a sentence start, else -1 or 0 (0: no sentence annotation).
        attrs = [ORTH, SENT_START]
        arrays = [doc.to_array(attrs) for doc in docs]
        table = np.concatenate(arrays) if n_tokens else np.zeros((0, 2), dtype=np.uint64)
        is_start = table[:, 1] == 1
        non_empty = lengths > 0
        is_start[doc_starts[non_empty]] = True
        word_ids = self._word_ids(
            table[:, 0],
            lambda i: docs[int(np.searchsorted(doc_starts, i, side="right")) - 1].vocab,
        )
        sentence = np.cumsum(is_start)  # sentence number of each token, over the whole batch
        known_pos = np.flatnonzero(word_ids >= 0)
        known_ids = word_ids[known_pos]
        known_sentence = sentence[known_pos]
        # The scored tokens: the known ones, and out-of-vocabulary ones as the unknown word if
        # the model has one. A target's context is the known words [max(first, end - size),
        # end) of ``known_ids``: ``end`` known words come before it, ``first`` is the first known
        # word of its sentence.
        unknown = self._unknown_id
        is_target = word_ids >= 0 if unknown is None else word_ids >= UNKNOWN
        target_pos = np.flatnonzero(is_target)
        target_ids = np.where(word_ids[target_pos] == UNKNOWN, unknown or 0, word_ids[target_pos])
        ends = np.searchsorted(known_pos, target_pos)
        firsts = np.searchsorted(known_sentence, sentence[target_pos], side="left")
        predictor = self._predictor
        # A sentence's first word has an empty context: scored by a head that predicts from
        # the sentence start (directional), unscorable for one that cannot (CBOW).
        if not predictor.predicts_sentence_start:
            target_ids = np.where(ends > firsts, target_ids, UNKNOWN).astype(np.int32)
        scored = np.empty(len(target_pos))
        for c in range(0, len(target_pos), CHUNK):
            contexts = _context_matrix(known_ids, firsts[c : c + CHUNK], ends[c : c + CHUNK], size)
            scored[c : c + CHUNK] = predictor.log_prob_from_matrix(
                contexts, target_ids[c : c + CHUNK]
            )
        log_probs = np.full(n_tokens, np.nan)
        log_probs[target_pos] = scored
        scored_unknown = (word_ids == UNKNOWN) & ~np.isnan(log_probs)
        # Perplexity per doc.
        valid = ~np.isnan(log_probs)
        doc_of_token = np.repeat(np.arange(n_docs), lengths)
        sums = np.bincount(doc_of_token[valid], weights=log_probs[valid], minlength=n_docs)
        counts = np.bincount(doc_of_token[valid], minlength=n_docs)
        unknown_counts = np.bincount(doc_of_token[scored_unknown], minlength=n_docs)
        # Top-k after each doc: the last `size` known words of its last sentence.
        last_sentence = np.full(n_docs, -1, dtype=np.int64)  # -1: no sentence (empty doc)
        last_sentence[non_empty] = sentence[(doc_starts + lengths - 1)[non_empty]]
        lo = np.searchsorted(known_sentence, last_sentence, side="left")
        hi = np.searchsorted(known_sentence, last_sentence, side="right")
        hidden, has_context = predictor.hidden_from_matrix(_context_matrix(known_ids, lo, hi, size))
        # Few container objects per doc (a dict and three tuples of atoms): each one allocated
        # counts towards the garbage collector's next run, and those of docs still alive are
        # traversed and promoted by it. With a list per [word, probability] pair, collections
        # took about 7% of the pipeline's time on one-sentence docs (Penn Treebank), half that
        # with these tuples.
        next_words: list[tuple] = [()] * n_docs
        next_probs: list[tuple] = [()] * n_docs
        rows = np.flatnonzero(has_context)
        if len(rows):
            top_ids, top_log_probs = model.top_k_hidden(hidden[rows], self.top_k, weights)
            words = model.words
            for row, row_ids, row_probs in zip(
                rows.tolist(), top_ids.tolist(), np.exp(top_log_probs).tolist()
            ):
                next_words[row] = tuple(map(words.__getitem__, row_ids))
                next_probs[row] = tuple(row_probs)
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
        """The top-k ``[word, probability]`` after a context of word ids ([] if it is empty)."""
        model = self._require_model()
        hidden, has_context = self._predictor.hidden_from_ids([context])
        if not has_context[0]:
            return []
        ids, log_probs = model.top_k_hidden(
            hidden, top_k or self.top_k, self._predictor.output_weights
        )
        return [[model.words[i], p] for i, p in zip(ids[0].tolist(), np.exp(log_probs[0]).tolist())]

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
            "head": self.head,
            "eager": self.eager,
            "set_vectors": self.set_vectors,
            "unknown_word": self.unknown_word,
        }
        model_bytes = self.model.to_bytes() if self.model is not None else b""
        return (_unpickle, (self.vocab, self.name, settings, model_bytes, self.instance_id))


def _check_context_size(context_size: Any) -> None:
    # Bounded: contexts are (tokens, context_size) int32 matrices.
    if context_size is not None and not is_positive_int(context_size):
        raise ConfigError(Errors.E302.format(context_size=context_size))
    if context_size is not None and context_size > MAX_CONTEXT_SIZE:
        raise ConfigError(Errors.E330.format(context_size=context_size, limit=MAX_CONTEXT_SIZE))


def _context_matrix(
    known_ids: np.ndarray, first: np.ndarray, ends: np.ndarray, size: int
) -> np.ndarray:
    """Contexts as an int32 matrix (B, size): row b holds ``known_ids[max(first[b], ends[b] -
    size) : ends[b]]``, oldest first, right-aligned, padded with UNKNOWN on the left. Built a
    column at a time with numpy, so it costs no Python per context."""
    matrix = np.full((len(ends), size), UNKNOWN, dtype=np.int32)
    for back in range(1, size + 1):  # column size - back holds the back-th most recent word
        source = ends - back
        present = source >= first
        if not present.any():
            break
        matrix[:, size - back] = np.where(present, known_ids[np.maximum(source, 0)], UNKNOWN)
    return matrix


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


def _component(data: dict) -> HSPredictor:
    for component in _COMPONENTS.get(data.get("component", ""), ()):
        return component
    raise PipelineError(Errors.E305)


def _eager(doc: Doc) -> dict:
    data = _data(doc)
    if "log_probs" not in data:  # processed with eager=False: compute now, keep lazy caches
        _component(data)._annotate([doc])
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
        component = _component(data)
        cache[key] = component.next_words(component.context_ids(doc, start, end))
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


EXTENSIONS: list[tuple[type, str, Callable]] = [
    (Doc, "hs_next", doc_hs_next),
    (Doc, "hs_perplexity", doc_hs_perplexity),
    (Doc, "hs_unknown", doc_hs_unknown),
    (Span, "hs_next", span_hs_next),
    (Token, "hs_next", token_hs_next),
    (Token, "hs_logprob", token_hs_logprob),
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
