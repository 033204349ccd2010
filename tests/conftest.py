"""Shared fixtures: small gensim models trained on real text (gensim's Lee news corpus)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import gensim
import numpy as np
import pytest
import spacy
from gensim.models import Word2Vec

from spacy_hs import HSModel

TEST_DATA = Path(gensim.__file__).parent / "test" / "test_data"
LEE = TEST_DATA / "lee_background.cor"

# Lines that exercise the sentence rule's corners: leading and repeated sentence-final marks,
# quotes and brackets after a period, whitespace tokens, a line of punctuation only.
TRICKY = [
    '! Hello there. "Quoted." Next one?! Yes... ok',
    "A.B. c. d",
    "Hi!!  \t Next. ) ( start here",
    ". . .",
    "Visit https://spacy.io or www.example.com, call 555-0100 at 10:30 on 3 May 2021.",
]


def train_lee(**params) -> Word2Vec:
    """A small HS Word2Vec on the Lee corpus, deterministic (one worker, fixed seed)."""
    settings = dict(
        corpus_file=str(LEE), vector_size=32, window=4, min_count=3, epochs=3, workers=1, seed=7
    )
    settings.update(params)
    return Word2Vec(**settings)


@pytest.fixture(scope="session")
def lee_path() -> Path:
    return LEE


@pytest.fixture(scope="session")
def lee_tokens() -> list[str]:
    return LEE.read_text(encoding="utf8").split()


def random_contexts(model: HSModel, tokens: list[str], n: int, seed: int) -> list[list[str]]:
    """Half uniformly random words (1-6 of them), half real 4-word windows of the corpus."""
    rng = np.random.default_rng(seed)
    contexts = []
    for _ in range(n // 2):
        contexts.append([model.words[i] for i in rng.integers(0, len(model), rng.integers(1, 7))])
    for start in rng.integers(0, len(tokens) - 4, n - n // 2):
        context = tokens[start : start + 4]
        if model.word_ids(context):
            contexts.append(context)
    return contexts


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


@pytest.fixture(scope="session")
def cbow_gensim() -> Word2Vec:
    return train_lee(sg=0, hs=1, negative=0)


@pytest.fixture(scope="session")
def sg_gensim() -> Word2Vec:
    return train_lee(sg=1, hs=1, negative=0, cbow_mean=1)


@pytest.fixture(scope="session")
def hs_model(cbow_gensim: Word2Vec) -> HSModel:
    return HSModel.from_gensim(cbow_gensim)


@pytest.fixture(scope="session")
def normalized_token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lee corpus as `spacy-hs preprocess` would write it (spaCy tokens, lowercased,
    punctuation dropped, numbers as <num>): one sentence per line."""
    import spacy

    from spacy_hs.corpus.normalize import TokenNormalizer

    normalizer = TokenNormalizer()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    lines = []
    for doc in nlp.pipe(LEE.read_text(encoding="utf8").splitlines()):
        for sentence in doc.sents:
            words = normalizer.words(sentence)
            if words:
                lines.append(" ".join(words))
    token_file = tmp_path_factory.mktemp("normalized") / "lee.tok.txt"
    token_file.write_text("\n".join(lines) + "\n", encoding="utf8")
    return token_file


@pytest.fixture(scope="session")
def normalized_model(normalized_token_file: Path) -> HSModel:
    """An HS model trained on ``normalized_token_file``, with the normaliser settings and
    language stored in ``model.settings``."""
    from spacy_hs.corpus.normalize import NormalizerSettings

    gensim_model = train_lee(sg=0, hs=1, negative=0, corpus_file=str(normalized_token_file))
    return HSModel.from_gensim(
        gensim_model, settings={"normalizer": NormalizerSettings().to_dict(), "lang": "en"}
    )


def _saved(model: HSModel, factory: pytest.TempPathFactory, name: str) -> Path:
    path = factory.mktemp("models") / name
    model.to_disk(path)
    return path


@pytest.fixture(scope="session")
def model_dir(hs_model: HSModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hs_model`` saved (a model directory)."""
    return _saved(hs_model, tmp_path_factory, "lee_cbow")


@pytest.fixture(scope="module")
def nlp(model_dir: Path) -> spacy.Language:
    """A blank English pipeline with a sentencizer and an ``hs_predictor`` of ``model_dir``."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("hs_predictor", config={"model_path": str(model_dir)})
    return nlp


@pytest.fixture(scope="session")
def normalized_model_dir(
    normalized_model: HSModel, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``normalized_model`` saved (a model directory)."""
    return _saved(normalized_model, tmp_path_factory, "hs_model")


# -- the command line ----------------------------------------------------------------------

# Rich and wasabi wrap at the terminal width (80 columns when there is no terminal), and the
# wrap point moves with the length of pytest's temporary paths: run wide, and match text with
# whitespace and panel borders normalised.
_CLI_ENV = {"COLUMNS": "4000", "TERMINAL_WIDTH": "4000", "NO_COLOR": "1"}
_BORDERS = re.compile("[\u2500-\u257f]")


class CliRun:
    """A ``spacy-hs`` run in-process: exit code, exception, the raw output and ``output`` with
    line wrapping and box drawing undone (words separated by single spaces)."""

    def __init__(self, args: Sequence[object], stdin: bytes | str | None = None):
        from typer.testing import CliRunner

        from spacy_hs.cli import app

        result = CliRunner(env=_CLI_ENV).invoke(app, [str(a) for a in args], input=stdin)
        self.exit_code = result.exit_code
        self.exception = result.exception
        self.raw = result.output
        self.output = " ".join(_BORDERS.sub(" ", result.output).split())


def run_cli(*args: object, stdin: bytes | str | None = None) -> CliRun:
    """Run ``spacy-hs ARGS...`` (with ``stdin`` as its standard input); see ``CliRun``."""
    return CliRun(args, stdin)


@pytest.fixture(scope="session")
def directional_model(normalized_model: HSModel, normalized_token_file: Path) -> HSModel:
    """A copy of ``normalized_model`` with a directional head trained briefly on the same text,
    deterministically."""
    from spacy_hs.training.head import attach_head, train_head

    model = HSModel.from_bytes(normalized_model.to_bytes())
    # One thread: Hogwild threads interleave their updates as the OS schedules them, so two
    # threads would give weights that differ in the last bits from run to run.
    head = train_head(
        model,
        normalized_token_file,
        epochs=2,
        context_size=3,
        workers=1,
        ngram_orders=0,
        progress=False,
    )
    attach_head(model, head, export_fine_tuned_vectors=False)
    return model


@contextmanager
def mounted_tmpfs(directory: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory`` (created) for the block, to fill or make
    read-only; skips the test where mounting is not allowed (it needs root). Always
    unmounted."""
    directory.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only file system (a tmpfs remounted ``ro``, holding ``old.txt``),
    where even root cannot write."""
    with mounted_tmpfs(tmp_path / "read_only") as directory:
        (directory / "old.txt").write_text("an earlier output\n")
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        yield directory


@pytest.fixture(scope="module")
def lee_lines(lee_path: Path) -> list[str]:
    return [line.strip() for line in lee_path.read_text(encoding="utf-8").splitlines()][:60]


@pytest.fixture()
def lee_txt(tmp_path: Path, lee_lines: list[str]) -> Path:
    path = tmp_path / "lee.txt"
    path.write_text("\n".join(lee_lines + TRICKY) + "\n", encoding="utf-8")
    return path


def lines_of(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return text.splitlines()


@pytest.fixture(scope="session")
def headed(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    """An HS model of the Lee corpus with a directional head trained briefly on it."""
    from head_oracles import HEAD_TRAINING

    from spacy_hs.training.head import attach_head, train_head

    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(model, lee_path, None, context_size=3, ngram_orders=0, **HEAD_TRAINING)
    attach_head(model, head, export_fine_tuned_vectors=False)
    assert head is model.trained_head and head.name == "directional"
    return model


@pytest.fixture(scope="session")
def ngram_headed(cbow_gensim: Word2Vec, lee_path: Path) -> HSModel:
    """The same with an n-gram head (orders 1-3, a small table)."""
    from head_oracles import HEAD_TRAINING, NGRAM

    from spacy_hs.heads.ngram import NgramHead
    from spacy_hs.training.head import attach_head, train_head

    model = HSModel.from_gensim(cbow_gensim)
    head = train_head(model, lee_path, None, context_size=3, **HEAD_TRAINING, **NGRAM)
    attach_head(model, head, export_fine_tuned_vectors=False)
    assert isinstance(model.trained_head, NgramHead) and model.trained_head.name == "ngram"
    return model


@pytest.fixture(scope="session", params=["directional", "ngram"])
def any_headed(request: pytest.FixtureRequest) -> HSModel:
    """Each trained head in turn."""
    return request.getfixturevalue("headed" if request.param == "directional" else "ngram_headed")


# -- scoring corpora ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scoring_pipeline_dir(
    normalized_model: HSModel, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A pipeline directory (as `spacy-hs assemble` writes) around ``normalized_model``."""
    from spacy_hs.pipeline.package import build_pipeline

    path = tmp_path_factory.mktemp("pipelines") / "lee_pipeline"
    build_pipeline(normalized_model, "en").to_disk(path)
    return path


@pytest.fixture(scope="session")
def heldout_documents() -> list[str]:
    """Held-out text for scoring: Penn Treebank's validation set (73k words, unseen by the Lee
    models), as documents of 8 sentences each."""
    import treebank

    lines = [line.strip() for line in treebank.penn["valid"].splitlines() if line.strip()]
    return [" ".join(lines[i : i + 8]) for i in range(0, len(lines), 8)]


# -- the spaCy project workflow, on small settings ---------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# `spacy project run all` in seconds: a few Wikipedia articles, small vectors, short training.
SMALL_VARS = {"max_articles": 8, "epochs": 2, "vector_size": 24, "head_epochs": 1}


def run_project(project_dir: Path, *args: str, small: bool = True):
    """``python -m spacy project run ARGS... PROJECT_DIR`` on ``SMALL_VARS``, with this
    environment's ``spacy-hs`` first on the PATH."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    overrides = [f"--vars.{key}={value}" for key, value in SMALL_VARS.items()] if small else []
    cmd = [sys.executable, "-m", "spacy", "project", "run", *args, str(project_dir), *overrides]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project after ``spacy project run all`` on ``SMALL_VARS``: corpus, model,
    metrics, pipeline, wheel and view. Tests that change it work on a copy of their own."""
    import shutil

    project_dir = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", project_dir)
    shutil.copytree(ROOT / "configs", project_dir / "configs")
    shutil.copytree(ROOT / "assets", project_dir / "assets")
    result = run_project(project_dir, "all")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project_dir
