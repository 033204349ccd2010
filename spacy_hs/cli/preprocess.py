"""`spacy-hs preprocess`: not written yet."""
