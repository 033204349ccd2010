"""Next-word heads on the HS model's Huffman tree: ``TreeHead`` (the queries, once), gensim's
CBOW-style head, the directional (log-bilinear) head and the n-gram head, each a thinc Model of
layers registered in spaCy's ``architectures`` registry (``output.py`` holds the tree output
layer they share), and the recurrent head (an LSTM: ``recurrent.py``, ``lstm.py``, its thinc
layer ``context_layer.py``).

The built-in heads and layers register when this package is imported, so a model finds them
without the installed entry points (which other packages' heads use)."""

from . import cbow, directional, ngram, output, recurrent  # noqa: F401  (registration)
