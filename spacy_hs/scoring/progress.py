"""Progress of a scoring run: documents and tokens per second.

``spacy_hs.progress.Progress`` shows it (a bar on a terminal, a line every ``interval`` seconds
elsewhere); here are the scoring run's words for it. No last line: ``spacy-hs score`` prints
its own summary.
"""

from __future__ import annotations

from typing import IO

from .. import progress


class Progress(progress.Progress):
    """Counts documents and tokens; shows them if ``enabled``."""

    def __init__(
        self, enabled: bool, stream: IO[str] | None = None, interval: float | None = None
    ):
        super().__init__(
            "Scoring",
            unit="docs",
            enabled=enabled,
            stream=stream,
            interval=interval,
            final=False,
        )

    @property
    def documents(self) -> int:
        return self.count

    def line(self) -> str:
        """``Scored N documents (D/s), T tokens (T/s)``."""
        seconds = max(self.seconds, 1e-9)
        return (
            f"Scored {self.documents:,} documents ({self.documents / seconds:,.0f}/s), "
            f"{self.tokens:,} tokens ({self.tokens / seconds:,.0f}/s)"
        )
