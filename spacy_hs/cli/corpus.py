"""`spacy-hs corpus`: not written yet."""
