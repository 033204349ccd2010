"""`spacy-hs package`: not written yet."""
