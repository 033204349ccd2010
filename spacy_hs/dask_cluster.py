"""The Dask cluster every Dask engine of spacy-hs runs on (preprocessing, scoring).

`DaskCluster.client` gives a ``distributed.Client`` either of an embedded ``LocalCluster`` (worker
processes of one thread each, bound to 127.0.0.1, shut down at the end, also on Ctrl-C) or of a
running cluster at a scheduler's address (its workers are used and the cluster is left running).
`completed` yields futures as they finish, and stops with an error when the cluster has had no
worker for too long (tasks would wait for ever).

dask and distributed are optional (``pip install "spacy-hs[dask]"``) and imported only when an
engine runs (`import_distributed`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, Errors, InputError
from .util import available_cores, check_max_workers

# Where the embedded cluster's dashboard listens when asked for (never on other interfaces).
DASHBOARD_ADDRESS = "127.0.0.1:8787"
# Bounds of a scheduler's ``timeout`` (a day) and of a task's input in MB (a TB): beyond, a typo.
MAX_TIMEOUT = 86_400.0
MAX_CHUNK_MB = 1e6


@dataclass
class DaskCluster:
    """Where an engine's tasks run.

    workers: worker processes of the embedded ``LocalCluster`` (one thread each; default: one
        per CPU core, at most one per task). Ignored with ``scheduler``.
    scheduler: address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``: use its
        workers and leave the cluster running. Default: an embedded ``LocalCluster``.
    dashboard: serve the embedded cluster's dashboard at http://127.0.0.1:8787/status.
    timeout: seconds to wait for the scheduler at ``scheduler`` to answer and have a worker.
    preload: the module each embedded worker imports as it starts; it must define
        ``dask_setup`` (this module's, or an engine module that imports it, so that the
        engine's libraries are loaded before the first task arrives).
    """

    workers: int | None = None
    scheduler: str | None = None
    dashboard: bool = False
    timeout: float = 10.0
    preload: str = __name__

    def __post_init__(self) -> None:
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise InputError(
                Errors.E110.format(name="workers", expected="an integer >= 1", value=self.workers)
            )
        if self.workers is not None:
            check_worker_processes("--workers", self.workers)
        check_positive_number("timeout", self.timeout, MAX_TIMEOUT)

    @contextmanager
    def client(self, n_tasks: int, verbose: bool) -> Iterator[Any]:
        """A client of the cluster; an embedded cluster has at most ``n_tasks`` workers."""
        distributed, dask_config = import_distributed()
        if self.scheduler:
            with self._existing_cluster(distributed, verbose) as client:
                yield client
            return
        n_workers = max(1, min(self.workers or available_cores(), n_tasks))
        with dask_config.set(_worker_config(self.dashboard)):
            cluster = self._start_local_cluster(distributed, n_workers)
        with cluster, distributed.Client(cluster, set_as_default=False) as client:
            if verbose:
                _say(f"Dask: a local cluster of {n_workers} worker process(es)")
                if self.dashboard:
                    _say(f"Dashboard: {cluster.dashboard_link}")
            yield client

    def _start_local_cluster(self, distributed: Any, n_workers: int) -> Any:
        return distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=DASHBOARD_ADDRESS if self.dashboard else None,
            # Without a dashboard the scheduler still serves health checks over HTTP, by default
            # on port 8787: keep that free for a dashboard, take any free port.
            scheduler_kwargs=None if self.dashboard else {"dashboard_address": "127.0.0.1:0"},
            worker_dashboard_address=None,
            # No memory limit, as in the local engines: a worker paused or restarted near a
            # limit would stall or repeat the run.
            memory_limit=0,
            silence_logs=logging.ERROR,
            preload=[self.preload],  # dask_setup: Ctrl-C is the client's to handle
        )

    @contextmanager
    def _existing_cluster(self, distributed: Any, verbose: bool) -> Iterator[Any]:
        address = self.scheduler
        _check_address(distributed, address, self.timeout)
        try:
            client = distributed.Client(address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            reason = f"{type(err).__name__}: {err}".rstrip(".")
            raise InputError(
                Errors.E801.format(address=address, timeout=self.timeout, reason=reason)
            ) from None
        with client:  # closes the connection only: the cluster stays up
            try:
                client.wait_for_workers(1, timeout=self.timeout)
            except (OSError, TimeoutError):
                raise InputError(
                    Errors.E806.format(address=address, timeout=self.timeout)
                ) from None
            if verbose:
                n_workers = len(client.nthreads())
                _say(f"Dask: {n_workers} worker(s) of the scheduler at {address}")
            yield client


def _worker_config(dashboard: bool) -> dict[str, Any]:
    """Dask settings for the workers of the local cluster: those that cost the tokenizer speed
    and buy nothing here are off, so that its workers run as fast as the local engines."""
    return {
        # The statistical profiler samples every worker thread each 10 ms, for a profile that
        # only the dashboard shows.
        "distributed.worker.profile.enabled": dashboard,
        # Dask's 64 KiB trim threshold makes glibc hand freed memory back at once, and fault it
        # in again (7-30 times the page faults of the local engine, which keeps the default).
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    }


def check_positive_number(name: str, value: Any, most: float) -> None:
    """InputError E110 unless ``value`` is a number above 0 and at most ``most`` (so not inf
    nor NaN, on which Dask's timeouts fail with a KeyError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= most:
        expected = f"a number above 0, at most {most:g}"
        raise InputError(Errors.E110.format(name=name, expected=expected, value=value))


def check_worker_processes(option: str, value: int) -> None:
    """ConfigError (E114) if ``value`` worker processes (Dask's, or the local engines') are
    more than ``max_workers``, the cap of training's threads: beyond it, processes only wait
    for a core, each holding its own Python and spaCy, and a run gets slower and bigger."""
    check_max_workers(value, Errors.E114, option=option)


def _check_address(distributed: Any, address: str, timeout: float) -> None:
    """InputError (E801) for an address that is not one (an unknown scheme, no port): checked
    before a Client is made, since a Client that fails to start prints a traceback when it is
    collected."""
    try:
        scheme, _ = distributed.comm.parse_address(address, strict=False)
        if scheme != "inproc":  # in-process addresses have no host and port
            distributed.comm.get_address_host_port(distributed.comm.normalize_address(address))
    except ValueError as err:
        reason = f"{type(err).__name__}: {err}".rstrip(".")
        raise InputError(
            Errors.E801.format(address=address, timeout=timeout, reason=reason)
        ) from None


def completed(distributed: Any, client: Any, pending: Any, patience: float) -> Iterator[Any]:
    """The futures of ``pending`` (a list, or a ``distributed.as_completed`` that the caller
    may add to meanwhile) as they complete. Tasks wait for workers for ever, so stop with an
    error when the cluster has had no worker for ``patience`` seconds."""
    if not isinstance(pending, distributed.as_completed):
        pending = distributed.as_completed(pending, loop=client.loop)
    checked = time.monotonic()
    lost_since = None
    while not pending.is_empty():
        if pending.has_ready():
            yield next(pending)
            continue
        time.sleep(0.02)
        now = time.monotonic()
        if now - checked < 1.0:
            continue
        checked = now
        if client.nthreads():
            lost_since = None
        elif lost_since is None:
            lost_since = now
        elif now - lost_since > patience:
            raise InputError(
                Errors.E808.format(
                    seconds=patience, count=pending.count(), address=client.scheduler.address
                )
            )


def import_distributed() -> tuple[Any, Any]:
    """The modules ``distributed`` and ``dask.config``; ConfigError E800 without them."""
    try:
        import dask.config
        import distributed
    except ImportError as err:
        raise ConfigError(Errors.E800.format(reason=err)) from None
    return distributed, dask.config


def dask_setup(worker: Any) -> None:
    """Run in each worker process of the embedded cluster as it starts (a Dask preload).

    A Ctrl-C in the terminal reaches every process of the foreground group: the workers ignore
    it, and the client shuts the cluster down in order.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _say(text: str) -> None:
    from wasabi import msg

    msg.info(text)
