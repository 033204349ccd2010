"""spacy_hs.corpus.engine: `write_units`, shared by every engine (document ends between batches)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TRICKY, run_cli

from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.corpus.tokenfile import read_meta


@pytest.mark.parametrize("options", [{}, {"batch_size": 7}, {"n_process": 2, "batch_size": 11}])
def test_document_marker_ends_each_document(lee_path: Path, tmp_path: Path, options) -> None:
    """A blank line after each input document (a line here) with sentences left; the sentences
    are those of the unmarked file, and each document's are its own line's."""
    from spacy_hs.corpus import tokenfile

    lines = lee_path.read_text(encoding="utf8").splitlines()[:40] + ["...", TRICKY[0]]
    source = tmp_path / "docs.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf8")
    plain = preprocess(source, tmp_path / "plain.txt", progress=False, **options)
    marked = preprocess(
        source, tmp_path / "marked.txt", progress=False, document_marker=True, **options
    )
    assert marked.meta["document_marker"] is True and "document_marker" not in plain.meta
    text = (tmp_path / "marked.txt").read_text("utf8")
    assert text.endswith("\n\n") and "\n\n\n" not in text and not text.startswith("\n")
    assert text.replace("\n\n", "\n") == (tmp_path / "plain.txt").read_text("utf8")
    documents = list(tokenfile.documents(tmp_path / "marked.txt"))
    assert len(documents) == len(lines) - 1 == marked.meta["stats"]["documents"]  # "..." has none
    for i in (0, 17, -1):
        alone = tmp_path / "alone.txt"
        alone.write_text(lines[i] + "\n", encoding="utf8")
        preprocess(alone, tmp_path / "alone.tok.txt", progress=False)
        assert list(tokenfile.sentences(tmp_path / "alone.tok.txt")) == documents[i]


def test_document_marker_in_the_heldout_file_and_the_cli(lee_path: Path, tmp_path: Path) -> None:
    from spacy_hs.corpus import tokenfile

    result = run_cli(
        "preprocess", lee_path, tmp_path / "train.txt", "--heldout", tmp_path / "heldout.txt",
        "--heldout-fraction", "0.2", "--doc-marker", "--no-progress",
    )
    assert result.exit_code == 0, result.output
    for name in ("train.txt", "heldout.txt"):
        documents = list(tokenfile.documents(tmp_path / name))
        assert len(documents) == read_meta(tmp_path / name)["stats"]["documents"] > 10
    assert "--doc-marker" in run_cli("preprocess", "--help").output
