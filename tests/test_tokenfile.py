"""spacy_hs.corpus.tokenfile: the token-file format, its one reader, its check and its meta file."""

from __future__ import annotations

from pathlib import Path

import pytest

from spacy_hs.corpus.tokenfile import (
    READ_CHUNK,
    check_token_file,
    format_line,
    meta_path,
    read_meta,
    sentences,
    write_meta,
)


def test_lines_round_trip(tmp_path: Path):
    path = tmp_path / "tokens.txt"
    written = [["the", "united", "states"], ["<num>", "dollars"], ["é"]]
    path.write_text("".join(format_line(s) for s in written) + "\n  \n", encoding="utf8")
    assert path.read_text(encoding="utf8").startswith("the united states\n<num> dollars\n")
    assert list(sentences(path)) == written  # blank lines skipped
    seen: list[int] = []
    assert len(list(sentences(path, on_bytes=seen.append))) == 3
    assert sum(seen) == path.stat().st_size


def test_sentences_name_the_bad_line(tmp_path: Path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"fine line\n" + "caf\u00e9\n".encode("latin1"))
    reader = sentences(path, what="Held-out file")
    assert next(reader) == ["fine", "line"]
    with pytest.raises(ValueError, match=r"Held-out file .* is not UTF-8 \(line 2, byte 13"):
        next(reader)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        next(sentences(tmp_path / "missing.txt"))


def test_meta_round_trip_and_errors(tmp_path: Path):
    token_file = tmp_path / "corpus.tok.txt"
    assert meta_path(token_file) == tmp_path / "corpus.tok.txt.meta.json"
    assert read_meta(token_file) is None
    meta = {"lang": "en", "stats": {"tokens": 3, "seconds": 0.1}}
    assert write_meta(token_file, meta) == meta == read_meta(token_file)
    meta_path(token_file).write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_meta(token_file)
    meta_path(token_file).write_text("{broken")
    with pytest.raises(ValueError, match="Cannot read the corpus metadata"):
        read_meta(token_file)


# -- the corpus check ------------------------------------------------------------------------


def test_check_token_file_counts(lee_path: Path):
    check = check_token_file(lee_path)
    assert check.lines == 300
    assert check.bytes == lee_path.stat().st_size


def test_check_token_file_missing(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist.*spacy-hs preprocess"):
        check_token_file(tmp_path / "nope.txt")


def test_check_token_file_directory(tmp_path: Path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        check_token_file(tmp_path)


def test_check_token_file_compressed(tmp_path: Path):
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match="compressed.*gunzip"):
        check_token_file(path)


@pytest.mark.parametrize("text", ["", "\n\n", "  \n \t \n"])
def test_check_token_file_empty(tmp_path: Path, text: str):
    path = tmp_path / "empty.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match="has no tokens"):
        check_token_file(path)


def test_check_token_file_not_utf8_names_the_line(tmp_path: Path, lee_path: Path):
    lines = lee_path.read_bytes().splitlines(keepends=True)
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"".join(lines[:250]) + "café au lait\n".encode("latin1") + lines[250])
    with pytest.raises(ValueError, match=r"not UTF-8 \(line 251, byte") as err:
        check_token_file(path)
    assert "spacy-hs preprocess" in str(err.value)


def test_check_token_file_character_split_across_blocks(tmp_path: Path):
    """A valid multi-byte character straddling the 1 MB read boundary is not an error; a
    truncated one at the very end is, with its line number."""
    path = tmp_path / "boundary.txt"
    head = b"word " * ((READ_CHUNK - 1) // 5) + b"x" * ((READ_CHUNK - 1) % 5)
    path.write_bytes(head + "é caf\u00e9\nlast line".encode("utf8"))
    assert check_token_file(path).lines == 2
    path.write_bytes(head + "é\nend ".encode() + "é".encode()[:1])
    with pytest.raises(ValueError, match=r"line 2, byte"):
        check_token_file(path)
