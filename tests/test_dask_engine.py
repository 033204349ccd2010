"""spacy_hs.corpus.dask_engine and `spacy-hs preprocess --engine dask`, on real Dask clusters.

Two real clusters: the engine's embedded ``LocalCluster`` (2 worker processes), and a
``dask scheduler`` plus two ``dask worker`` processes started here on 127.0.0.1 (random free
ports, torn down at the end). Every result is compared byte for byte with the local engine.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import srsly
from conftest import TRICKY
from typer.testing import CliRunner

from spacy_hs.cli import app
from spacy_hs.corpus.inputs import WorkUnit, lines_before, open_unit
from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.errors import SpacyHSError

distributed = pytest.importorskip("distributed")

from spacy_hs.corpus import dask_engine  # noqa: E402
from spacy_hs.corpus.dask_engine import DaskEngine, split_units  # noqa: E402

# Small units, so that even this small corpus makes many tasks.
CHUNK_MB = 0.02
TIMEOUT = 60  # seconds: the bound on starting a cluster or waiting for a process



@pytest.fixture(scope="module")
def lee_lines(lee_path: Path) -> list[str]:
    return [line.strip() for line in lee_path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, lee_lines: list[str]) -> Path:
    """A multi-file corpus: plain text (LF and CRLF), gzip and bz2, JSONL, non-UTF-8 bytes and
    lines longer than the max_length the tests use."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "a").mkdir()
    (root / "b").mkdir()
    text = "\n".join(lee_lines[:120] + TRICKY) + "\n"
    (root / "a" / "lee1.txt").write_text(text, encoding="utf-8")
    crlf = "\r\n".join(lee_lines[120:170]) + "\r\n"
    (root / "a" / "lee2.txt").write_bytes(crlf.encode())
    (root / "a" / "lee3.txt.gz").write_bytes(gzip.compress("\n".join(lee_lines[170:200]).encode()))
    (root / "b" / "lee4.txt.bz2").write_bytes(bz2.compress("\n".join(lee_lines[200:220]).encode()))
    records = [json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(lee_lines[:100])]
    (root / "b" / "lee5.jsonl").write_text("".join(records), encoding="utf-8")
    # Latin-1 bytes (not UTF-8) and over-long lines, in the middle of a plain file.
    latin = [line.encode() for line in lee_lines[220:299]]
    latin[10] += " caf\xe9 na\xefve".encode("latin-1")
    latin[40] = b" ".join(latin[40:46])  # about 7,000 characters
    (root / "b" / "lee6.txt").write_bytes(b"\n".join(latin) + b"\n")
    return root


def run(source: Path | list[Path], out_dir: Path, engine=None, **options) -> tuple[dict, list]:
    """Preprocess into ``out_dir`` with a held-out split; return file contents and warnings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    options.setdefault("heldout_fraction", 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = preprocess(
            source,
            out_dir / "corpus.tok.txt",
            heldout=out_dir / "heldout.tok.txt",
            max_length=2000,
            progress=False,
            engine=engine,
            **options,
        )
    assert result.meta["stats"]["tokens"] > 0 and result.heldout_meta["stats"]["tokens"] > 0
    # spacy-hs's warnings (they name the caller); not those of libraries
    ours = [str(w.message) for w in caught if w.filename == __file__]
    return contents(out_dir), ours


def contents(out_dir: Path) -> dict[str, bytes | dict]:
    """Every file in ``out_dir`` (hidden ones too): bytes, or meta dicts without ``seconds``."""
    found: dict[str, bytes | dict] = {}
    for path in sorted(out_dir.iterdir()):
        if path.name.endswith(".meta.json"):
            meta = srsly.read_json(path)
            assert meta["stats"].pop("seconds") > 0
            found[path.name] = meta
        else:
            found[path.name] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def expected(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list]:
    """The local engine's files and warnings for the corpus with default options."""
    return run(corpus, tmp_path_factory.mktemp("local"))


def test_corpus_makes_many_units_of_every_kind(corpus: Path) -> None:
    from spacy_hs.corpus.inputs import collect_input_files

    units = split_units(collect_input_files([corpus]), round(CHUNK_MB * 1e6))
    assert len(units) >= 12
    ranged = [u for u in units if u.end is not None]
    assert {u.path.name for u in ranged} == {"lee1.txt", "lee2.txt", "lee5.jsonl", "lee6.txt"}
    assert [u.path.name for u in units if u.end is None] == ["lee3.txt.gz", "lee4.txt.bz2"]


# The embedded LocalCluster --------------------------------------------------------------------


def test_local_cluster_matches_local_engine(
    corpus: Path, expected: tuple[dict, list], tmp_path: Path
) -> None:
    files, caught = run(corpus, tmp_path, engine=DaskEngine(workers=2, chunk_mb=CHUNK_MB))
    assert files == expected[0]  # token file, held-out file and both metas; nothing else
    assert caught == expected[1]  # the same warnings: non-UTF-8 bytes per file, split lines
    assert any("not valid UTF-8" in w for w in caught) and any("max_length" in w for w in caught)
    meta = files["corpus.tok.txt.meta.json"]
    assert meta["stats"]["replaced_bytes"] == 2 and meta["stats"]["split_lines"] >= 1


def test_document_markers_match_the_local_engine(corpus: Path, tmp_path: Path) -> None:
    """Units are cut at line starts, so no document spans two shards: each shard ends with its
    last document's marker, and the concatenation is the local engine's file."""
    from spacy_hs.corpus import tokenfile

    local, _ = run(corpus, tmp_path / "local", document_marker=True)
    files, _ = run(
        corpus,
        tmp_path / "dask",
        engine=DaskEngine(workers=2, chunk_mb=CHUNK_MB),
        document_marker=True,
    )
    assert files == local
    for name in ("corpus.tok.txt", "heldout.tok.txt"):
        documents = list(tokenfile.documents(tmp_path / "dask" / name))
        assert len(documents) == files[f"{name}.meta.json"]["stats"]["documents"]


def test_killed_worker_is_survived(lee_path: Path, tmp_path: Path) -> None:
    # A task writes its shard under a temporary name holding its worker's pid, from its start
    # to its end: seeing one, kill that worker with SIGKILL while the task runs.
    source = tmp_path / "in" / "lee.txt"
    source.parent.mkdir()
    source.write_bytes(lee_path.read_bytes() * 6)  # 2.2 MB: tasks of about half a second
    local, _ = run(source, tmp_path / "local")
    out_dir = tmp_path / "dask"
    out_dir.mkdir()
    killed: list[tuple[int, Path, bool]] = []
    done = threading.Event()

    def kill_a_running_task() -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done.is_set() and time.monotonic() < deadline:
            for partial in out_dir.glob(".*.shards/.unit-*.spacy-hs-*.tmp"):
                # util.temporary_sibling: .<name>.spacy-hs-<pid>-<random>.tmp
                pid = int(partial.name.rsplit(".spacy-hs-", 1)[1].split("-")[0])
                assert pid != os.getpid()
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
                # Still there: the task had not finished, and never will.
                killed.append((pid, partial, partial.exists()))
                return
            time.sleep(0.002)

    killer = threading.Thread(target=kill_a_running_task)
    killer.start()
    try:
        files, _ = run(source, out_dir, engine=DaskEngine(workers=2, chunk_mb=0.4))
    finally:
        done.set()
        killer.join()
    assert len(killed) == 1, "no task was seen running"
    pid, partial, was_running = killed[0]
    assert was_running, f"the task of {partial.name} had finished before its worker was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert files == local  # identical output; no shard or partial file left


def _as_in_a_terminal() -> None:
    """Ctrl-C's default action, as a terminal's foreground process has it: a background job of
    a non-interactive shell (CI run with `&`) starts with SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_shuts_the_local_cluster_down(lee_path: Path, tmp_path: Path) -> None:
    import psutil  # a dependency of distributed

    source = tmp_path / "in" / "lee.txt"
    source.parent.mkdir()
    # Large enough that units are still running when the test looks, even on a busy machine.
    source.write_bytes(lee_path.read_bytes() * 40)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [sys.executable, "-m", "spacy_hs", "preprocess", str(source)]
    command += [str(out_dir / "corpus.tok.txt"), "--engine", "dask", "--workers", "2"]
    command += ["--chunk-mb", "0.2", "--no-progress"]
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_in_a_terminal,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not list(out_dir.glob(".*.shards/.unit-*.tmp")):  # tasks are running
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read()
            time.sleep(0.01)
        # What a terminal sends on Ctrl-C: SIGINT to every process of the foreground group.
        os.killpg(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=TIMEOUT)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, stdout + stderr
    assert "Interrupted" in " ".join(stdout.split()) and "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []  # no output, no shard, no temporary file

    def left() -> list[int]:
        found = []
        for process in psutil.process_iter():
            try:
                if os.getpgid(process.pid) == run.pid:
                    found.append(process.pid)
            except (ProcessLookupError, psutil.Error):
                pass
        return found

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left() == []  # the workers and the scheduler are gone too


# A `dask scheduler` and two `dask worker` processes -------------------------------------------


def _dask(*args: str) -> subprocess.Popen:
    # A session of its own: the test ends exactly these processes (and their children).
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _start_scheduler(directory: Path) -> tuple[subprocess.Popen, str]:
    scheduler_file = directory / "scheduler.json"
    local = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--no-dashboard"]
    scheduler = _dask("scheduler", "--port", "0", *local, "--scheduler-file", str(scheduler_file))
    deadline = time.monotonic() + TIMEOUT
    while not scheduler_file.exists():
        if time.monotonic() > deadline or scheduler.poll() is not None:
            _stop([scheduler])
            pytest.fail("`dask scheduler` did not start")
        time.sleep(0.1)
    time.sleep(0.1)  # the file is written in one piece, but let the writer close it
    return scheduler, srsly.read_json(scheduler_file)["address"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """(address, client) of a scheduler and two single-threaded workers on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("cluster")
    scheduler, address = _start_scheduler(directory)
    processes = [scheduler]
    try:
        for name in ("w1", "w2"):
            processes.append(
                _dask(
                    "worker",
                    address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                    "--death-timeout",
                    str(TIMEOUT),
                    "--local-directory",
                    str(directory),
                )
            )
        client = distributed.Client(address, timeout=TIMEOUT, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=TIMEOUT)
            assert address.startswith("tcp://127.0.0.1:")
            yield address, client
        finally:
            client.close()
    finally:
        _stop(processes)


def _built(client) -> dict[str, int]:
    return client.run(lambda: dask_engine.processors_built)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "normalizer": {"lowercase": False, "punct": "keep", "numbers": "keep", "urls": "keep"},
            "heldout_seed": 3,
        },
        {
            "normalizer": {"punct": "placeholder", "numbers": "drop", "urls": "drop"},
            "min_sentence_length": 4,
            "heldout_fraction": 0.3,
        },
        {"normalizer": {"stopwords": "drop"}, "batch_size": 7},
        {"pretokenized": True},
    ],
    ids=["default", "keep", "placeholders-min-length", "stopwords", "pretokenized"],
)
def test_existing_cluster_matches_local_engine(
    corpus: Path, tmp_path: Path, cluster: tuple[str, object], options: dict
) -> None:
    address, client = cluster
    local = run(corpus, tmp_path / "local", **options)
    before = _built(client)
    engine = DaskEngine(scheduler=address, chunk_mb=CHUNK_MB)
    assert run(corpus, tmp_path / "dask", engine=engine, **options) == local
    # Each worker loaded the spaCy pipeline at most once for the dozen or more tasks.
    after = _built(client)
    assert sorted(after) == sorted(before) and len(after) == 2
    assert all(after[w] - before[w] <= 1 for w in after) and after != before
    # The cluster is still up for the next client.
    assert len(client.nthreads()) == 2


def test_cli_against_existing_cluster(
    corpus: Path, tmp_path: Path, cluster: tuple[str, object]
) -> None:
    address, _ = cluster
    runner = CliRunner()
    outputs = {}
    for engine in ("local", "dask"):
        out_dir = tmp_path / engine
        args = ["preprocess", str(corpus), str(out_dir / "corpus.tok.txt"), "--no-progress"]
        args += ["--heldout", str(out_dir / "heldout.tok.txt"), "--heldout-fraction", "0.1"]
        args += ["--punct", "placeholder", "--engine", engine]
        if engine == "dask":
            args += ["--scheduler", address, "--chunk-mb", str(CHUNK_MB)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        output = " ".join(result.output.split())
        assert "Wrote" in output and "not valid UTF-8" in output
        outputs[engine] = contents(out_dir)
    assert outputs["dask"] == outputs["local"]


@pytest.mark.parametrize("where", ["local cluster", "existing cluster"])
def test_failing_unit_leaves_nothing_behind(
    lee_lines: list[str], tmp_path: Path, cluster: tuple[str, object], where: str
) -> None:
    records = [json.dumps({"text": text}) for text in lee_lines]
    bad_line = 250
    records[bad_line - 1] = '{"text": "an unterminated record'
    source = tmp_path / "in" / "news.jsonl"
    source.parent.mkdir()
    source.write_text("\n".join(records) + "\n", encoding="utf-8")
    units = split_units([source], round(CHUNK_MB * 1e6))
    assert len(units) > 10
    bad_offset = len("\n".join(records[: bad_line - 1]).encode()) + 1
    bad = next(u for u in units if u.start <= bad_offset < u.end)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "corpus.tok.txt"
    output.write_text("previous run\n")
    scheduler = cluster[0] if where == "existing cluster" else None
    engine = DaskEngine(workers=2, scheduler=scheduler, chunk_mb=CHUNK_MB)
    with pytest.raises(SpacyHSError) as error:
        preprocess(source, output, heldout=out_dir / "held.txt", engine=engine, progress=False)
    message = str(error.value)
    assert str(source) in message and f"bytes {bad.start:,}-{bad.end:,}" in message
    assert f"Line {bad_line} of {source}" in message  # counted from the start of the file
    # Tasks still running when the error came may finish later: they must not write anything.
    for _ in range(2):
        assert sorted(p.name for p in out_dir.iterdir()) == ["corpus.tok.txt"]
        assert output.read_text() == "previous run\n"
        time.sleep(1.0)


# Errors ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_fails_within_timeout(corpus: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(SpacyHSError, match="Cannot connect to the Dask scheduler") as error:
        run(corpus, tmp_path, engine=DaskEngine(scheduler=address, timeout=2))
    assert time.monotonic() - start < 15
    assert address in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_scheduler_without_workers_fails_within_timeout(corpus: Path, tmp_path: Path) -> None:
    scheduler, address = _start_scheduler(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(SpacyHSError, match="has no workers") as error:
            run(corpus, tmp_path / "out", engine=DaskEngine(scheduler=address, timeout=2))
        assert time.monotonic() - start < 15
        assert f"dask worker {address}" in str(error.value)
        assert list((tmp_path / "out").iterdir()) == []
    finally:
        _stop([scheduler])


def test_without_dask_says_how_to_install(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    with pytest.raises(SpacyHSError, match=r'pip install "spacy-hs\[dask\]"'):
        run(corpus, tmp_path, engine=DaskEngine())
    result = CliRunner().invoke(
        app, ["preprocess", str(corpus), str(tmp_path / "out.txt"), "--engine", "dask"]
    )
    assert result.exit_code == 1
    assert 'pip install "spacy-hs[dask]"' in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())


def test_bad_engine_options(corpus: Path, tmp_path: Path) -> None:
    for options in ({"workers": 0}, {"workers": 1.5}, {"chunk_mb": 0}, {"timeout": -1}):
        with pytest.raises(SpacyHSError, match="must be"):
            DaskEngine(**options)
    with pytest.raises(SpacyHSError, match="n_process=2 applies to the local engine"):
        preprocess(corpus, tmp_path / "out.txt", n_process=2, engine=DaskEngine())
    runner = CliRunner()
    args = ["preprocess", str(corpus), str(tmp_path / "out.txt"), "--workers", "2"]
    result = runner.invoke(app, args + ["--chunk-mb", "4"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "--workers, --chunk-mb only apply to --engine dask" in output
    # project.yml passes an empty --scheduler when none is set: that is no scheduler.
    result = runner.invoke(app, args[:3] + ["--scheduler", "", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob(".*"))


# Work units and the byte-range reader ---------------------------------------------------------


def test_units_cover_the_file_at_line_starts(tmp_path: Path, lee_lines: list[str]) -> None:
    data = "\r\n".join(lee_lines[:40]).encode() + b"\n\xff\xfe broken\n" + b"x" * 5000 + b"\nend"
    path = tmp_path / "mixed.txt"
    path.write_bytes(data)
    for chunk in (1, 100, 3000, 4999, len(data) - 1, len(data), 10**9):
        units = split_units([path], chunk)
        assert units[0].start == 0 and (units[-1].end in (None, len(data)))
        for unit, following in zip(units, units[1:]):
            assert unit.end == following.start and data[unit.end - 1 : unit.end] == b"\n"
            assert unit.end - unit.start >= chunk
        # Reading the units one after another gives the text of the whole file.
        pieces = []
        for unit in units:
            with open_unit(unit) as f:
                pieces.append(f.read())
        with open(path, encoding="utf-8", errors="replace", newline=None) as f:
            assert "".join(pieces) == f.read()
        for unit in units:
            assert lines_before(unit) == data[: unit.start].count(b"\n")
    packed = tmp_path / "packed.txt.gz"
    packed.write_bytes(gzip.compress(data))
    assert split_units([packed], 100) == [WorkUnit(packed)]


def test_project_passes_engine_and_scheduler(
    corpus: Path, tmp_path: Path, cluster: tuple[str, object]
) -> None:
    # `spacy project run preprocess` with vars engine/scheduler, against the local engine.
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    results = {}
    for engine, scheduler in (("local", ""), ("dask", cluster[0])):
        project = tmp_path / engine
        (project / "corpus").mkdir(parents=True)
        shutil.copy(root / "project.yml", project)
        shutil.copytree(corpus, project / "corpus" / "raw")
        command = [sys.executable, "-m", "spacy", "project", "run", "preprocess", str(project)]
        command += [f"--vars.engine={engine}", f"--vars.scheduler={scheduler}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        if engine == "dask":
            assert f"worker(s) of the scheduler at {scheduler}" in done.stdout
        shutil.rmtree(project / "corpus" / "raw")
        results[engine] = contents(project / "corpus")
    assert set(results["dask"]) == {
        "train.txt",
        "train.txt.meta.json",
        "heldout.txt",
        "heldout.txt.meta.json",
    }
    assert results["dask"] == results["local"]


def test_a_worker_that_cannot_see_the_files_says_so(tmp_path: Path) -> None:
    # A task run where the input is missing, as on a worker without the shared filesystem.
    from spacy_hs.corpus.dask_engine import _preprocess_unit, _UnitTask
    from spacy_hs.corpus.processor import ProcessorConfig

    config = ProcessorConfig("en", {}, False, 1, 0.0, 0)
    shards = [tmp_path / "unit-000000.token.txt"]
    task = _UnitTask(WorkUnit(tmp_path / "elsewhere.txt"), config, shards, 1000, 100)
    with pytest.raises(SpacyHSError, match="cannot see .*elsewhere.txt.*share a filesystem"):
        _preprocess_unit(task)
    (tmp_path / "elsewhere.txt").write_text("Some text.\n")
    missing_dir = [tmp_path / "gone" / "unit-000000.token.txt"]
    with pytest.raises(SpacyHSError, match="cannot see .*gone"):
        _preprocess_unit(_UnitTask(WorkUnit(tmp_path / "elsewhere.txt"), config, missing_dir, 9, 9))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.txt"]


def test_a_cluster_that_loses_all_its_workers_stops_the_run(
    lee_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One worker without a nanny (nothing restarts it), killed while it runs a task.
    monkeypatch.setattr(dask_engine, "LOST_WORKERS_TIMEOUT", 2.0)
    scheduler, address = _start_scheduler(tmp_path)
    worker = _dask(
        "worker", address, "--no-nanny", "--nthreads", "1", "--host", "127.0.0.1",
        "--dashboard-address", "127.0.0.1:0", "--no-dashboard", "--memory-limit", "0",
        "--death-timeout", str(TIMEOUT), "--local-directory", str(tmp_path),
    )  # fmt: skip
    try:
        with distributed.Client(address, timeout=TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=TIMEOUT)
        source = tmp_path / "in" / "lee.txt"
        source.parent.mkdir()
        source.write_bytes(lee_path.read_bytes() * 3)
        out_dir = tmp_path / "out"
        out_dir.mkdir()

        def kill_when_running() -> None:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and worker.poll() is None:
                if list(out_dir.glob(".*.shards/.unit-*.tmp")):
                    os.killpg(worker.pid, signal.SIGKILL)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        engine = DaskEngine(scheduler=address, chunk_mb=0.2, timeout=2)
        start = time.monotonic()
        try:
            with pytest.raises(SpacyHSError, match="has had no worker for 2 s"):
                preprocess(source, out_dir / "corpus.tok.txt", engine=engine, progress=False)
        finally:
            killer.join()
        assert worker.poll() is not None  # it was killed, and the run did not wait for ever
        assert time.monotonic() - start < TIMEOUT
        assert list(out_dir.iterdir()) == []
    finally:
        _stop([worker, scheduler])
