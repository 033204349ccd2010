"""Next-word heads on the HS model's tree: ``TreeHead`` (the queries, once), gensim's CBOW-style
head, the directional (log-bilinear) head and the n-gram head."""
