"""How predictable each token of a Doc is: exact rank, surprisal and entropy, per position.

The values are the ``hs_predictor``'s own extension attributes, read here, never recomputed:
for token i, with P the whole next-word distribution at its slot (the head's, from the known
words before i in its sentence, mixed with the Doc's cache when the component has one: see
``spacy_hs.document``), "actual" the token's word and all logs natural unless they say bits::

    log_prob(i)  = log P(actual)                            Token._.hs_logprob
    rank(i)      = 1 + #{w : P(w) > P(actual)}              Token._.hs_rank (1: the most probable)
    surprisal(i) = -log_prob(i) / ln 2                      Token._.hs_surprisal, bits
    entropy(i)   = -sum over all w of P(w) log2 P(w)        Token._.hs_entropy, bits

Nothing is truncated: rank and entropy are over the whole vocabulary, unlike GLTR's entropy of
the renormalised top 10. Rows are computed in chunks of at most ``CHUNK_ELEMENTS`` values, so
memory stays bounded for any vocabulary size or document length. The top-k at each position is
the exact top-k of the same distribution (``spacy_hs.pipeline.extensions.top_k_at``).

Each token gets a status, derived from whether the component has a log-probability for it and,
if not, why:

* ``scored``: ``Token._.hs_logprob`` is set;
* ``dropped``: the normaliser drops the token (punctuation, whitespace...), as it did from the
  training corpus, so the model never predicts it;
* ``oov``: its word is not in the model's vocabulary;
* ``no-context``: its word is known, but the component does not score it (with the CBOW head, a
  sentence's first known word: nothing before it to predict from).

Out-of-vocabulary tokens with a non-empty context still get the prediction at their position
(top-k and entropy: what the model expected there), but no rank or log-probability.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spacy.tokens import Doc

from ..errors import Errors, PipelineError
from ..pipeline.component import HSPredictor
from ..pipeline.extensions import component_of, measures, top_k_at

SCORED, NO_CONTEXT, OOV, DROPPED = "scored", "no-context", "oov", "dropped"
STATUSES = (SCORED, NO_CONTEXT, OOV, DROPPED)
DEFAULT_TOP_K = 5
# Log-probabilities held at once (B rows of V words, float64): 2^21 values, 16 MB per array.
CHUNK_ELEMENTS = 1 << 21
LN2 = math.log(2.0)


@dataclass
class DocSurprisal:
    """Per-token values of one Doc, aligned with its tokens; None (or ``()``) where undefined.

    status: one of ``STATUSES``.
    log_probs: natural log P(token | context), the component's ``Token._.hs_logprob``.
    ranks: 1-based rank of the token's word in the whole next-word distribution.
    entropies: entropy of the whole next-word distribution at the position, in bits.
    top_words, top_probs: the ``top_k`` most probable words at the position, best first.
    normal_forms: the word each token is looked up as (None if dropped).
    perplexity: ``Doc._.hs_perplexity``.
    vocab_size: words in the model's vocabulary; head: the name of the component's head.
    scored_words: the word each token was scored as (``Token._.hs_word``; None if none).
    """

    status: list[str]
    log_probs: list[float | None]
    ranks: list[int | None]
    entropies: list[float | None]
    top_words: list[tuple[str, ...]]
    top_probs: list[tuple[float, ...]]
    normal_forms: list[str | None]
    perplexity: float | None
    vocab_size: int
    head: str
    scored_words: list[str | None] = field(default_factory=list)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {status: self.status.count(status) for status in STATUSES}

    def __len__(self) -> int:
        return len(self.status)

    def slice(self, start: int, end: int) -> DocSurprisal:
        """The values of tokens ``start:end`` (a Span's); perplexity over its scored tokens."""
        log_probs = self.log_probs[start:end]
        scored = [lp for lp in log_probs if lp is not None]
        return DocSurprisal(
            status=self.status[start:end],
            log_probs=log_probs,
            ranks=self.ranks[start:end],
            entropies=self.entropies[start:end],
            top_words=self.top_words[start:end],
            top_probs=self.top_probs[start:end],
            normal_forms=self.normal_forms[start:end],
            perplexity=math.exp(-sum(scored) / len(scored)) if scored else None,
            vocab_size=self.vocab_size,
            head=self.head,
            scored_words=self.scored_words[start:end],
        )

    @property
    def surprisals(self) -> list[float | None]:
        """-log2 P(token | context) per token, in bits."""
        return [None if lp is None else -lp / LN2 for lp in self.log_probs]

    @property
    def mean_surprisal(self) -> float | None:
        """Mean surprisal of the scored tokens in bits (log2 of the perplexity), or None."""
        values = [lp for lp in self.log_probs if lp is not None]
        return -sum(values) / len(values) / LN2 if values else None

    @property
    def coverage(self) -> float | None:
        """Scored tokens per word token (tokens the normaliser keeps), as in ``evaluate``."""
        words = len(self) - self.counts[DROPPED]
        return self.counts[SCORED] / words if words else None


def doc_surprisal(doc: Doc, *, top_k: int = DEFAULT_TOP_K) -> DocSurprisal:
    """Rank, surprisal, entropy and top-k of every token of ``doc`` (see the module docstring)."""
    return doc_surprisals([doc], top_k=top_k)[0]


def doc_surprisals(
    docs: Iterable[Doc], *, top_k: int = DEFAULT_TOP_K, chunk_elements: int = CHUNK_ELEMENTS
) -> list[DocSurprisal]:
    """``doc_surprisal`` for many docs, with batched model calls across them.

    Each Doc is scored by the ``hs_predictor`` that processed it. chunk_elements bounds the
    log-probabilities held in memory at once (rows of V values each; at least one row).
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise PipelineError(Errors.E702.format(top_k=top_k))
    docs = list(docs)
    groups: dict[int, tuple[HSPredictor, list[int]]] = {}
    for index, doc in enumerate(docs):
        if not isinstance(doc, Doc):
            raise PipelineError(Errors.E703.format(type=type(doc).__name__))
        component = component_of(doc)
        groups.setdefault(id(component), (component, []))[1].append(index)
    results: list[DocSurprisal | None] = [None] * len(docs)
    for component, indices in groups.values():
        scored = _Scorer(component, top_k, chunk_elements).score([docs[i] for i in indices])
        for index, result in zip(indices, scored):
            results[index] = result
    return results  # type: ignore[return-value]


class _Scorer:
    """Reads the values of docs processed by one component: its attributes, and the top-k at
    each position that has a prediction."""

    def __init__(self, component: HSPredictor, top_k: int, chunk_elements: int):
        model = component.model
        self.component = component
        self.model = model
        self.head = component.head
        self.top_k = min(top_k, len(model))
        self.rows_per_chunk = max(1, chunk_elements // len(model))

    def score(self, docs: Sequence[Doc]) -> list[DocSurprisal]:
        component, model = self.component, self.model
        key_to_index = model.key_to_index
        results = []
        for doc in docs:
            n = len(doc)
            log_probs = [token._.hs_logprob for token in doc]
            normal_forms = [component.normal_form(token.lex) for token in doc]
            # Token._.hs_rank and hs_entropy, computed here in chunks of rows_per_chunk rows
            # (the attributes then read them).
            values = measures(doc, self.rows_per_chunk)
            result = DocSurprisal(
                status=[
                    _status(lp, word, key_to_index) for lp, word in zip(log_probs, normal_forms)
                ],
                log_probs=log_probs,
                ranks=list(values["ranks"]),
                entropies=list(values["entropies"]),
                top_words=[()] * n,
                top_probs=[()] * n,
                normal_forms=normal_forms,
                perplexity=doc._.hs_perplexity,
                vocab_size=len(model),
                head=self.head.name,
                scored_words=[component.scored_word(token.lex) for token in doc],
            )
            # A prediction wherever there is an entropy: scored tokens, and unknown ones with
            # a known word before them.
            positions = [i for i, entropy in enumerate(result.entropies) if entropy is not None]
            for start in range(0, len(positions), self.rows_per_chunk):
                chunk = positions[start : start + self.rows_per_chunk]
                for i, pairs in zip(chunk, top_k_at(doc, chunk, self.top_k)):
                    result.top_words[i] = tuple(word for word, _ in pairs)
                    result.top_probs[i] = tuple(prob for _, prob in pairs)
            results.append(result)
        return results


def _status(log_prob: float | None, word: str | None, key_to_index: dict[str, int]) -> str:
    if log_prob is not None:
        return SCORED
    if word is None:
        return DROPPED
    if word not in key_to_index:
        return OOV
    return NO_CONTEXT
