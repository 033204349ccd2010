"""Next-word heads on the HS model's tree: ``TreeHead`` (the queries, once), gensim's CBOW-style
head, the directional (log-bilinear) head, the n-gram head and the recurrent head.

The built-in heads register their architectures when this package is imported, so a model
finds them without the installed entry points (which other packages' heads use)."""

from . import cbow, directional, ngram, recurrent  # noqa: F401  (registration)
