"""Progress of a scoring run: documents and tokens per second.

On a terminal, a tqdm bar of documents with the tokens per second beside it; elsewhere (a log
file, a batch job's output), one plain line every ``interval`` seconds, since a bar redrawn with
carriage returns would make an unreadable log.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

LOG_INTERVAL = 5.0


class Progress:
    """Counts documents and tokens; shows them if ``enabled``."""

    def __init__(
        self, enabled: bool, stream: IO[str] | None = None, interval: float = LOG_INTERVAL
    ):
        self.documents = 0
        self.tokens = 0
        self._stream = stream or sys.stderr
        self._interval = interval
        self._start = time.perf_counter()
        self._last = self._start
        self._bar: Any = None
        self._enabled = enabled
        if enabled and self._stream.isatty():
            from tqdm import tqdm  # a spaCy dependency

            self._bar = tqdm(
                desc="Scoring", unit=" docs", file=self._stream, mininterval=0.5, leave=False
            )

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start

    def update(self, documents: int, tokens: int) -> None:
        self.documents += documents
        self.tokens += tokens
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(documents)
            self._bar.set_postfix_str(f"{self.tokens / self.seconds:,.0f} tokens/s", refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self._interval:
            self._last = now
            self._stream.write(self.line() + "\n")
            self._stream.flush()

    def line(self) -> str:
        """``Scored N documents (D/s), T tokens (T/s)``."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"Scored {self.documents:,} documents ({self.documents / seconds:,.0f}/s), "
            f"{self.tokens:,} tokens ({self.tokens / seconds:,.0f}/s)"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
