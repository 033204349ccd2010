"""The spaCy side: the hs_predictor component, assembling and packaging pipelines."""
