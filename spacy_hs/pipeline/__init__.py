"""The spaCy side: the hs_predictor component, assembling and packaging pipelines.

The component's defaults live here, without importing spaCy, so the CLI's options can show
them and stay fast to start.
"""

DEFAULT_TOP_K = 10  # how many words Doc/Span/Token._.hs_next list
DEFAULT_HEAD = "auto"  # the trained head if the model has one, else gensim's CBOW-style head
