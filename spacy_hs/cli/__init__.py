"""The `spacy-hs` command line. Each command lives in its own module and only calls library code."""

# Commands register themselves on `app` when their module is imported.
from . import (  # noqa: F401
    assemble,
    corpus,
    evaluate,
    package,
    predict,
    preprocess,
    render,
    score,
    train,
)
from ._util import app


def main() -> None:
    """Run the `spacy-hs` command line."""
    app()


__all__ = ["app", "main"]
