"""`spacy-hs predict`: not written yet."""
