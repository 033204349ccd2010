"""The `spacy-hs` command line. Each command lives in its own module and only calls library code."""

# Commands register themselves on `app` when their module is imported.
from . import assemble, corpus, evaluate, package, predict, preprocess, render, train  # noqa: F401
from ._util import app


def main() -> None:
    """Run the `spacy-hs` command line."""
    app()


__all__ = ["app", "main"]
