"""Stage 1: raw text to token files (sources, normalisation, preprocessing, the format)."""
