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
* ``Token._.hs_word``: the word the model scored the token as: its normal form (the word
  itself, or a placeholder such as ``<num>``), the unknown word (``<unk>``) for one out of the
  vocabulary, or None where nothing was scored (dropped, or unknown without an unknown word);
* ``Doc._.hs_perplexity``: ``exp(-mean(hs_logprob))`` over the scorable tokens, or None;
  ``Doc._.hs_unknown``: how many tokens are out of the vocabulary (KenLM's OOV count): scored
  as the model's unknown word, or, for a model without one, left out of the perplexity.

The values belong to the tokens they were computed for: the Doc keeps its tokens' orths beside
them. After a retokenization (``merge_entities``, ``doc.retokenize()``), or for a DocBin whose
values do not fit its tokens, they are recomputed for the new tokens by the component that made
the Doc (E308 if it is not loaded), never read from another token's position. A token's own
getter checks the Doc's length and the token's orth (O(1)); the Doc's getters check every orth.

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
from spacy.attrs import ORTH
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


def orths_of(doc: Doc) -> bytes:
    """The tokens the values of ``doc`` belong to: their orth hashes, as bytes (msgpack-able)."""
    return doc.to_array(ORTH).astype("<u8").tobytes()


def stamp(instance_id: str, doc: Doc) -> dict:
    """The values of a Doc before any is computed: its component and its tokens."""
    return {"component": instance_id, "orths": orths_of(doc)}


def _fits(data: dict, doc: Doc, index: int | None) -> bool:
    """Whether the values in ``data`` belong to ``doc``'s tokens (at ``index`` alone, if given:
    the Doc's length and that token's orth)."""
    n = len(doc)
    orths = data.get("orths")
    if not isinstance(orths, bytes) or len(orths) != 8 * n:
        return False
    stored = np.frombuffer(orths, dtype="<u8")
    if index is None and not np.array_equal(stored, doc.to_array(ORTH)):
        return False
    if index is not None and int(stored[index]) != doc[index].orth:
        return False
    per_token = (data.get(name, ()) for name in ("log_probs", "ranks", "entropies"))
    return all(isinstance(v, (list, tuple)) and len(v) in (0, n) for v in per_token)


def current_data(doc: Doc, index: int | None = None) -> dict:
    """``doc_data``, emptied (to be recomputed) if its values no longer fit the Doc's tokens:
    after a retokenization, or a DocBin whose values were altered. E308 if the component that
    would recompute them is not loaded."""
    data = doc_data(doc)
    if _fits(data, doc, index):
        return data
    try:
        component = component_of(doc)
    except PipelineError:
        raise PipelineError(Errors.E308.format(text=_preview(doc))) from None
    data = doc.user_data[DATA_KEY] = stamp(component.instance_id, doc)
    return data


def component_of(doc: Doc) -> HSPredictor:
    """The ``hs_predictor`` that processed ``doc``: E304 if none did, E305 if it is no longer
    loaded in this process."""
    for component in _COMPONENTS.get(doc_data(doc).get("component", ""), ()):
        return component
    raise PipelineError(Errors.E305.format(text=_preview(doc)))


def eager_data(doc: Doc, index: int | None = None) -> dict:
    """``current_data`` with the values ``eager`` computes; computed now for a doc processed
    with ``eager=False`` or retokenized since (keeping the lazy values already cached)."""
    data = current_data(doc, index)
    if "log_probs" not in data:
        component_of(doc).annotate([doc])
        computed = doc_data(doc)
        lazy = ("token_next", "span_next", "token_measures")
        computed.update({k: v for k, v in data.items() if k in lazy})
        data = computed
    return data


def _preview(doc: Doc, length: int = 40) -> str:
    text = doc.text if len(doc.text) <= length else doc.text[: length - 3] + "..."
    return repr(text)


def top_k_at(doc: Doc, indices: Sequence[int], k: int) -> list[list[Any]]:
    """The top-k ``[word, probability]`` at each of the tokens ``indices`` of ``doc`` (not
    dropped ones): the prediction its log-probability was scored from, cache included."""
    current_data(doc)
    component = component_of(doc)
    ids, log_probs = component.documents_of(doc).top_k_at(indices, k)
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


def token_measures(token: Token) -> tuple[int | None, float | None]:
    """The rank and entropy at one token, at one token's cost (``Documents.measures_at``),
    kept in the doc (``measures`` of the whole doc, if computed before, answers first)."""
    data = eager_data(token.doc, token.i)
    if "ranks" in data:
        return data["ranks"][token.i], data["entropies"][token.i]
    kept = data.setdefault("token_measures", {})
    if token.i not in kept:
        log_prob = data["log_probs"][token.i]
        stream = component_of(token.doc).documents_of(token.doc)
        ranks, entropies = stream.measures_at(
            [token.i], [math.nan if log_prob is None else log_prob]
        )
        entropy = float(entropies[0])
        kept[token.i] = [int(ranks[0]) or None, None if math.isnan(entropy) else entropy]
    rank, entropy = kept[token.i]
    return rank, entropy


def _cached_next(
    doc: Doc, cache_name: str, key: int | str, start: int, end: int, index: int | None = None
) -> list:
    """The top-k after ``doc[start:end]`` (``Documents.top_k_after``), kept in the doc.
    index: the token whose orth alone is checked (``current_data``); None: all."""
    data = current_data(doc, index)
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
    """How many tokens of the doc are out of the vocabulary (KenLM's OOV count): scored as the
    model's unknown word (``unknown_word``), or, for a model without one, left out of
    ``hs_perplexity``."""
    return eager_data(doc).get("unknown", 0)


def span_hs_next(span: Span) -> list[tuple[str, float]]:
    """Top-k words after the span, given the span's words (from its last sentence start)."""
    return _cached_next(span.doc, "span_next", f"{span.start}:{span.end}", span.start, span.end)


def token_hs_next(token: Token) -> list[tuple[str, float]]:
    """Top-k words after the token, given the token and the known words before it."""
    return _cached_next(token.doc, "token_next", token.i, 0, token.i + 1, token.i)


def token_hs_logprob(token: Token) -> float | None:
    """log P(token | the known words before it in its sentence), or None if unscorable."""
    return eager_data(token.doc, token.i)["log_probs"][token.i]


def token_hs_surprisal(token: Token) -> float | None:
    """-log2 P(token): ``Token._.hs_logprob`` in bits, or None if unscored."""
    log_prob = token_hs_logprob(token)
    return None if log_prob is None else -log_prob / LN2


def token_hs_entropy(token: Token) -> float | None:
    """The entropy in bits of the whole next-word distribution at the token's slot (the one its
    log-probability is read from), or None where there is none (``measures``)."""
    return token_measures(token)[1]


def token_hs_rank(token: Token) -> int | None:
    """The exact rank of the token's word at its slot (1: the most probable), or None if
    unscored."""
    return token_measures(token)[0]


def token_hs_word(token: Token) -> str | None:
    """The word the model scored the token as (its normal form, a placeholder such as
    ``<num>``, or the unknown word), or None where nothing was scored."""
    current_data(token.doc, token.i)
    return component_of(token.doc).scored_word(token.lex)


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
    (Token, "hs_word", token_hs_word),
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
