"""spacy-hs: word vectors and exact hierarchical-softmax next-word probabilities for spaCy."""

from .hs_model import HSModel
from .tree import HuffmanTree

__version__ = "0.1.0"
__all__ = ["HSModel", "HuffmanTree", "__version__"]
