"""spacy-hs: word vectors and exact hierarchical-softmax next-word probabilities for spaCy."""

from .hs_model import HSModel
from .tree import HuffmanTree

__version__ = "0.1.0"
__all__ = [
    "HSModel",
    "HuffmanTree",
    "__version__",
    "render",
    "score_corpus",
    "score_documents",
    "serve",
]


def __getattr__(name: str) -> object:
    # The surprisal view (spacy_hs.view) and scoring import spaCy: load them on first use
    # only, so that `import spacy_hs` stays light.
    if name in ("render", "serve"):
        from . import view

        return getattr(view, name)
    if name in ("score_documents", "score_corpus"):
        from . import scoring

        return getattr(scoring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
