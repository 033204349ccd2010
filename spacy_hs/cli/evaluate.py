"""`spacy-hs evaluate`: not written yet."""
