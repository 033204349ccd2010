"""Where documents are scored: this process, local worker processes, or a Dask cluster.

Every engine runs `spacy_hs.scoring.records.score_documents` on the chunks that
`spacy_hs.scoring.inputs.chunks` cut, each chunk with a pipeline its worker loaded once, and
gives the chunks' records back in input order. Documents are scored alone (the document cache
never crosses documents) and chunks do not depend on the engine, so the records are the same
whatever the engine and the number of workers.

Memory stays flat: an engine reads a chunk only when fewer than ``IN_FLIGHT_PER_WORKER`` chunks
per worker are being scored or wait for an earlier one to be written.

- `LocalEngine`: ``workers=1`` scores in this process with the pipeline already loaded; more
  workers are processes of this machine (spawned, each loading the pipeline once). A worker
  that dies stops the run with an error.
- `DaskEngine`: tasks on a Dask cluster (`spacy_hs.dask_cluster`: an embedded LocalCluster on
  127.0.0.1, or a running one at ``scheduler``). A task is pure (texts in, records out), so a
  task whose worker dies is run again elsewhere by Dask, and its documents are written once.
  Workers must be able to load the pipeline by the same name (a path on a shared filesystem,
  or an installed package).
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..dask_cluster import DaskCluster, completed, dask_setup, import_distributed
from ..errors import Errors, InputError, PipelineError, SpacyHSError, describe
from .inputs import Chunk
from .records import DEFAULT_BATCH_SIZE, DocumentScore, check_scoring_pipeline, score_documents

IN_FLIGHT_PER_WORKER = 2
# Seconds a Dask run waits for workers when the cluster has none left (at least ``timeout``).
LOST_WORKERS_TIMEOUT = 60.0

__all__ = ["DaskEngine", "Engine", "LocalEngine", "ScoreJob", "dask_setup", "load_pipeline"]


@dataclass
class ScoreJob:
    """What an engine scores: ``chunks`` with the pipeline named ``pipeline`` (``nlp`` is the
    one this process loaded, for scoring in-process)."""

    pipeline: str
    nlp: Any
    chunks: Iterable[Chunk]
    per_token: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    verbose: bool = False


class Engine(Protocol):
    def run(self, job: ScoreJob) -> Iterator[tuple[Chunk, list[DocumentScore]]]:
        """Each chunk of ``job`` with its records, in input order."""
        ...


def load_pipeline(name: str) -> Any:
    """The pipeline ``name``: a directory (`spacy-hs assemble`'s, or an HSModel directory) or
    an installed package; PipelineError if it cannot be loaded or has no hs_predictor."""
    import spacy

    from ..pipeline.package import load_predictor_pipeline

    if Path(name).exists():
        nlp, _ = load_predictor_pipeline(name)
        return nlp
    if not spacy.util.is_package(name):
        reason = "no such directory, nor an installed package of that name"
        raise PipelineError(Errors.E900.format(name=name, reason=reason))
    try:
        nlp = spacy.load(name)
    except (OSError, ValueError, ImportError) as err:
        raise PipelineError(Errors.E900.format(name=name, reason=describe(err))) from None
    check_scoring_pipeline(nlp, name)
    return nlp


def score_chunk(nlp: Any, chunk: Chunk, per_token: bool, batch_size: int) -> list[DocumentScore]:
    """The records of one chunk."""
    return list(
        score_documents(nlp, chunk.texts, ids=chunk.ids, per_token=per_token, batch_size=batch_size)
    )


# This process, or local worker processes --------------------------------------------------------


@dataclass
class LocalEngine:
    """Score on this machine: in this process (``workers=1``) or in ``workers`` processes."""

    workers: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(
                Errors.E110.format(name="workers", expected="an integer >= 1", value=self.workers)
            )

    def run(self, job: ScoreJob) -> Iterator[tuple[Chunk, list[DocumentScore]]]:
        if self.workers == 1:
            for chunk in job.chunks:
                yield chunk, score_chunk(job.nlp, chunk, job.per_token, job.batch_size)
            return
        yield from self._in_processes(job)

    def _in_processes(self, job: ScoreJob) -> Iterator[tuple[Chunk, list[DocumentScore]]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        context = multiprocessing.get_context("spawn")
        pending: deque = deque()
        executor = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_local_worker,
            initargs=(job.pipeline, job.per_token, job.batch_size),
        )
        try:
            for chunk in job.chunks:
                with _children_ignore_ctrl_c():  # a submit may start a worker process
                    pending.append((chunk, executor.submit(_score_in_worker, chunk)))
                if len(pending) >= IN_FLIGHT_PER_WORKER * self.workers:
                    yield _result(pending.popleft(), BrokenProcessPool)
            while pending:
                yield _result(pending.popleft(), BrokenProcessPool)
        except BaseException:  # an error, Ctrl-C, or the consumer stopped: stop the workers now
            # concurrent.futures has no public way to stop running calls: end the processes
            # (private attribute, there since Python 3.2).
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _children_ignore_ctrl_c() -> Iterator[None]:
    """Ctrl-C reaches the whole foreground group, workers too, maybe while they start (and
    import spaCy): processes started inside this block ignore it from their first instruction
    (an ignored signal stays ignored across exec), and this process stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _result(entry: tuple[Chunk, Any], broken: type) -> tuple[Chunk, list[DocumentScore]]:
    chunk, future = entry
    try:
        return chunk, future.result()
    except broken as err:
        raise InputError(
            Errors.E917.format(first=chunk.start, last=chunk.last, reason=describe(err))
        ) from None


_local: dict[str, Any] = {}  # the worker process's pipeline and settings


def _init_local_worker(pipeline: str, per_token: bool, batch_size: int) -> None:
    _local.update(nlp=load_pipeline(pipeline), per_token=per_token, batch=batch_size)


def _score_in_worker(chunk: Chunk) -> list[DocumentScore]:
    return score_chunk(_local["nlp"], chunk, _local["per_token"], _local["batch"])


# A Dask cluster ---------------------------------------------------------------------------------


@dataclass
class DaskEngine(DaskCluster):
    """Score on a Dask cluster: the cluster's settings (`spacy_hs.dask_cluster.DaskCluster`:
    ``workers``, ``scheduler``, ``dashboard``, ``timeout``) and how to run a job on it."""

    preload: str = __name__

    def run(self, job: ScoreJob) -> Iterator[tuple[Chunk, list[DocumentScore]]]:
        distributed, _ = import_distributed()
        run = secrets.token_hex(4)
        chunks = iter(job.chunks)
        with self.client(self.workers or 1 << 30, job.verbose) as client:
            window = IN_FLIGHT_PER_WORKER * max(1, sum(client.nthreads().values())) + 1
            pending = distributed.as_completed([], loop=client.loop)
            waiting: dict[int, tuple[Chunk, Any]] = {}  # submitted, not yet given back
            done: dict[int, list[DocumentScore]] = {}
            next_number = 0
            exhausted = False

            def submit() -> bool:
                while len(waiting) < window:
                    chunk = next(chunks, None)
                    if chunk is None:
                        return True
                    task = _ChunkTask(job.pipeline, chunk, job.per_token, job.batch_size)
                    future = client.submit(
                        _score_task,
                        task,
                        key=f"spacy-hs-score-{run}-{chunk.number:08d}",
                        priority=-chunk.number,  # earlier chunks first: they are written first
                        retries=0,  # an error is the input's or the pipeline's
                    )
                    waiting[chunk.number] = (chunk, future)
                    pending.add(future)
                return False

            try:
                exhausted = submit()
                patience = max(self.timeout, LOST_WORKERS_TIMEOUT)
                for future in completed(distributed, client, pending, patience):
                    number = int(future.key.rsplit("-", 1)[1])
                    chunk = waiting[number][0]
                    if future.status != "finished":
                        raise _task_error(distributed, future, chunk)
                    done[number] = future.result()
                    future.release()
                    while next_number in done:
                        chunk = waiting.pop(next_number)[0]
                        yield chunk, done.pop(next_number)
                        next_number += 1
                    if not exhausted:
                        exhausted = submit()
            except BaseException:
                client.cancel([future for _, future in waiting.values()])
                raise


def _task_error(distributed: Any, future: Any, chunk: Chunk) -> SpacyHSError:
    if future.status == "cancelled":
        reason = "its task was cancelled (by another client, or the cluster restarted)."
        return InputError(Errors.E915.format(first=chunk.start, last=chunk.last, reason=reason))
    error = future.exception()
    if isinstance(error, distributed.KilledWorker):
        worker = getattr(error.last_worker, "address", error.last_worker)
        return InputError(
            Errors.E916.format(
                count=error.allowed_failures + 1,
                first=chunk.start,
                last=chunk.last,
                reason=f"the last one: {worker}",
            )
        )
    # Our errors say what to fix; anything else is shown with its type.
    reason = str(error) if isinstance(error, SpacyHSError) else describe(error)
    return InputError(Errors.E915.format(first=chunk.start, last=chunk.last, reason=reason))


@dataclass
class _ChunkTask:
    """One chunk, as sent to a worker."""

    pipeline: str
    chunk: Chunk
    per_token: bool
    batch_size: int


# The pipelines of this worker process, loaded by its first task and reused by the next ones
# (per thread: a pipeline keeps caches that are not thread-safe).
_pipelines = threading.local()
pipelines_loaded = 0  # pipelines this process has loaded (one per worker thread and pipeline)


def _score_task(task: _ChunkTask) -> list[DocumentScore]:
    global pipelines_loaded
    entry = getattr(_pipelines, "entry", None)
    if entry is None or entry[0] != task.pipeline:
        entry = _pipelines.entry = (task.pipeline, load_pipeline(task.pipeline))
        pipelines_loaded += 1
    return score_chunk(entry[1], task.chunk, task.per_token, task.batch_size)
