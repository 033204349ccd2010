"""The Dask options of the commands with an engine (``--engine dask``): `spacy-hs preprocess`
and `spacy-hs score`. Each command words ``--engine``, ``--workers`` and ``--scheduler`` for
its own work; ``--dashboard`` and ``--scheduler-timeout`` read the same in both. Which engine
runs and which options it takes: ``_util.EngineName`` and ``_util.dask_options``."""

from __future__ import annotations

from typing import Annotated, Any

from ._util import Opt


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
