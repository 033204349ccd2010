"""Stage 1: raw text to token files. Corpus sources, normalisation, preprocessing, and the token-file format."""
