"""spacy_hs.scoring.progress: documents and tokens per second, as lines when not a terminal."""

from __future__ import annotations

import io
import time

from spacy_hs.scoring.progress import Progress


def test_a_log_gets_a_line_every_interval_and_counts_add_up() -> None:
    stream = io.StringIO()  # not a terminal: plain lines, no bar
    progress = Progress(True, stream, interval=0.05)
    progress.update(10, 1000)
    time.sleep(0.06)
    progress.update(5, 500)  # the interval has passed: one line
    progress.update(1, 1)  # too soon after it: none
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Scored 15 documents (")
    assert "1,500 tokens (" in lines[0] and lines[0].endswith("/s)")
    assert (progress.documents, progress.tokens) == (16, 1501)


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(False, stream, interval=0.0)
    progress.update(3, 30)
    progress.close()
    assert stream.getvalue() == "" and progress.line().startswith("Scored 3 documents")
