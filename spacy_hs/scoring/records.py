"""One score record per document: `score_documents`, the library entry point of scoring.

A record's figures are read from the ``hs_predictor`` component's public attributes, with the
pipeline's own settings (head, cache, unknown word), so they are exactly what
``nlp(text)._.hs_perplexity`` gives:

- ``tokens``: the tokens scored (``Token._.hs_logprob`` is not None);
- ``perplexity``: ``Doc._.hs_perplexity``, None if no token was scored;
- ``surprisal``: the mean surprisal in bits per scored token, ``-mean(hs_logprob) / ln 2``
  (= log2 of the perplexity);
- ``unknown``: ``Doc._.hs_unknown``, the tokens scored as the model's unknown word;
- with ``per_token``: each spaCy token's text and ``Token._.hs_surprisal`` (None if unscored).

Every engine (`spacy_hs.scoring.engines`) runs this very function on its chunks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Errors, PipelineError

FACTORY = "hs_predictor"
LN2 = math.log(2.0)
DEFAULT_BATCH_SIZE = 64


@dataclass
class DocumentScore:
    """The scores of one document (see the module doc); ``bucket`` is set by the buckets."""

    id: Any
    tokens: int
    perplexity: float | None
    surprisal: float | None
    unknown: int
    token_text: list[str] | None = None
    token_surprisal: list[float | None] | None = None
    bucket: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as written: fixed key order, per-token lists and bucket only if set."""
        record: dict[str, Any] = {
            "id": self.id,
            "tokens": self.tokens,
            "perplexity": self.perplexity,
            "surprisal": self.surprisal,
            "unknown": self.unknown,
        }
        if self.token_text is not None:
            record["token_text"] = self.token_text
            record["token_surprisal"] = self.token_surprisal
        if self.bucket is not None:
            record["bucket"] = self.bucket
        return record


def json_line(record: dict[str, Any]) -> str:
    """A record as one line of JSON (UTF-8 text, no spaces, ``\\n`` ended): the one writer of
    records, so that every engine writes the same bytes."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def check_scoring_pipeline(nlp: Any, name: str = "the pipeline") -> None:
    """PipelineError E901 unless ``nlp`` has an ``hs_predictor`` component."""
    factories = [nlp.get_pipe_meta(pipe).factory for pipe in nlp.pipe_names]
    if FACTORY not in factories:
        names = ", ".join(nlp.pipe_names) or "none"
        raise PipelineError(Errors.E901.format(name=name, names=names))


def score_documents(
    nlp: Any,
    texts: Iterable[str],
    *,
    ids: Iterable[Any] | None = None,
    per_token: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[DocumentScore]:
    """Score each text with ``nlp`` (a pipeline with an ``hs_predictor``), lazily, in order.

    ids: the documents' ids, one per text; default: the 0-based index.
    per_token: also give each token's text and surprisal in bits.
    batch_size: texts per ``nlp.pipe`` batch.

    Yields one `DocumentScore` per text.
    """
    from spacy.tokens import Token

    check_scoring_pipeline(nlp)
    # What ``token._.hs_logprob`` calls, taken once: the attribute's own getter, without the
    # ``token._`` object spaCy builds at each access (a third of the scoring time otherwise).
    log_prob_of = Token.get_extension("hs_logprob")[2]
    ids = range(1 << 62) if ids is None else ids
    for document_id, doc in zip(ids, nlp.pipe(texts, batch_size=batch_size)):
        log_probs = [log_prob_of(token) for token in doc]
        scored = [value for value in log_probs if value is not None]
        perplexity = doc._.hs_perplexity
        record = DocumentScore(
            id=document_id,
            tokens=len(scored),
            perplexity=None if perplexity is None else float(perplexity),
            surprisal=-sum(scored) / len(scored) / LN2 if scored else None,
            unknown=int(doc._.hs_unknown),
        )
        if per_token:
            record.token_text = [token.text for token in doc]
            record.token_surprisal = [token._.hs_surprisal for token in doc]
        yield record
