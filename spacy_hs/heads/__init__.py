"""Next-word heads: the protocol every head satisfies, the CBOW-style and directional heads."""
