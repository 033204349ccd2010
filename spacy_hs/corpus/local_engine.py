"""The local engine: tokenize in this process, or in worker processes fed batch by batch."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from ..progress import Progress
from .engine import CorpusStats, PreprocessJob, open_output, write_units
from .inputs import Batch, WorkUnit
from .processor import BatchProcessor, BatchResult, ProcessorConfig


@dataclass
class LocalEngine:
    """Run a `PreprocessJob` here: in this process (``n_process`` 1, with ``processor``, which
    is built if not given) or in ``n_process`` worker processes."""

    n_process: int = 1
    processor: BatchProcessor | None = None

    def run(self, job: PreprocessJob) -> CorpusStats:
        processor = self.processor

        def process(batches: Iterator[Batch]) -> Iterable[BatchResult]:
            if self.n_process == 1:
                return map((processor or BatchProcessor(job.config)).process_batch, batches)
            return _process_in_workers(job.config, batches, self.n_process)

        progress = Progress("Preprocessing", unit="tokens", enabled=job.progress)
        handles: list[IO[str]] = []
        try:
            handles.extend(open_output(p) for p in job.outputs)
            units = [WorkUnit(path) for path in job.files]
            return write_units(
                process,
                units,
                handles,
                max_length=job.max_length,
                batch_size=job.batch_size,
                progress=progress,
                document_marker=job.config.document_marker,
            )
        finally:
            for handle in handles:
                handle.close()
            progress.close()


_worker: BatchProcessor | None = None


def _init_worker(config: ProcessorConfig) -> None:
    global _worker
    _worker = BatchProcessor(config)


def _work(batch: Batch) -> BatchResult:
    assert _worker is not None
    return _worker.process_batch(batch)


def _process_in_workers(
    config: ProcessorConfig, batches: Iterable[Batch], n_process: int
) -> Iterator[BatchResult]:
    """Tokenize in worker processes; results come back in input order.

    Workers return finished text, not Docs, so little crosses the process boundary. At most
    two batches per worker are in flight, which keeps memory flat (``Pool.imap`` would read
    the whole input ahead).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pending: deque = deque()
    with context.Pool(n_process, initializer=_init_worker, initargs=(config,)) as pool:
        for batch in batches:
            pending.append(pool.apply_async(_work, (batch,)))
            if len(pending) >= 2 * n_process:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

