"""Every script in bench/ runs in its quick mode (tiny settings and inputs: seconds each), so a
change to the library cannot leave a benchmark broken until someone next measures with it.
The figures of a quick run mean nothing; docs/benchmarks.md gives each script's real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "bench").glob("bench_*.py"))


def test_there_are_bench_scripts() -> None:
    assert len(SCRIPTS) >= 9


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_bench_script_runs_in_its_quick_mode(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr
