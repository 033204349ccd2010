"""spacy_hs.corpus.preprocess and `spacy-hs preprocess`: meta, options, paths, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import srsly
from conftest import lines_of, run_cli

from spacy_hs.corpus.normalize import NormalizerSettings
from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.corpus.tokenfile import meta_path, read_meta
from spacy_hs.errors import InputNotFoundError, SpacyHSError


def test_meta_and_stats_describe_the_file(tmp_path: Path, lee_txt: Path) -> None:
    out = tmp_path / "corpus.tok.txt"
    settings = NormalizerSettings(numbers="keep")
    result = preprocess(lee_txt, out, lang="en", normalizer=settings, progress=False)
    meta = srsly.read_json(meta_path(out))
    assert meta == result.meta == read_meta(out)
    assert meta["lang"] == "en" and meta["pretokenized"] is False
    assert NormalizerSettings.from_dict(meta["normalizer"]) == settings
    lines = lines_of(out)
    words = [w for line in lines for w in line.split(" ")]
    stats = meta["stats"]
    assert stats["sentences"] == len(lines)
    assert stats["tokens"] == len(words) and "" not in words  # single spaces, no empty tokens
    assert stats["types"] == len(set(words))
    assert stats["documents"] == len(lee_txt.read_text().splitlines()) - 1  # ". . ." is empty
    assert stats["replaced_bytes"] == 0 and stats["split_lines"] == 0 and stats["seconds"] > 0
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left


def test_empty_corpus_is_an_error_and_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "punct.txt"
    source.write_text("!!! ... ???\n\n   \n-- ; --\n")
    out = tmp_path / "out.txt"
    with pytest.raises(SpacyHSError, match=r"corpus is empty.*2 document\(s\).*--punct"):
        preprocess(source, out, progress=False)
    assert not out.exists() and not meta_path(out).exists()
    # An earlier token file at the output path survives the failed run untouched.
    out.write_text("earlier output\n")
    with pytest.raises(SpacyHSError):
        preprocess(source, out, progress=False)
    assert out.read_text() == "earlier output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "punct.txt"]
    # Filters can empty a corpus too; so can a held-out split that receives nothing.
    source.write_text("The the the.\n")
    with pytest.raises(SpacyHSError, match="corpus is empty"):
        preprocess(source, tmp_path / "o.txt", normalizer={"stopwords": "drop"}, progress=False)
    with pytest.raises(SpacyHSError, match="held-out split is empty"):
        preprocess(source, tmp_path / "o.txt", heldout=tmp_path / "h.txt", progress=False)
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "h.txt").exists()


def test_bad_paths_and_options_are_refused(tmp_path: Path, lee_txt: Path) -> None:
    with pytest.raises(InputNotFoundError, match="missing.txt does not exist"):
        preprocess([lee_txt, tmp_path / "missing.txt"], tmp_path / "out.txt", progress=False)
    before = lee_txt.read_bytes()
    with pytest.raises(SpacyHSError, match="it is also an input"):
        preprocess(lee_txt, lee_txt, progress=False)
    with pytest.raises(SpacyHSError, match="also an input"):
        preprocess(lee_txt, tmp_path / "out.txt", heldout=lee_txt, progress=False)
    assert lee_txt.read_bytes() == before
    with pytest.raises(SpacyHSError, match="inside input directory"):
        preprocess(tmp_path, tmp_path / "sub" / "out.txt", progress=False)
    with pytest.raises(SpacyHSError, match="held-out file and the output are both"):
        preprocess(lee_txt, tmp_path / "o.txt", heldout=tmp_path / "o.txt", progress=False)
    with pytest.raises(SpacyHSError, match="is a directory"):
        preprocess(lee_txt, tmp_path, progress=False)
    with pytest.raises(SpacyHSError, match="language 'xx_unknown'"):
        preprocess(lee_txt, tmp_path / "o.txt", lang="xx_unknown", progress=False)
    with pytest.raises(SpacyHSError, match="heldout_fraction must be between 0 and 1"):
        preprocess(lee_txt, tmp_path / "o.txt", heldout=tmp_path / "h.txt", heldout_fraction=1)
    with pytest.raises(SpacyHSError, match="min_sentence_length must be an integer >= 1"):
        preprocess(lee_txt, tmp_path / "o.txt", min_sentence_length=0)
    with pytest.raises(SpacyHSError, match="punct='nope' is not one of"):
        preprocess(lee_txt, tmp_path / "o.txt", normalizer={"punct": "nope"})
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(SpacyHSError, match="holds no text files"):
        preprocess(empty_dir, tmp_path / "o.txt")
    assert not (tmp_path / "o.txt").exists()


def test_cli_preprocess(tmp_path: Path, lee_txt: Path) -> None:
    out, held = tmp_path / "corpus.tok.txt", tmp_path / "heldout.tok.txt"
    args = ["preprocess", str(lee_txt), str(out), "--no-lowercase", "--punct", "placeholder"]
    args += ["--stopwords", "drop", "--heldout", str(held), "--heldout-fraction", "0.2"]
    result = run_cli(*args, "--min-sentence-length", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "documents" in result.output and "types" in result.output
    meta = read_meta(out)
    assert meta["normalizer"] == {
        "lowercase": False,
        "punct": "placeholder",
        "numbers": "placeholder",
        "urls": "placeholder",
        "stopwords": "drop",
        "numbers_rule": "digits",
    }
    assert meta["min_sentence_length"] == 2 and read_meta(held)["split"]["role"] == "heldout"
    assert "<punct>" in out.read_text() and " the " not in out.read_text()
    # User errors: a message with the fix, exit code 1, no traceback.
    result = run_cli("preprocess", str(tmp_path / "nope.txt"), str(out))
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "Traceback" not in result.output and result.exception is not None
    result = run_cli("preprocess", str(lee_txt), str(out), "--punct", "maybe")
    assert result.exit_code == 2  # typer rejects the choice before any work
    empty = tmp_path / "empty.txt"
    empty.write_text("...\n")
    result = run_cli("preprocess", str(empty), str(tmp_path / "e.txt"))
    assert result.exit_code == 1 and "corpus is empty" in result.output
