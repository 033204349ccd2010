"""Evaluation: word-vector benchmarks and held-out next-word prediction."""
