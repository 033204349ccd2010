"""spacy-hs: word vectors and exact hierarchical-softmax next-word probabilities for spaCy."""

from .hs_model import HSModel
from .tree import HuffmanTree

__version__ = "0.1.0"
__all__ = ["HSModel", "HuffmanTree", "__version__", "render", "serve"]


def __getattr__(name: str) -> object:
    # The surprisal view (spacy_hs.view) imports spaCy: load it on first use only, so that
    # `import spacy_hs` stays light.
    if name in ("render", "serve"):
        from . import view

        return getattr(view, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
