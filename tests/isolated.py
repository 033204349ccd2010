"""Run Python code in a child process with a time limit, and measure its peak memory: for the
inputs that used to hang or fill memory (FIFOs, /dev/urandom), a test must fail, not hang.

The peak is the child's own. ``ru_maxrss`` of a child started straight from pytest is not: on
Linux, exec() carries the peak RSS of the process image it replaces into the child's rusage,
and a spawned child's image before exec is its parent's (vfork shares it, fork copies it). So
every child of a 1 GB pytest would report at least 1 GB. A small launcher process starts the
child and reads its rusage instead; what it adds is its own few MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30
# argv: result file, time limit in seconds, the command. Writes "<exit code or 'killed'>
# <ru_maxrss in KiB>" to the result file.
LAUNCHER = """
import os, signal, subprocess, sys, time
result, timeout, *command = sys.argv[1:]
process = subprocess.Popen(command)
deadline = time.monotonic() + float(timeout)
while True:
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid:
        code = str(os.waitstatus_to_exitcode(status))
        break
    if time.monotonic() > deadline:
        os.kill(process.pid, signal.SIGKILL)
        _, _, usage = os.wait4(process.pid, 0)
        code = "killed"
        break
    time.sleep(0.02)
with open(result, "w") as file:
    file.write(f"{code} {usage.ru_maxrss}")
"""


@dataclass
class Isolated:
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    max_rss: int  # bytes, the child's own peak RSS

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_python(code: str, *args: str, timeout: float = 60.0) -> Isolated:
    """Run ``python -c code args...``; kill it after ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
        result_path = Path(tmp, "result")
        with out_path.open("w") as out, err_path.open("w") as err:
            start = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    LAUNCHER,
                    str(result_path),
                    str(timeout),
                    sys.executable,
                    "-c",
                    code,
                    *args,
                ],
                stdout=out,
                stderr=err,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "4000"},
                check=True,
                timeout=timeout + 30,  # the launcher's own limit: it kills at ``timeout``
            )
            seconds = time.monotonic() - start
        code_text, max_rss = result_path.read_text().split()
        return Isolated(
            None if code_text == "killed" else int(code_text),
            out_path.read_text(),
            err_path.read_text(),
            seconds,
            int(max_rss) * 1024,  # Linux reports kilobytes
        )
