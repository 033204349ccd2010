"""Run Python code in a child process with a time limit, and measure its peak memory: for the
inputs that used to hang or fill memory (FIFOs, /dev/urandom), a test must fail, not hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30


@dataclass
class Isolated:
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss: int  # bytes

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_python(code: str, *args: str, timeout: float = 60.0) -> Isolated:
    """Run ``python -c code args...``; kill it after ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        with out_path.open("w") as out, err_path.open("w") as err:
            start = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "4000"},
            )
            returncode: int | None = None
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - start > timeout:
                    os.kill(process.pid, signal.SIGKILL)
                    _, _, usage = os.wait4(process.pid, 0)
                    break
                time.sleep(0.02)
            process.returncode = returncode if returncode is not None else -9
            seconds = time.monotonic() - start
        return Isolated(
            returncode,
            out_path.read_text(),
            err_path.read_text(),
            seconds,
            usage.ru_maxrss * 1024,  # Linux reports kilobytes
        )
