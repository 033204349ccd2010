"""Next-word heads on the HS model's tree: ``TreeHead`` (the queries, once), gensim's CBOW-style
head, the directional (log-bilinear) head and the n-gram head.

The built-in heads register their architectures when this package is imported, so a model
finds them without the installed entry points (which other packages' heads use)."""

from . import cbow, directional, ngram  # noqa: F401  (registration)
