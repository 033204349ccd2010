"""spacy_hs.progress: a bar on a terminal, plain lines every interval in a log, nothing if off.

The jobs run for real (preprocessing, gensim and head training, evaluation) with stderr
redirected to a file; ``LOG_INTERVAL = 0`` makes them write a line at every update, so what is
checked does not depend on how fast the machine is.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import termios
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import pytest

import spacy_hs.progress as progress_module
from spacy_hs import HSModel
from spacy_hs.progress import Progress, clock
from spacy_hs.util import format_bytes


def _log_lines(text: str) -> list[str]:
    assert "\r" not in text  # no carriage-return redraw in a log
    return text.splitlines()


def test_a_log_gets_a_line_at_every_update_with_interval_0_and_a_last_line() -> None:
    stream = io.StringIO()
    with Progress("Epoch 2", total=1000, unit="tokens", stream=stream, interval=0) as meter:
        meter.update(50)
        meter.update(350, note="loss 3.215")
    lines = _log_lines(stream.getvalue())
    assert len(lines) == 3
    assert lines[0].startswith("Epoch 2: 50/1,000 tokens (5%), ")
    assert re.fullmatch(
        r"Epoch 2: 400/1,000 tokens \(40%\), [\d,]+ tokens/s, ETA \d+:\d\d, loss 3\.215",
        lines[1],
    )
    assert re.fullmatch(r"Epoch 2: 400 tokens in \d+:\d\d, [\d,]+ tokens/s, loss 3\.215", lines[2])
    assert (meter.count, meter.note) == (400, "loss 3.215")


def test_within_the_interval_only_the_last_line_is_written() -> None:
    stream = io.StringIO()
    meter = Progress("Writing x.txt", unit="lines", stream=stream, interval=3600)
    for _ in range(100):
        meter.update()
    meter.close()
    meter.close()  # a second close writes nothing more
    (line,) = _log_lines(stream.getvalue())
    assert re.fullmatch(r"Writing x\.txt: 100 lines in 0:\d\d, [\d,]+ lines/s", line)


def test_tokens_per_second_beside_another_unit_and_bytes_in_binary_units() -> None:
    stream = io.StringIO()
    with Progress("Preprocessing", total=4, unit="units", stream=stream, interval=0) as meter:
        meter.update(1, tokens=2500)
    first, last = _log_lines(stream.getvalue())
    assert first.startswith("Preprocessing: 1/4 units (25%), ") and " tokens/s" in first
    assert last.startswith("Preprocessing: 1 units in ") and last.endswith(" tokens/s")
    assert meter.tokens == 2500
    stream = io.StringIO()
    with Progress("Held-out", total=3 << 20, unit="bytes", stream=stream, interval=0) as meter:
        meter.update(3 << 19)
    assert stream.getvalue().startswith("Held-out: 1.5 MiB/3.0 MiB (50%), ")


def test_final_false_leaves_the_summary_to_the_caller_and_disabled_writes_nothing() -> None:
    stream = io.StringIO()
    with Progress("Epoch 1", total=10, stream=stream, interval=3600, final=False) as meter:
        meter.update(10)
    assert stream.getvalue() == ""
    with Progress("Epoch 1", total=10, stream=stream, interval=0, enabled=False) as meter:
        meter.update(4, tokens=40)
    assert stream.getvalue() == "" and (meter.count, meter.tokens) == (4, 40)


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.6, 96, 3600 + 62)] == ["0:00", "1:00", "1:36", "1:01:02"]


def test_a_terminal_gets_a_bar_with_its_rate() -> None:
    master, replica = pty.openpty()  # a real terminal, 80 columns wide
    fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with os.fdopen(replica, "w") as stream:
        meter = Progress("Epoch 1", total=1000, unit="tokens", stream=stream, interval=0)
        assert meter.is_bar
        with meter:
            meter.update(100, note="loss 1.000")
            with meter.paused():  # the caller's own line, with the bar out of the way
                stream.write("a line of my own\n")
    shown = ""
    while True:  # until the terminal is closed (EIO)
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk.decode()
    os.close(master)
    assert "\r" in shown and "Epoch 1:" in shown and "%|" in shown and " tokens/s" in shown
    assert "a line of my own" in shown
    assert "0/1,000 tokens" not in shown  # no log lines on a terminal


# -- real jobs, stderr redirected to a file ---------------------------------------------------


@pytest.fixture()
def stderr_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``_logged`` sends stderr; a line at every update."""
    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)
    return tmp_path / "stderr.log"


@contextmanager
def _logged(path: Path) -> Iterator[None]:
    """sys.stderr is a file, as in a batch job's log (set in the test itself: pytest sets its
    own sys.stderr again after the fixtures)."""
    with open(path, "w", encoding="utf-8") as f, redirect_stderr(f):
        yield


def _counts(lines: list[str], prefix: str) -> list[int]:
    """The running count of each line starting with ``prefix``."""
    return [int(line[len(prefix) :].split()[0].split("/")[0].replace(",", "")) for line in lines]


def test_preprocessing_logs_lines(stderr_file: Path, lee_txt: Path, tmp_path: Path) -> None:
    from spacy_hs.corpus.preprocess import preprocess

    with _logged(stderr_file):
        preprocess(lee_txt, tmp_path / "lee.tok.txt", batch_size=20, progress=True)
    lines = _log_lines(stderr_file.read_text())
    assert lines and all(line.startswith("Preprocessing: ") for line in lines)
    *updates, last = lines
    counts = _counts(updates, "Preprocessing: ")
    assert len(counts) >= 2 and counts == sorted(counts)  # one line per batch, growing
    assert " docs, " in updates[-1] and " sentences" in updates[-1] and " tokens/s" in updates[-1]
    assert last.startswith(f"Preprocessing: {counts[-1]:,} tokens in ")


def test_training_logs_lines(
    stderr_file: Path, normalized_token_file: Path, tmp_path: Path
) -> None:
    from spacy_hs.training.train import train

    overrides = {
        "word2vec.epochs": 2, "word2vec.vector_size": 16, "word2vec.workers": 1,
        "head.epochs": 1, "head.workers": 1, "head.ngram_orders": 0, "head.tune_cache": False,
    }  # fmt: skip
    with _logged(stderr_file):
        train(normalized_token_file, tmp_path / "out", overrides=overrides, progress=True)
    lines = _log_lines(stderr_file.read_text())
    vocabulary = [line for line in lines if line.startswith("Vocabulary: ")]
    words = [line for line in lines if line.startswith("Training: ")]
    epoch = [line for line in lines if line.startswith("Epoch 1: ")]
    # The vocabulary scan: a line per sentence read; gensim's training: one per epoch.
    assert len(vocabulary) > 100 and all(" tokens/s" in line for line in vocabulary)
    assert len(words) == 2 and words[0].endswith("epoch 1/2") and words[1].endswith("epoch 2/2")
    assert "(50%)" in words[0] and "ETA " in words[0] and " words/s" in words[0]
    # The head: a line per chunk of the epoch (one thread), with its loss.
    counts = _counts(epoch, "Epoch 1: ")
    assert len(counts) > 1 and counts == sorted(set(counts)) and "(100%)" in epoch[-1]
    assert all(re.search(r", loss \d+\.\d{3}$", line) for line in epoch)


def test_recurrent_training_logs_lines(
    stderr_file: Path, normalized_model: HSModel, normalized_token_file: Path
) -> None:
    from spacy_hs.training.recurrent import train_recurrent_head

    model = HSModel.from_bytes(normalized_model.to_bytes())
    with _logged(stderr_file):
        train_recurrent_head(
            model, normalized_token_file, epochs=1, hidden_width=8, batch_size=8, bptt=100,
            ngram_orders=0, tune_cache=False, progress=True,
        )  # fmt: skip
    lines = _log_lines(stderr_file.read_text())
    epoch = [line for line in lines if line.startswith("Epoch 1: ")]
    counts = _counts(epoch, "Epoch 1: ")
    assert len(counts) > 2 and counts == sorted(set(counts))  # a line per batch
    assert counts[1] - counts[0] == 8 * 100  # streams x steps
    assert "(100%)" in epoch[-1]  # no last line: the epoch's summary is printed
    assert all(re.search(r" tokens/s, ETA \d+:\d\d, perplexity [\d.]+$", line) for line in epoch)


def test_evaluation_logs_lines(
    stderr_file: Path, directional_model: HSModel, normalized_token_file: Path
) -> None:
    from spacy_hs.evaluation.next_word import next_word_metrics

    with _logged(stderr_file):
        next_word_metrics(directional_model, normalized_token_file, show_progress=True)
    lines = _log_lines(stderr_file.read_text())
    held_out = [line for line in lines if line.startswith("Scoring the held-out file: ")]
    *updates, last = held_out
    size = f"/{format_bytes(normalized_token_file.stat().st_size)} ("
    assert len(updates) > 2 and all(size in line for line in updates)  # a line per line read
    assert "(100%)" in updates[-1] and updates[-1].endswith(" tokens/s")
    assert " in " in last and last.endswith(" tokens/s")
