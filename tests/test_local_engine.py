"""spacy_hs.corpus.local_engine: worker processes and the progress bar."""

from __future__ import annotations

from pathlib import Path

from spacy_hs.corpus.preprocess import preprocess


def test_worker_processes_give_the_same_output(tmp_path: Path, lee_txt: Path) -> None:
    single, multi = tmp_path / "single.txt", tmp_path / "multi.txt"
    kwargs = dict(heldout_fraction=0.2, batch_size=10, progress=False)
    a = preprocess(lee_txt, single, heldout=tmp_path / "h1.txt", **kwargs)
    b = preprocess(lee_txt, multi, heldout=tmp_path / "h2.txt", n_process=2, **kwargs)
    assert single.read_text() == multi.read_text()
    assert (tmp_path / "h1.txt").read_text() == (tmp_path / "h2.txt").read_text()
    for key in ("documents", "sentences", "tokens", "types"):
        assert a.meta["stats"][key] == b.meta["stats"][key]


def test_progress_bar_reports_tokens_per_second(tmp_path: Path, lee_txt: Path, capsys) -> None:
    preprocess(lee_txt, tmp_path / "out.txt", progress=True)
    assert "tokens/s" in capsys.readouterr().err
