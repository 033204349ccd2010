"""The Typer app that every command registers on, and helpers shared by the commands."""

from __future__ import annotations

import typer

COMMAND = "spacy-hs"
app = typer.Typer(
    name=COMMAND,
    help="Word2Vec with exact hierarchical-softmax next-word probabilities, for spaCy pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
Arg = typer.Argument
Opt = typer.Option


@app.callback()
def _root() -> None:
    """Word2Vec with exact hierarchical-softmax next-word probabilities, for spaCy pipelines."""
