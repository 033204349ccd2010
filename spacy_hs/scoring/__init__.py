"""Scoring corpora: one record of perplexity and surprisal per document, on one process or many.

- `score_documents` (records.py): the library entry point, one `DocumentScore` per text;
- `score_corpus` (corpus.py): files in, a file of records out, behind ``spacy-hs score``;
- inputs.py reads documents in chunks, engines.py scores chunks (this process, local
  processes, a Dask cluster), buckets.py cuts CCNet's head/middle/tail, outputs.py writes.
"""

from .corpus import ScoreSummary, score_corpus
from .engines import DaskEngine, LocalEngine, load_pipeline
from .records import DocumentScore, score_documents

__all__ = [
    "DaskEngine",
    "DocumentScore",
    "LocalEngine",
    "ScoreSummary",
    "load_pipeline",
    "score_corpus",
    "score_documents",
]
