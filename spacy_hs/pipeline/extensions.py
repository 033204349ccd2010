"""The extension attributes ``hs_predictor`` sets, and how a Doc finds its component.

Each getter reads ``doc.user_data["spacy_hs"]`` (plain tuples and dicts, msgpack-able, so they
survive ``DocBin(store_user_data=True)`` and ``nlp.pipe(n_process=2)``), or asks the component
that made the Doc for a value computed on first access, then keeps it there:

* ``Doc._.hs_next``, ``Span._.hs_next``, ``Token._.hs_next``: the ``top_k`` most probable words
  after the doc / span / token, as ``[(word, probability), ...]``;
* ``Token._.hs_logprob``: natural log P(token | the known words before it in its sentence, and
  the Doc's cache), None if unscorable; ``Token._.hs_surprisal``: the same in bits, negated;
* ``Token._.hs_rank``, ``Token._.hs_entropy``: the exact rank of the token's word and the
  entropy (bits) of the whole distribution at its slot;
* ``Doc._.hs_perplexity``: ``exp(-mean(hs_logprob))`` over the scorable tokens, or None;
  ``Doc._.hs_unknown``: how many tokens were scored as the model's unknown word.

A Doc stores the id of the component that made it; components alive in this process are found
by that id (a per-process registry), so two pipelines with different models each answer with
their own. Unpickled copies share their original's id (same model), hence a set per id.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from spacy.tokens import Doc, Span, Token

from ..errors import Errors, PipelineError

if TYPE_CHECKING:
    from .component import HSPredictor

DATA_KEY = "spacy_hs"  # doc.user_data[DATA_KEY] holds everything the component sets
LN2 = math.log(2.0)
# Whole distributions (V values each) held at once for ranks and entropies: 16 MB of float64.
CHUNK_ELEMENTS = 1 << 21
_COMPONENTS: dict[str, weakref.WeakSet[HSPredictor]] = {}


def register_component(component: HSPredictor, instance_id: str) -> None:
    """Make ``component`` the one docs stamped with ``instance_id`` ask (beside its copies)."""
    old = _COMPONENTS.get(component.instance_id)
    if old is not None:
        old.discard(component)
    for key in [k for k, members in _COMPONENTS.items() if not members]:
        del _COMPONENTS[key]
    component.instance_id = instance_id
    _COMPONENTS.setdefault(instance_id, weakref.WeakSet()).add(component)


def doc_data(doc: Doc) -> dict:
    """The values the component stored on ``doc``; E304 if there are none."""
    data = doc.user_data.get(DATA_KEY)
    if not isinstance(data, dict):
        raise PipelineError(Errors.E304.format(text=_preview(doc)))
    return data


def component_of(doc: Doc) -> HSPredictor:
    """The ``hs_predictor`` that processed ``doc``: E304 if none did, E305 if it is no longer
    loaded in this process."""
    for component in _COMPONENTS.get(doc_data(doc).get("component", ""), ()):
        return component
    raise PipelineError(Errors.E305.format(text=_preview(doc)))


def eager_data(doc: Doc) -> dict:
    """``doc_data`` with the values ``eager`` computes; computed now for a doc processed with
    ``eager=False`` (keeping the lazy values already cached)."""
    data = doc_data(doc)
    if "log_probs" not in data:
        component_of(doc).annotate([doc])
        computed = doc_data(doc)
        computed.update({k: v for k, v in data.items() if k in ("token_next", "span_next")})
        data = computed
    return data


def _preview(doc: Doc, length: int = 40) -> str:
    text = doc.text if len(doc.text) <= length else doc.text[: length - 3] + "..."
    return repr(text)


def top_k_at(doc: Doc, indices: Sequence[int], k: int) -> list[list[Any]]:
    """The top-k ``[word, probability]`` at each of the tokens ``indices`` of ``doc`` (not
    dropped ones): the prediction its log-probability was scored from, cache included."""
    component = component_of(doc)
    stream = component.documents_of(doc)
    ids, log_probs = stream.top_k_at(np.asarray(indices, dtype=np.int64), k)
    return [_word_probs(component, i, lp) for i, lp in zip(ids, log_probs)]


def measures(doc: Doc, rows_per_chunk: int | None = None) -> dict[str, Any]:
    """The exact rank and entropy (bits) at every token of ``doc`` (``Documents.measures``),
    computed once and kept in the doc: ``{"ranks": ..., "entropies": ...}``, None where
    undefined. rows_per_chunk: whole distributions held at once; default: about 2^21 values."""
    data = eager_data(doc)
    if "ranks" not in data:  # else computed before, e.g. before a DocBin round trip
        component = component_of(doc)
        rows = rows_per_chunk or max(1, CHUNK_ELEMENTS // len(component.model))
        log_probs = np.array(data["log_probs"], dtype=np.float64)  # None: NaN
        ranks, entropies = component.documents_of(doc).measures(log_probs, rows)
        data["ranks"] = tuple(rank or None for rank in ranks.tolist())
        data["entropies"] = tuple(None if math.isnan(e) else e for e in entropies.tolist())
    return data


def _cached_next(doc: Doc, cache_name: str, key: int | str, start: int, end: int) -> list:
    """The top-k after ``doc[start:end]`` (``Documents.top_k_after``), kept in the doc."""
    data = doc_data(doc)
    cache = data.get(cache_name)
    if cache is None:
        cache = data[cache_name] = {}
    if key not in cache:
        component = component_of(doc)
        stream = component.documents_of(doc)
        ids, log_probs = stream.top_k_after([end], component.top_k, [start])
        cache[key] = _word_probs(component, ids[0], log_probs[0])
    return [(word, prob) for word, prob in cache[key]]


def _word_probs(component: HSPredictor, ids: np.ndarray, log_probs: np.ndarray) -> list:
    """``[[word, probability], ...]`` of a top-k row; [] where the head has no prediction."""
    if not len(ids) or ids[0] < 0:
        return []
    words = component.model.words
    return [[words[i], math.exp(lp)] for i, lp in zip(ids.tolist(), log_probs.tolist())]


def doc_hs_next(doc: Doc) -> list[tuple[str, float]]:
    """Top-k words after the doc (its last sentence)."""
    data = eager_data(doc)
    return list(zip(data["next_words"], data["next_probs"]))


def doc_hs_perplexity(doc: Doc) -> float | None:
    """Perplexity of the doc's scorable tokens, or None if none is scorable."""
    return eager_data(doc)["perplexity"]


def doc_hs_unknown(doc: Doc) -> int:
    """How many tokens of the doc were scored as the model's unknown word (``unknown_word``)."""
    return eager_data(doc).get("unknown", 0)


def span_hs_next(span: Span) -> list[tuple[str, float]]:
    """Top-k words after the span, given the span's words (from its last sentence start)."""
    return _cached_next(span.doc, "span_next", f"{span.start}:{span.end}", span.start, span.end)


def token_hs_next(token: Token) -> list[tuple[str, float]]:
    """Top-k words after the token, given the token and the known words before it."""
    return _cached_next(token.doc, "token_next", token.i, 0, token.i + 1)


def token_hs_logprob(token: Token) -> float | None:
    """log P(token | the known words before it in its sentence), or None if unscorable."""
    return eager_data(token.doc)["log_probs"][token.i]


def token_hs_surprisal(token: Token) -> float | None:
    """-log2 P(token): ``Token._.hs_logprob`` in bits, or None if unscored."""
    log_prob = token_hs_logprob(token)
    return None if log_prob is None else -log_prob / LN2


def token_hs_entropy(token: Token) -> float | None:
    """The entropy in bits of the whole next-word distribution at the token's slot (the one its
    log-probability is read from), or None where there is none (``measures``)."""
    return measures(token.doc)["entropies"][token.i]


def token_hs_rank(token: Token) -> int | None:
    """The exact rank of the token's word at its slot (1: the most probable), or None if
    unscored."""
    return measures(token.doc)["ranks"][token.i]


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
ASSIGNS = [f"{cls.__name__.lower()}._.{name}" for cls, name, _ in EXTENSIONS]


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
