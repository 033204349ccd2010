"""`spacy-hs score`: the command, its messages, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli


def test_help_reads_plainly() -> None:
    import typer

    from spacy_hs.cli import app

    command = typer.main.get_command(app).commands["score"]
    assert all(getattr(param, "help", None) for param in command.params)
    result = run_cli("score", "--help")
    assert result.exit_code == 0 and "<bool>" not in result.output and "{" not in result.output
    assert "spacy-hs score [OPTIONS] PIPELINE INPUT... OUTPUT" in result.output
    assert 'pip install "spacy-hs[dask]"' in result.output


def test_score_writes_records_and_reports(
    scoring_pipeline_dir: Path, heldout_documents: list[str], tmp_path: Path
) -> None:
    source = tmp_path / "docs.txt"
    source.write_text("\n\n".join(heldout_documents[:40]) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "scores.jsonl"
    result = run_cli(
        "score", scoring_pipeline_dir, source, output, "--buckets", "33,66",
        "--max-perplexity", "1e9", "--per-token", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Scored 40 documents" in result.output and "tokens/s" in result.output
    assert "Wrote 40 documents with perplexity <= 1e+09" in result.output
    assert "head 13" in result.output  # the bucket table
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in records] == list(range(40))
    assert set(records[0]) == {
        "id", "tokens", "perplexity", "surprisal", "unknown", "token_text", "token_surprisal",
        "bucket",
    }  # fmt: skip
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "scores.jsonl", "scores.jsonl.cutoffs.json", "scores.kept.jsonl",
    ]  # fmt: skip


def test_errors_are_one_line_with_a_code(scoring_pipeline_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Fine."}\n{"txt": "Not fine."}\n', encoding="utf-8")
    result = run_cli("score", scoring_pipeline_dir, bad, tmp_path / "o.jsonl", "--no-progress")
    assert result.exit_code == 1 and "[E903] Line 2 of" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.jsonl").exists()
    result = run_cli("score", tmp_path / "nothing", bad, tmp_path / "o.jsonl")
    assert result.exit_code == 1 and "[E900] Cannot load pipeline" in result.output
    result = run_cli("score", scoring_pipeline_dir, bad, tmp_path / "o.jsonl", "--dashboard")
    assert result.exit_code == 1 and "--dashboard only apply to --engine dask" in result.output


def _as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # see test_dask_engine._as_in_a_terminal


def test_ctrl_c_leaves_no_output(
    scoring_pipeline_dir: Path, lee_path: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "lee.txt"
    source.parent.mkdir()
    source.write_bytes(lee_path.read_bytes().replace(b"\n", b"\n\n") * 30)  # minutes of work
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [sys.executable, "-m", "spacy_hs", "score", str(scoring_pipeline_dir), str(source)]
    command += [str(out_dir / "scores.jsonl"), "--workers", "2", "--no-progress"]
    run = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_as_in_a_terminal,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(out_dir.glob(".scores.jsonl.*.tmp")):  # scoring has started
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read()
            time.sleep(0.01)
        time.sleep(1.0)
        os.killpg(run.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, stdout + stderr
    assert "Interrupted" in " ".join(stdout.split()) and "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []
