"""spacy_hs.corpus.inputs: every kind of input file, and what reading repairs."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest
from conftest import lines_of

from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.errors import SpacyHSError


def test_every_input_kind_gives_the_same_tokens(tmp_path: Path, lee_lines: list[str]) -> None:
    text = "\n".join(lee_lines) + "\n"
    first, second = "\n".join(lee_lines[:30]) + "\n", "\n".join(lee_lines[30:]) + "\n"
    plain = tmp_path / "plain.txt"
    plain.write_text(text)
    gz = tmp_path / "in.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    bz = tmp_path / "in.txt.bz2"
    bz.write_bytes(bz2.compress(text.encode()))
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(lee_lines))
    )
    jsonl_gz = tmp_path / "in.jsonl.gz"
    jsonl_gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    # A directory: read recursively in sorted order; hidden and non-text files are skipped.
    directory = tmp_path / "dir"
    (directory / "b").mkdir(parents=True)
    (directory / "a.txt").write_text(first)
    (directory / "b" / "c.txt.gz").write_bytes(gzip.compress(second.encode()))
    (directory / ".hidden.txt").write_text("Zyxhidden text must not be read.\n")
    (directory / "notes.md").write_text("Zyxmarkdown must not be read.\n")

    outputs = {}
    for name, inputs in [
        ("plain", plain),
        ("gz", gz),
        ("bz2", bz),
        ("jsonl", jsonl),
        ("jsonl_gz", jsonl_gz),
        ("two files", [directory / "a.txt", directory / "b" / "c.txt.gz"]),
    ]:
        out = tmp_path / f"{name}.tok"
        result = preprocess(inputs, out, progress=False)
        assert result.meta["stats"]["documents"] == len(lee_lines)
        outputs[name] = out.read_text()
    with pytest.warns(UserWarning, match=r"Skipped 1 file\(s\).*notes.md"):
        preprocess(directory, tmp_path / "dir.tok", progress=False)
    outputs["dir"] = (tmp_path / "dir.tok").read_text()
    assert len(set(outputs.values())) == 1, {k: len(v) for k, v in outputs.items()}
    assert "zyx" not in outputs["dir"]


def test_jsonl_line_without_text_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Fine here."}\n\n{"title": "No text"}\n')
    with pytest.raises(SpacyHSError, match=r"Line 3 of .*in.jsonl has no \"text\".*title"):
        preprocess(source, tmp_path / "out.txt", progress=False)
    source.write_text('{"text": "Fine here."}\n{"text": 3}\nnot json\n')
    with pytest.raises(SpacyHSError, match=r"Line 2 .* text of type int"):
        preprocess(source, tmp_path / "out.txt", progress=False)
    source.write_text('{"text": "Fine here."}\nnot json\n')
    with pytest.raises(SpacyHSError, match=r"Line 2 of .* is not valid JSON"):
        preprocess(source, tmp_path / "out.txt", progress=False)
    assert not (tmp_path / "out.txt").exists()


def test_long_lines_are_split_not_fatal(tmp_path: Path, lee_lines: list[str]) -> None:
    one_line = " ".join(lee_lines)  # ~70,000 characters in one line
    source = tmp_path / "long.txt"
    source.write_text("Short first line.\n" + one_line + "\n" + "x" * 2500 + "\nLast line.\n")
    normal, split = tmp_path / "normal.txt", tmp_path / "split.txt"
    preprocess(source, normal, progress=False)
    with pytest.warns(UserWarning, match=r"2 line\(s\) were longer than max_length=1000"):
        result = preprocess(source, split, max_length=1000, progress=False)
    assert result.meta["stats"]["split_lines"] == 2
    assert result.meta["stats"]["documents"] == 4
    # Cuts fall at whitespace, so the token stream is unchanged; only sentence ends may move.
    # The 2,500-character word has no whitespace and is cut mid-word into pieces of 1,000.
    normal_words, split_words = normal.read_text().split(), split.read_text().split()
    assert split_words[-5:] == ["x" * 1000, "x" * 1000, "x" * 500, "last", "line"]
    assert normal_words[:-3] == split_words[:-5] and normal_words[-3] == "x" * 2500
    # A JSONL record is split the same way.
    jsonl = tmp_path / "long.jsonl"
    jsonl.write_text(json.dumps({"text": one_line}) + "\n")
    with pytest.warns(UserWarning, match="longer than max_length"):
        preprocess(jsonl, tmp_path / "j.txt", max_length=1000, progress=False)
    assert (tmp_path / "j.txt").read_text().split() == split_words[3:-5]


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path: Path) -> None:
    latin1 = "Café au lait. Très bien, merci.\nPlain ASCII line.\n".encode("latin-1")
    (tmp_path / "a.txt").write_bytes(latin1)
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(latin1))
    for name in ("a.txt", "b.txt.gz"):
        out = tmp_path / f"{name}.tok"
        with pytest.warns(UserWarning, match=r"2 byte\(s\) were not valid UTF-8.*iconv"):
            result = preprocess(tmp_path / name, out, progress=False)
        assert result.meta["stats"]["replaced_bytes"] == 2
        assert lines_of(out)[0] == "caf \ufffd au lait"
        assert lines_of(out)[-1] == "plain ascii line"
