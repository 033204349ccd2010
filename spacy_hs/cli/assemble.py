"""`spacy-hs assemble`: not written yet."""
