"""How predictable each token of a Doc is: exact rank, surprisal and entropy, per position.

For token i the ``hs_predictor`` that made the Doc gives its context (the known words before i
in its sentence, the last ``context_size``: ``HSPredictor.token_contexts``, the context its
log-probability read) and its head gives log P(w | context) for *every* word w of the
vocabulary (the head's ``log_probabilities``, exact). From that row, with "actual" the token's
word and all logs natural unless they say bits::

    log_prob(i)  = log P(actual | context)                  (= Token._.hs_logprob)
    rank(i)      = 1 + #{w : log P(w | context) > log_prob(i)}  (1: the most probable word)
    surprisal(i) = -log_prob(i) / ln 2                      bits
    entropy(i)   = -sum over all w of P(w) log2 P(w)        bits, the whole distribution

Nothing is truncated: rank and entropy are over the whole vocabulary, unlike GLTR's entropy of
the renormalised top 10. Rows are computed in chunks of at most ``CHUNK_ELEMENTS`` values, so
memory stays bounded for any vocabulary size or document length.

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

import numpy as np
from spacy.tokens import Doc

from ..errors import Errors, PipelineError
from ..pipeline import component as hs_component
from ..pipeline.component import DATA_KEY, HSPredictor

SCORED, NO_CONTEXT, OOV, DROPPED = "scored", "no-context", "oov", "dropped"
STATUSES = (SCORED, NO_CONTEXT, OOV, DROPPED)
DEFAULT_TOP_K = 5
# Log-probabilities held at once (B rows of V words, float64): 2^21 values, 16 MB per array.
CHUNK_ELEMENTS = 1 << 21
# How far the tree's log-probability of the actual word may differ from the component's
# (float32 dot products summed in another order); anything more means they disagree.
AGREEMENT_TOLERANCE = 1e-3
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
        component = component_of(doc)
        groups.setdefault(id(component), (component, []))[1].append(index)
    results: list[DocSurprisal | None] = [None] * len(docs)
    for component, indices in groups.values():
        scored = _Scorer(component, top_k, chunk_elements).score([docs[i] for i in indices])
        for index, result in zip(indices, scored):
            results[index] = result
    return results  # type: ignore[return-value]


def component_of(doc: Doc) -> HSPredictor:
    """The ``hs_predictor`` that processed ``doc`` (it must still be loaded in this process)."""
    if not isinstance(doc, Doc):
        raise PipelineError(Errors.E703.format(type=type(doc).__name__))
    if not isinstance(doc.user_data.get(DATA_KEY), dict):
        raise PipelineError(Errors.E700.format(text=_preview(doc)))
    component = hs_component.component_of(doc)
    if component is None:
        raise PipelineError(Errors.E701.format(text=_preview(doc)))
    return component


def _preview(doc: Doc, length: int = 40) -> str:
    text = doc.text if len(doc.text) <= length else doc.text[: length - 3] + "..."
    return repr(text)


class _Scorer:
    """Scores docs with one component: statuses, contexts, then the distributions in chunks."""

    def __init__(self, component: HSPredictor, top_k: int, chunk_elements: int):
        model = component._require_model()
        self.component = component
        self.model = model
        self.predictor = component.predictor
        self.top_k = min(top_k, len(model))
        self.rows_per_chunk = max(1, chunk_elements // len(model))

    def score(self, docs: Sequence[Doc]) -> list[DocSurprisal]:
        component, model = self.component, self.model
        key_to_index = model.key_to_index
        results = []
        # The positions that get a distribution, over all docs: (result, token index, target id
        # or -1, the component's log-prob or None) and their contexts.
        positions: list[tuple[DocSurprisal, int, int, float | None]] = []
        contexts: list[np.ndarray] = []
        for doc in docs:
            n = len(doc)
            log_probs = [token._.hs_logprob for token in doc]
            normal_forms = [component.normal_form(token.lex) for token in doc]
            result = DocSurprisal(
                status=[
                    _status(lp, word, key_to_index) for lp, word in zip(log_probs, normal_forms)
                ],
                log_probs=log_probs,
                ranks=[None] * n,
                entropies=[None] * n,
                top_words=[()] * n,
                top_probs=[()] * n,
                normal_forms=normal_forms,
                perplexity=doc._.hs_perplexity,
                vocab_size=len(model),
                head=self.predictor.name,
            )
            results.append(result)
            doc_contexts = component.token_contexts(doc)
            for i, status in enumerate(result.status):
                if status not in (SCORED, OOV):
                    continue
                context = doc_contexts[i]
                if status == OOV and context[-1] < 0:  # no known word before it
                    continue
                word = normal_forms[i]
                target = key_to_index.get(word, -1) if word is not None else -1
                positions.append((result, i, target, log_probs[i]))
                contexts.append(context)
        for start in range(0, len(positions), self.rows_per_chunk):
            end = start + self.rows_per_chunk
            self._score_chunk(positions[start:end], np.stack(contexts[start:end]))
        return results

    def _score_chunk(
        self,
        positions: Sequence[tuple[DocSurprisal, int, int, float | None]],
        contexts: np.ndarray,
    ) -> None:
        model, k = self.model, self.top_k
        log_probs = self.predictor.log_probabilities(contexts)  # (B, V), float64; NaN: none
        has_context = ~np.isnan(log_probs[:, 0])
        entropies = -np.einsum("ij,ij->i", np.exp(log_probs), log_probs) / LN2
        top = np.argpartition(log_probs, -k, axis=1)[:, -k:]
        top_log_probs = np.take_along_axis(log_probs, top, axis=1)
        order = np.argsort(-top_log_probs, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_probs = np.exp(np.take_along_axis(top_log_probs, order, axis=1))
        words = model.words
        for row, (result, i, target, component_log_prob) in enumerate(positions):
            if not has_context[row]:
                if component_log_prob is not None:  # scored by the component, not by us
                    raise PipelineError(
                        Errors.E704.format(
                            i=i, ours="no context", theirs=f"{component_log_prob:.6f}"
                        )
                    )
                continue
            result.entropies[i] = float(entropies[row])
            result.top_words[i] = tuple(words[w] for w in top[row].tolist())
            result.top_probs[i] = tuple(top_probs[row].tolist())
            if component_log_prob is None:
                continue
            if target >= 0:
                actual = log_probs[row, target]
                if abs(actual - component_log_prob) > AGREEMENT_TOLERANCE:
                    raise PipelineError(
                        Errors.E704.format(
                            i=i, ours=f"log-prob {actual:.6f}", theirs=f"{component_log_prob:.6f}"
                        )
                    )
            else:  # scored as some other word (e.g. an unknown-word entry): rank its value
                actual = component_log_prob + AGREEMENT_TOLERANCE
            result.ranks[i] = int(np.count_nonzero(log_probs[row] > actual)) + 1


def _status(log_prob: float | None, word: str | None, key_to_index: dict[str, int]) -> str:
    if log_prob is not None:
        return SCORED
    if word is None:
        return DROPPED
    if word not in key_to_index:
        return OOV
    return NO_CONTEXT
