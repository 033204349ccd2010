"""`spacy-hs train`: not written yet."""
