"""The spaCy project workflow, run end to end in a temporary copy with small settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import srsly
from conftest import run_project


@pytest.fixture(scope="module")
def project(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's built project, copied: the tests here run it again."""
    project_dir = tmp_path_factory.mktemp("project_copy") / "project"
    shutil.copytree(built_project, project_dir, symlinks=True)
    return project_dir


def test_run_all_produces_model_metrics_pipeline_and_wheel(project: Path) -> None:
    assert (project / "corpus" / "train.txt").stat().st_size > 0
    assert (project / "corpus" / "heldout.txt").stat().st_size > 0
    assert (project / "training" / "hs_model" / "meta.json").exists()
    metrics = srsly.read_json(project / "metrics" / "metrics.json")
    assert metrics["next_word"]
    assert list((project / "metrics").glob("*.png"))
    assert (project / "pipelines" / "hs_pipeline" / "config.cfg").exists()
    wheels = list((project / "packages").rglob("en_hs_default-0.1.0-*.whl"))
    assert len(wheels) == 1
    view = (project / "metrics" / "view.html").read_text(encoding="utf8")
    assert view.count('class="hs-doc"') == 4 and 'data-status="scored"' in view


def test_pipeline_from_workflow_predicts(project: Path) -> None:
    import spacy

    nlp = spacy.load(project / "pipelines" / "hs_pipeline")
    doc = nlp("The government said that the")
    assert doc._.hs_next and all(0 < p <= 1 for _, p in doc._.hs_next)
    assert doc._.hs_perplexity is None or doc._.hs_perplexity > 1


def test_second_run_skips_finished_steps(project: Path) -> None:
    result = run_project(project, "all")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("corpus", "preprocess", "train", "evaluate", "assemble", "package", "render"):
        assert f"Skipping '{step}'" in result.stdout, result.stdout[-3000:]
