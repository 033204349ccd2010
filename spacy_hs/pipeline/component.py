"""The ``hs_predictor`` pipeline component: exact HS next-word probabilities on spaCy docs.

A thin layer over the spaCy-free core, as sense2vec's component is over ``Sense2Vec``: it maps
tokens to model word ids (``lexemes.WordIds``), hands each batch of docs to the core as one
``Documents`` (``spacy_hs.document``: sentences, docs, dropped tokens, the cache per Doc), and
writes what the core answers into ``doc.user_data``. The attributes and their getters are in
``spacy_hs.pipeline.extensions``; the model's vectors are copied into ``nlp.vocab.vectors``.
No ``from __future__ import annotations``: spaCy validates the factory's settings by them.
"""

import logging
import math
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from spacy import util
from spacy.language import Language
from spacy.lexeme import Lexeme
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..document import Documents
from ..errors import Errors, PipelineError, SpacyHSError, Warnings, WrongTypeError
from ..hs_model import Head, HSModel
from ..util import recover_dir
from . import DEFAULT_HEAD, DEFAULT_TOP_K
from .extensions import ASSIGNS, DATA_KEY, register_component, register_extensions, stamp
from .lexemes import DROPPED, WordIds
from .settings import SETTINGS, check_settings, resolve

logger = logging.getLogger("spacy_hs")


@Language.factory("hs_predictor", default_config=SETTINGS, assigns=ASSIGNS)
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
    """Build ``hs_predictor`` (settings: ``pipeline.settings``). ``Doc._.hs_unknown`` counts the
    OOV tokens a model without ``<unk>`` leaves out of the perplexity (as KenLM reports them)."""
    conflicts = register_extensions()
    if conflicts:
        raise PipelineError(Errors.E306.format(names=", ".join(conflicts)))
    model = None
    if model_path is not None and Path(model_path).exists():
        model = HSModel.from_disk(model_path)
    settings = dict(top_k=top_k, context_size=context_size, head=head, eager=eager)
    settings.update(set_vectors=set_vectors, unknown_word=unknown_word, cache=cache)
    return HSPredictor(nlp.vocab, name, model=model, model_path=model_path, **settings)


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
        check_settings(top_k, context_size, cache)
        self.vocab, self.name = vocab, name
        self.model_path = None if model_path is None else str(model_path)
        self.top_k, self.context_size, self.head_name, self.eager = top_k, context_size, head, eager
        self.set_vectors, self.unknown_word, self.cache = set_vectors, unknown_word, cache
        self.model: HSModel | None = None
        self.instance_id = ""
        self._streams: weakref.WeakKeyDictionary[Doc, tuple] = weakref.WeakKeyDictionary()
        if model is not None:
            self.set_model(model)

    # -- the model ------------------------------------------------------------------------

    def set_model(self, model: HSModel, *, copy_vectors: bool | None = None) -> None:
        """Use ``model`` from now on: its head, normaliser and (if ``set_vectors``) vectors."""
        if not isinstance(model, HSModel):
            raise WrongTypeError(Errors.E009.format(type=type(model).__name__))
        check_settings(self.top_k, self.context_size, self.cache)  # may be set since __init__
        self._settings = resolve(
            model, self.head_name, self.context_size, self.unknown_word, self.cache, self.vocab.lang
        )
        self.model = model
        self._word_ids = WordIds(model)
        if self._word_ids.lowercase:
            logger.info(Warnings.W302.format(name=self.name))
        self._streams.clear()
        # A new model gets a new id: docs made with the old one no longer find a component.
        register_component(self, uuid.uuid4().hex)
        if self.set_vectors if copy_vectors is None else copy_vectors:
            self.vocab.vectors = self._word_ids.vectors(model, self.vocab)

    def _require_model(self) -> HSModel:
        if self.model is None:
            if self.model_path is not None:
                raise PipelineError(Errors.E307.format(name=self.name, path=self.model_path))
            raise PipelineError(Errors.E300.format(name=self.name))
        return self.model

    @property
    def head(self) -> Head:
        """The head that answers this component's queries (its ``head`` setting)."""
        self._require_model()
        return self._settings.head

    # -- processing -----------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        """Set the eager attributes on one doc (see ``pipe`` for many)."""
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Process docs in batches: one call into the core per batch, not one per token."""
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size):
            try:
                self._require_model()
                if self.eager:
                    self.annotate(docs)
                else:
                    for doc in docs:
                        doc.user_data[DATA_KEY] = stamp(self.instance_id, doc)
            except Exception as err:
                error_handler(self.name, self, docs, err)
            yield from docs

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        """Load the model from ``model_path`` (``[initialize.components.hs_predictor]``); else
        keep the one given in the config or by ``from_disk``, or raise how to give one."""
        if model_path is not None:
            self.model_path = str(model_path)
            self.set_model(HSModel.from_disk(model_path))
        self._require_model()

    def normal_form(self, lex: Lexeme) -> str | None:
        """The corpus word a lexeme is looked up as, or None if the normaliser drops it."""
        self._require_model()
        return self._word_ids.normal_form(lex)

    def scored_word(self, lex: Lexeme) -> str | None:
        """The word a lexeme is scored as (``Token._.hs_word``), or None if none is."""
        self._require_model()
        return self._word_ids.scored_word(lex, self._settings.unknown_id)

    def documents(self, docs: Sequence[Doc]) -> Documents:
        """``docs`` as one ``Documents`` of the core (``WordIds.of_docs``)."""
        self._require_model()
        word_ids, sentence_lengths, lengths = self._word_ids.of_docs(docs)
        return self._settings.documents(word_ids, sentence_lengths, lengths, word_ids == DROPPED)

    def annotate(self, docs: Sequence[Doc]) -> None:
        """Set the eager values of a batch of docs, from one ``Documents``: one batched call
        into the head for the log-probabilities, one top-k query for the words after each doc."""
        if not docs:
            return
        words = self._require_model().words
        stream = self.documents(docs)
        log_probs = stream.log_probs()
        top_ids, top_log_probs = stream.top_k_after_documents(self.top_k)
        # Few containers per doc (a dict and tuples of atoms): each counts towards the garbage
        # collector's next run (7% of the time on one-sentence docs with a list per pair).
        next_words: list[tuple] = [()] * len(docs)
        next_probs: list[tuple] = [()] * len(docs)
        for row in np.flatnonzero(top_ids[:, 0] >= 0).tolist():
            next_words[row] = tuple(map(words.__getitem__, top_ids[row].tolist()))
            next_probs[row] = tuple(map(math.exp, top_log_probs[row].tolist()))
        values = np.empty(len(log_probs), dtype=object)  # None where unscorable
        valid = ~np.isnan(log_probs)
        values[valid] = log_probs[valid]
        ends = np.cumsum(stream.document_lengths).tolist()
        per_doc = (stream.perplexities(log_probs), stream.unknown_counts())
        for doc, end, perplexity, unknown, doc_words, doc_probs in zip(
            docs, ends, *per_doc, next_words, next_probs
        ):
            doc.user_data[DATA_KEY] = {
                **stamp(self.instance_id, doc),
                "log_probs": tuple(values[end - len(doc) : end].tolist()),
                "perplexity": perplexity,
                "unknown": unknown,
                "next_words": doc_words,
                "next_probs": doc_probs,
            }

    # -- values computed on first access, from the Doc's own Documents ---------------------

    def documents_of(self, doc: Doc) -> Documents:
        """``doc``'s own ``Documents`` (its cache alone), kept per Doc (weakly) and its tokens."""
        orths = doc.user_data.get(DATA_KEY, {}).get("orths")  # renewed with the Doc's tokens
        if self._streams.get(doc, (0,))[0] is not orths:
            self._streams[doc] = (orths, self.documents([doc]))
        return self._streams[doc][1]

    def token_contexts(self, doc: Doc) -> np.ndarray:
        """The context each token's log-probability reads: an int32 matrix (len(doc), context
        size) of known word ids, oldest first, right-aligned, -1 before them (dropped: all -1)."""
        return self.documents_of(doc).contexts_at(np.arange(len(doc)))

    def context_ids(self, doc: Doc, start: int, end: int) -> list[int]:
        """Word ids of the context that ends at ``doc[end - 1]``: the known words of
        ``doc[start:end]`` from the last sentence start on, the last ``context_size`` of them."""
        row = self.documents_of(doc).contexts_after([end], [start])[0].tolist()
        return [i for i in row if i >= 0]

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

        try:
            util.from_bytes(bytes_data, {"model": load_model}, exclude)
        except (TypeError, ValueError) as err:  # not msgpack: empty, cut short, not bytes
            coded = PipelineError(Errors.E309.format(name=self.name, error=err))
            raise err if isinstance(err, SpacyHSError) else coded from None
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
        settings = {name: getattr(self, name) for name in SETTINGS if name != "head"}
        settings["head"] = self.head_name
        model_bytes = self.model.to_bytes() if self.model is not None else b""
        return (_unpickle, (self.vocab, self.name, settings, model_bytes, self.instance_id))


def _unpickle(
    vocab: Vocab, name: str, settings: dict[str, Any], model_bytes: bytes, instance_id: str
) -> HSPredictor:
    component = HSPredictor(vocab, name, **settings)
    if model_bytes:
        # The pickled vocab already holds the vectors.
        component.set_model(HSModel.from_bytes(model_bytes), copy_vectors=False)
        register_component(component, instance_id)
    return component
