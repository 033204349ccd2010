"""spacy-hs: word vectors and exact hierarchical-softmax next-word probabilities for spaCy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

# Where each public name lives. They load on first use, so that `import spacy_hs` is instant:
# the command line (``spacy_hs.__main__``) makes Ctrl-C quiet before anything heavy loads, and
# the surprisal view and scoring import spaCy.
_LAZY = {
    "HSModel": "hs_model",
    "HuffmanTree": "tree",
    "render": "view",
    "serve": "view",
    "score_documents": "scoring",
    "score_corpus": "scoring",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
