"""Preprocessing on a Dask cluster: ``spacy-hs preprocess --engine dask``.

Tokenizing is the slow stage of the workflow, so this engine spreads it over the processes of a
Dask cluster: an embedded ``distributed.LocalCluster`` on this machine, or a running cluster
(``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes) at ``scheduler``.
As spaCy's maintainers advise for Dask (spaCy issue #5111), the work is coarse and goes from
disk to disk:

- the input is cut into units of about ``chunk_mb`` MB (`split_units`): uncompressed files into
  byte ranges that start and end at line starts, compressed files whole;
- a task reads one unit, tokenizes it with the spaCy pipeline its worker process loaded once,
  writes the unit's token text to a shard file beside the output, and returns the unit's
  statistics (a `CorpusStats`);
- the client appends the shards to the output in input order as soon as each unit and all the
  units before it are done (so the disk holds only the shards not yet merged), sums the
  statistics, and deletes the shards.

**Shared filesystem.** Client and workers must see the inputs and the output's directory at the
same absolute paths (NFS, Lustre, a mounted bucket, or one machine).

**The same result as the local engine.** A task runs the very code of the local engine
(`spacy_hs.corpus.engine.write_units`) on its unit. The output depends on documents only,
never on how they are batched: a unit holds whole lines, decoded as when the whole file is read,
and the held-out split hashes each sentence. Each unit counts its statistics on its own (types
afresh, documents that never span units), so their sums equal the local run's. The token file,
the held-out file and the meta statistics are byte-identical to ``--engine local`` (except
``seconds``).

**Faults.** A task that dies with its worker (killed, out of memory) is run again by Dask on
another worker; it writes its shards under temporary names and renames them when complete, so a
rerun replaces nothing half-written. A task that fails on bad input stops the run with an error
that names the file and byte range. Whatever happens, the shards are removed, the embedded
cluster is shut down (also on Ctrl-C) and no output is written unless the whole run succeeded.

dask and distributed are optional (``pip install "spacy-hs[dask]"``) and imported only when the
engine runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..dask_cluster import (
    MAX_CHUNK_MB,
    DaskCluster,
    check_positive_number,
    completed,
    dask_setup,
    import_distributed,
)
from ..errors import Errors, InputError
from ..progress import Progress
from ..util import atomic_outputs
from .engine import CorpusStats, PreprocessJob, SplitStats, open_output, write_units
from .inputs import COMPRESSED, WorkUnit
from .processor import BatchProcessor, ProcessorConfig

DEFAULT_CHUNK_MB = 32.0
MB = 1_000_000
# Seconds a run waits for workers when the cluster has none left (at least ``timeout``).
LOST_WORKERS_TIMEOUT = 60.0


@dataclass
class DaskEngine:
    """Run `spacy_hs.corpus.preprocess.preprocess` as tasks on a Dask cluster.

    workers, scheduler, dashboard, timeout: the cluster, as `spacy_hs.dask_cluster.DaskCluster`
        takes them (an embedded ``LocalCluster`` has at most one worker per unit).
    chunk_mb: the size of a unit of work, in MB of input (1 MB = 10^6 bytes); fractions are
        allowed. Larger units cost less overhead, smaller ones balance the load better.

    Use it as ``preprocess(inputs, output, engine=DaskEngine(workers=4))``.
    """

    workers: int | None = None
    scheduler: str | None = None
    chunk_mb: float = DEFAULT_CHUNK_MB
    dashboard: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self._cluster = DaskCluster(  # checks workers and timeout
            workers=self.workers,
            scheduler=self.scheduler,
            dashboard=self.dashboard,
            timeout=self.timeout,
            preload=__name__,
        )
        check_positive_number("chunk_mb", self.chunk_mb, MAX_CHUNK_MB)

    def run(self, job: PreprocessJob) -> CorpusStats:
        """Tokenize ``job.files`` on the cluster into ``job.outputs`` (see the module doc)."""
        distributed, _ = import_distributed()
        units = split_units(job.files, max(1, round(self.chunk_mb * MB)))
        shard_dir = job.targets[0].absolute().parent / (
            f".{job.targets[0].name}.{os.getpid()}-{secrets.token_hex(4)}.shards"
        )
        shard_dir.mkdir(parents=True)
        names = ["token"] + ["heldout"] * (len(job.outputs) - 1)
        tasks = [
            _UnitTask(
                unit=WorkUnit(unit.path.absolute(), unit.start, unit.end),
                config=job.config,
                shards=[shard_dir / f"unit-{i:06d}.{name}.txt" for name in names],
                max_length=job.max_length,
                batch_size=job.batch_size,
            )
            for i, unit in enumerate(units)
        ]
        progress = Progress(
            "Preprocessing", total=len(units), unit="units", enabled=job.progress
        )
        try:
            with self._cluster.client(len(units), job.progress) as client:
                # Workers may be away for a while (restarting, or in a batch queue): not forever.
                patience = max(self.timeout, LOST_WORKERS_TIMEOUT)
                return _run_tasks(
                    distributed, client, units, tasks, job.outputs, progress, patience
                )
        finally:
            progress.close()
            _remove_dir(shard_dir)

def split_units(files: Sequence[Path], chunk_bytes: int) -> list[WorkUnit]:
    """Cut ``files`` into units of about ``chunk_bytes`` bytes, in input order.

    An uncompressed file becomes byte ranges, each cut just after the first newline at or past
    ``chunk_bytes`` (so a unit is a little longer, by the rest of its last line); a compressed
    file, which cannot be entered in the middle, is one unit.
    """
    units: list[WorkUnit] = []
    for path in files:
        size = path.stat().st_size
        if path.suffix.lower() in COMPRESSED or size <= chunk_bytes:
            units.append(WorkUnit(path))
            continue
        start = 0
        with open(path, "rb") as f:
            while size - start > chunk_bytes:
                end = _line_start_after(f, start + chunk_bytes - 1)
                if end is None or end >= size:
                    break
                units.append(WorkUnit(path, start, end))
                start = end
        units.append(WorkUnit(path, start, size) if start else WorkUnit(path))
    return units


def _line_start_after(f: IO[bytes], offset: int) -> int | None:
    """The offset just after the first newline at or after ``offset``; None if there is none."""
    f.seek(offset)
    while block := f.read(1 << 16):
        found = block.find(b"\n")
        if found >= 0:
            return offset + found + 1
        offset += len(block)
    return None


# The client ----------------------------------------------------------------------------------


def _run_tasks(
    distributed: Any,
    client: Any,
    units: Sequence[WorkUnit],
    tasks: Sequence[_UnitTask],
    outputs: Sequence[Path],
    progress: Progress,
    patience: float,
) -> CorpusStats:
    """Submit one task per unit and merge the shards in input order as the tasks finish."""
    run = secrets.token_hex(4)
    futures = [
        client.submit(
            _preprocess_unit,
            task,
            key=f"spacy-hs-preprocess-{run}-{i:06d}",
            priority=len(tasks) - i,  # earlier units first: they can be merged first
            retries=0,  # an error is the input's: running again would not help
        )
        for i, task in enumerate(tasks)
    ]
    index_of = {future.key: i for i, future in enumerate(futures)}
    total = CorpusStats(splits=[SplitStats() for _ in outputs])
    finished: dict[int, CorpusStats] = {}
    merged = 0
    handles = []
    try:
        handles.extend(open(path, "wb") for path in outputs)
        for future in completed(distributed, client, futures, patience):
            i = index_of[future.key]
            if future.status != "finished":
                raise _task_error(distributed, future, units[i])
            stats = future.result()
            future.release()
            # Name files as the local engine does (tasks see absolute paths).
            stats.replaced_by_file = (
                {units[i].path: stats.replaced_bytes} if stats.replaced_bytes else {}
            )
            finished[i] = stats
            progress.update(1, tokens=stats.input_tokens)
            while merged in finished:
                for shard, handle in zip(tasks[merged].shards, handles):
                    with open(shard, "rb") as f:
                        shutil.copyfileobj(f, handle, 1 << 20)
                    shard.unlink()
                total.merge(finished.pop(merged))
                merged += 1
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        for handle in handles:
            handle.close()
    return total


def _task_error(distributed: Any, future: Any, unit: WorkUnit) -> InputError:
    if future.status == "cancelled":
        reason = "its task was cancelled (by another client, or the cluster restarted)."
        return InputError(Errors.E802.format(unit=unit, reason=reason))
    error = future.exception()
    if isinstance(error, distributed.KilledWorker):
        worker = getattr(error.last_worker, "address", error.last_worker)
        return InputError(
            Errors.E804.format(
                count=error.allowed_failures + 1, unit=unit, reason=f"the last one: {worker}"
            )
        )
    # Our errors say what to fix; anything else is shown with its type.
    reason = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    return InputError(Errors.E802.format(unit=unit, reason=reason.strip()))


def _remove_dir(path: Path) -> None:
    """Remove the shard directory, also if tasks still running elsewhere add files meanwhile.

    Tasks never create the directory, so once it is gone they cannot write into it; a file
    created while it is being removed makes one more round.
    """
    for _ in range(100):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.05)



# The workers ---------------------------------------------------------------------------------


@dataclass
class _UnitTask:
    """One unit of work, as sent to a worker (paths absolute, for the shared filesystem)."""

    unit: WorkUnit
    config: ProcessorConfig
    shards: list[Path]  # where to write the unit's token text (and held-out text)
    max_length: int
    batch_size: int


# The spaCy pipeline of this worker process, loaded by its first task and reused by the next
# ones (per thread: a processor keeps caches that are not thread-safe).
_cache = threading.local()
processors_built = 0  # pipelines this process has loaded (one per worker thread and config)
# The embedded cluster's workers preload this module: spaCy is loaded before the first task
# arrives, and dask_setup leaves Ctrl-C to the client.
__all__ = ["DaskEngine", "dask_setup", "split_units"]


def _processor(config: ProcessorConfig) -> BatchProcessor:
    global processors_built
    entry = getattr(_cache, "entry", None)
    if entry is None or entry[0] != config:
        entry = _cache.entry = (config, BatchProcessor(config))
        processors_built += 1
    return entry[1]


def _preprocess_unit(task: _UnitTask) -> CorpusStats:
    """A task: tokenize one unit into its shard files and return the unit's statistics."""
    for path in (task.unit.path, task.shards[0].parent):
        if not path.exists():
            raise InputError(Errors.E803.format(worker=_worker_name(), path=path))
    processor = _processor(task.config)
    processor.reset_types()
    # Written under temporary names, renamed once complete: a task killed midway leaves only
    # a temporary file, which the client removes with the shard directory.
    with atomic_outputs(task.shards) as temporaries:
        handles: list[IO[str]] = []
        try:
            handles.extend(open_output(path) for path in temporaries)
            stats = write_units(
                lambda batches: map(processor.process_batch, batches),
                [task.unit],
                handles,
                max_length=task.max_length,
                batch_size=task.batch_size,
                document_marker=task.config.document_marker,
            )
        finally:
            for handle in handles:
                handle.close()
    return stats


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}, pid {os.getpid()}"
