"""The Dask options of the commands with an engine (``--engine dask``): `spacy-hs preprocess`
and `spacy-hs score`. Each command words ``--engine``, ``--workers`` and ``--scheduler`` for
its own work; ``--dashboard`` and ``--scheduler-timeout`` read the same in both."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from ..errors import ConfigError, Errors
from ._util import Opt


class EngineName(str, Enum):
    """Where a command's work runs: this machine, or a Dask cluster."""

    local = "local"
    dask = "dask"


def engine_opt(help: str) -> Any:
    """``--engine/-e``: local or dask."""
    return Opt("--engine", "-e", help=help)


def workers_opt(help: str, **kwargs: Any) -> Any:
    """``--workers/-w``: worker processes (no default shown: each command says its own)."""
    return Opt("--workers", "-w", help=help, show_default=False, **kwargs)


def scheduler_opt(then: str) -> Any:
    """``--scheduler``: a running scheduler's address; ``then`` says what it needs of it."""
    return Opt(
        "--scheduler",
        help="Dask: address of a running scheduler (tcp://HOST:PORT) whose workers to use; " + then,
        show_default=False,
    )


DashboardOpt = Annotated[
    bool, Opt("--dashboard", help="Dask: serve the local cluster's dashboard on 127.0.0.1:8787.")
]
SchedulerTimeoutOpt = Annotated[
    float | None,
    Opt(
        "--scheduler-timeout",
        help="Dask: seconds to wait for --scheduler and a worker (default 10).",
        show_default=False,
    ),
]


def dask_options(engine: EngineName, **given: Any) -> dict[str, Any]:
    """The Dask engine's keyword arguments among the options ``given`` (named as their flags;
    None, "" and False are not given: project.yml passes "" for none); ConfigError E807 if
    any is given with ``--engine local``."""
    given = {name: value for name, value in given.items() if value not in (None, "", False)}
    if engine == EngineName.local and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(Errors.E807.format(options=flags))
    return {("timeout" if name == "scheduler_timeout" else name): v for name, v in given.items()}
