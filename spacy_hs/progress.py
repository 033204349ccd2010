"""Progress of a long job, shown on stderr: a bar on a terminal, plain lines in a log.

On a terminal, a tqdm bar with its rate (items/s) and, where the job counts them, tokens/s.
Anywhere else (a log file, a batch job's output, a pipe), a bar redrawn with carriage returns
would make an unreadable log, so the job writes one plain line every ``interval`` seconds::

    Epoch 2: 41,000/830,000 tokens (5%), 8,200 tokens/s, ETA 1:36

and, when it ends, a last one (unless ``final=False``: the caller prints its own summary)::

    Epoch 2: 830,000 tokens in 1:41, 8,200 tokens/s

Disabled (``enabled=False``), nothing is written, but the counts and the time are still kept.
Every stage that shows progress (preprocessing, training, evaluation, scoring) uses this.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .util import format_bytes

# Seconds between two lines of a log.
LOG_INTERVAL = 5.0
# Seconds between two redraws of a terminal's bar.
BAR_INTERVAL = 0.5


class Progress:
    """Counts the items of a job (and, optionally, the tokens in them) and shows them.

    desc: what the job is ("Preprocessing", "Epoch 2"); each line starts with it.
    total: how many items there will be, if known (gives a percentage and an ETA).
    unit: what an item is ("tokens", "documents"); "bytes" shows KiB, MiB, ...
    enabled: False shows nothing.
    stream: where to write (default: sys.stderr). A bar if it is a terminal, else lines.
    interval: seconds between two lines when ``stream`` is not a terminal (0: at every
        update); default ``LOG_INTERVAL``, read when the job starts.
    final: write a last line on ``close``, when ``stream`` is not a terminal.
    """

    def __init__(
        self,
        desc: str,
        *,
        total: int | None = None,
        unit: str = "items",
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval: float | None = None,
        final: bool = True,
    ):
        self.desc, self.total, self.unit = desc, total, unit
        self.count = 0
        self.tokens = 0
        self.note = ""
        self._counts_tokens = unit == "tokens"  # tokens/s shown beside another unit once counted
        self._stream = stream or sys.stderr
        self._interval = LOG_INTERVAL if interval is None else interval
        self._final = final
        self._enabled = enabled
        self._closed = False
        self._start = time.perf_counter()
        self._last = self._start
        self._bar: Any = None
        if enabled and _is_terminal(self._stream):
            from tqdm import tqdm  # a spaCy dependency

            scaled = unit == "bytes"
            self._bar = tqdm(
                desc=desc,
                total=total,
                unit="B" if scaled else f" {unit}",
                unit_scale=scaled,
                unit_divisor=1024,
                file=self._stream,
                mininterval=BAR_INTERVAL,
                leave=False,
                dynamic_ncols=True,
            )

    @property
    def seconds(self) -> float:
        """Seconds since the job started."""
        return time.perf_counter() - self._start

    @property
    def is_bar(self) -> bool:
        """Whether progress is drawn as a terminal's bar (not as lines)."""
        return self._bar is not None

    def update(self, n: int = 1, tokens: int = 0, note: str | None = None) -> None:
        """Add ``n`` items (and ``tokens`` tokens) done; ``note`` (e.g. "loss 3.215") replaces
        the text shown after the rates."""
        self.count += n
        if tokens:
            self.count_tokens(tokens)
        if note is not None:
            self.note = note
        if not self._enabled or self._closed:
            return
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.update(n)  # redrawn at most every BAR_INTERVAL: so is the text after it
            if now - self._last >= BAR_INTERVAL:
                self._last = now
                self._bar.set_postfix_str(self._extras(now - self._start), refresh=False)
            return
        if now - self._last >= self._interval:
            self._last = now
            self._write(self.line())

    def count_tokens(self, tokens: int) -> None:
        """Add ``tokens`` tokens done, shown at the next ``update`` (for jobs whose items are
        not tokens, e.g. bytes read)."""
        self.tokens += tokens
        self._counts_tokens = True

    def line(self) -> str:
        """The line a log gets now: ``desc: count/total unit (P%), R unit/s, ETA m:ss``."""
        seconds = max(self.seconds, 1e-9)
        rate = self.count / seconds
        done = self._amount(self.count)
        if self.total:
            done += f"/{self._amount(self.total)}{self._suffix} "
            done += f"({100 * self.count / self.total:.0f}%)"
        else:
            done += self._suffix
        parts = [done, f"{self._amount(rate)}{self._suffix}/s"]
        if self.total and rate > 0:
            parts.append(f"ETA {clock(max(self.total - self.count, 0) / rate)}")
        return self._join(parts, seconds)

    def final_line(self) -> str:
        """The line a log gets at the end: ``desc: count unit in m:ss, R unit/s``."""
        seconds = max(self.seconds, 1e-9)
        done = f"{self._amount(self.count)}{self._suffix} in {clock(seconds)}"
        return self._join([done, f"{self._amount(self.count / seconds)}{self._suffix}/s"], seconds)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hide a terminal's bar while the caller prints its own lines."""
        if self._bar is not None and not self._closed:
            self._bar.clear()
            try:
                yield
            finally:
                self._bar.refresh()
        else:
            yield

    def close(self) -> None:
        """End the job: remove the bar, or write the last line."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._enabled and self._final:
            self._write(self.final_line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _extras(self, seconds: float) -> str:
        """Tokens/s beside another unit, and the note."""
        parts = []
        if self._counts_tokens and self.unit != "tokens":
            parts.append(f"{self.tokens / max(seconds, 1e-9):,.0f} tokens/s")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)

    def _join(self, parts: list[str], seconds: float) -> str:
        extra = self._extras(seconds)
        return f"{self.desc}: " + ", ".join(parts + ([extra] if extra else []))

    @property
    def _suffix(self) -> str:
        return "" if self.unit == "bytes" else f" {self.unit}"  # format_bytes names its unit

    def _amount(self, value: float) -> str:
        return format_bytes(int(value)) if self.unit == "bytes" else f"{value:,.0f}"

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def clock(seconds: float) -> str:
    """``seconds`` as m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
