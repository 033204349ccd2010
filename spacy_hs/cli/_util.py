"""The Typer app that every command registers on, and helpers shared by the commands."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from wasabi import msg

from ..errors import EXIT_INTERRUPTED, ConfigError, Errors, SpacyHSError

COMMAND = "spacy-hs"


# Help text is wrapped by words: a line never ends inside ``spacy-hs`` or ``--n-process``
# (click's wrapper breaks at hyphens). Hyphens are swapped for non-breaking ones (U+2011, as
# wide) while wrapping, and back in the text printed.
_NO_BREAK_HYPHEN = "\u2011"


class _HelpFormatter(typer.Context.formatter_class):  # type: ignore[name-defined,misc]
    def write_text(self, text: str) -> None:
        super().write_text(text.replace("-", _NO_BREAK_HYPHEN))

    def write_dl(self, rows: Any, *args: Any, **kwargs: Any) -> None:
        rows = [(term, text.replace("-", _NO_BREAK_HYPHEN)) for term, text in rows]
        super().write_dl(rows, *args, **kwargs)

    def getvalue(self) -> str:
        return super().getvalue().replace(_NO_BREAK_HYPHEN, "-")


class _Context(typer.Context):
    formatter_class = _HelpFormatter


class _HelpLayout:
    """Help without typer's quirks: no ``<bool>`` type column for flags (``--help`` included),
    arguments named in capitals (MODEL_DIR, as OUTPUT_DIR), and a usage line that reads
    ``INPUT... OUTPUT``, not ``{INPUT...}... {OUTPUT}``; lines wrapped between words."""

    context_class = _Context

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag:
                param.metavar = ""  # a flag takes no value
            elif isinstance(param, TyperArgument) and param.metavar is None:
                param.metavar = param.name.upper()
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw.rstrip(".") + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        if isinstance(self, TyperGroup):
            pieces.append(self.subcommand_metavar)
        return pieces


class Command(_HelpLayout, TyperCommand):
    """A command with spacy-hs's help layout (a base for commands that add to their help)."""

    pass


class _Group(_HelpLayout, TyperGroup):
    """A Ctrl-C while the arguments are read (typer then loads pydantic, for a second) or while
    the command runs is one line and exit code 130; typer would exit with 130 and say nothing.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _interrupt_is_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _interrupt_is_one_line():
            return super().invoke(ctx)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with the whole first paragraph of its help, wrapped (click cuts it
        at the terminal width with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@contextmanager
def _interrupt_is_one_line() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        msg.fail("Interrupted.", exits=EXIT_INTERRUPTED)


class _App(typer.Typer):
    """A Typer app whose commands print any ``SpacyHSError`` as one line and exit with 1,
    and the library's warnings as ``msg.warn`` lines (``library_warnings``).

    The message already says what went wrong and how to fix it, so no traceback is shown;
    any other exception is a bug, and keeps its traceback.
    """

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        kwargs.setdefault("cls", Command)
        register = super().command(*args, **kwargs)

        def decorator(function: Callable) -> Callable:
            @functools.wraps(function)
            def run(*call_args: Any, **call_kwargs: Any) -> Any:
                try:
                    with library_warnings():
                        return function(*call_args, **call_kwargs)
                except SpacyHSError as err:
                    fail(err)

            register(run)
            return function

        return decorator


def fail(err: SpacyHSError) -> None:
    """Print ``err`` as one ✘ line and exit with 1."""
    msg.fail(str(err), exits=1)


app = _App(
    name=COMMAND,
    cls=_Group,
    help="Word2Vec with exact hierarchical-softmax next-word probabilities, for spaCy pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: at 80 columns Rich's panels cut option names ("--min-sentence-l…").
    rich_markup_mode=None,
)


def Arg(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 (typer's name)
    """``typer.Argument``; a path is not checked by click (``readable``) but by the library,
    whose errors carry a code and exit with 1 (click's exit with 2, in a usage panel)."""
    kwargs.setdefault("readable", False)
    return typer.Argument(*args, **kwargs)


def Opt(  # noqa: N802 (typer's name)
    *args: Any, at_least: float | None = None, at_most: float | None = None, **kwargs: Any
) -> Any:
    """``typer.Option``; paths are checked by the library, as for ``Arg``. ``at_least`` and
    ``at_most`` bound a number (``in_range``, naming the option by its first flag)."""
    kwargs.setdefault("readable", False)
    if at_least is not None or at_most is not None:
        kwargs["callback"] = in_range(args[0], at_least, at_most)
    return typer.Option(*args, **kwargs)


def in_range(
    option: str, low: float | None = None, high: float | None = None
) -> Callable[[Any], Any]:
    """A typer callback in place of click's ``min``/``max``: a number outside [low, high] is
    one line with its code (E190) and exit 1, as every other bad input, not click's exit 2."""
    if low is not None and high is not None:
        expected = f"an integer from {low} to {high}"
    elif low is not None:
        expected = f"an integer >= {low}"
    else:
        expected = f"an integer <= {high}"

    def check(value: Any) -> Any:
        if value is None:
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            fail(ConfigError(Errors.E190.format(option=option, expected=expected, value=value)))
        return value

    return check


class EngineName(str, Enum):
    """Where a command's work runs: this machine, or a Dask cluster."""

    local = "local"
    dask = "dask"


def dask_options(engine: EngineName, **given: Any) -> dict[str, Any]:
    """The Dask engine's keyword arguments among the options ``given`` (named as their flags;
    None, "" and False are not given: project.yml passes "" for none); ConfigError E807 if
    any is given with ``--engine local``."""
    given = {name: value for name, value in given.items() if value not in (None, "", False)}
    if engine == EngineName.local and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(Errors.E807.format(options=flags))
    return {("timeout" if name == "scheduler_timeout" else name): v for name, v in given.items()}


def cache_choice(value: str | None) -> str | None:
    """A typer callback for ``--cache``: off or auto (E191 for anything else)."""
    if value is not None and value not in ("off", "auto"):
        fail(ConfigError(Errors.E191.format(option="--cache", value=value)))
    return value


CACHE_HELP = (
    "The document cache: auto (the model's, tuned by `spacy-hs train`; none for a model "
    "without one) or off."
)
# ``--cache`` of the commands that load a pipeline, whose own setting is the default.
PipelineCacheOpt = Annotated[
    str | None,
    Opt("--cache", callback=cache_choice, help=CACHE_HELP + " Default: the pipeline's."),
]


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"{COMMAND} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-v",
            callback=_print_version,
            is_eager=True,
            help="Print the version of spacy-hs and exit.",
        ),
    ] = False,
) -> None:
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
