"""The Typer app that every command registers on, and helpers shared by the commands."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from wasabi import msg

from ..errors import SpacyHSError

COMMAND = "spacy-hs"


class _App(typer.Typer):
    """A Typer app whose commands print any ``SpacyHSError`` as one line and exit with 1,
    and the library's warnings as ``msg.warn`` lines (``library_warnings``).

    The message already says what went wrong and how to fix it, so no traceback is shown;
    any other exception is a bug, and keeps its traceback.
    """

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable) -> Callable:
            @functools.wraps(function)
            def run(*call_args: Any, **call_kwargs: Any) -> Any:
                try:
                    with library_warnings():
                        return function(*call_args, **call_kwargs)
                except SpacyHSError as err:
                    msg.fail(str(err), exits=1)

            register(run)
            return function

        return decorator


app = _App(
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


@contextmanager
def library_warnings(
    *, hide: tuple[type[Warning], ...] = (DeprecationWarning, ResourceWarning)
) -> Iterator[None]:
    """Show the warnings the library issues inside the block as ``msg.warn`` lines, once each,
    also when the block fails; warnings of the ``hide`` categories (other packages' deprecation
    notices, spaCy's unclosed files when packaging) are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            shown: set[str] = set()
            for warning in caught:
                text = str(warning.message)
                if issubclass(warning.category, hide) or text in shown:
                    continue
                shown.add(text)
                msg.warn(text)
