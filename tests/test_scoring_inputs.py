"""spacy_hs.scoring.inputs: documents from JSON Lines and plain text, in bounded chunks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from spacy_hs.errors import InputError
from spacy_hs.scoring.inputs import InputSpec, check_inputs, chunks, read_documents


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_formats_ids_and_order(tmp_path: Path) -> None:
    first = _jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": "One."}, {"text": "Two."}])
    plain = tmp_path / "b.txt.gz"
    plain.write_bytes(gzip.compress(b"\n\nThree,\nover two lines.\n  \n\nFour.\r\n"))
    (tmp_path / "c.jsonl").write_text('{"body": "Five.", "key": 9}\r\n\n', encoding="utf-8-sig")
    documents = list(read_documents([first, plain], InputSpec()))
    assert documents == [("x", "One."), (1, "Two."), (2, "Three,\nover two lines."), (3, "Four.")]
    spec = InputSpec(text_field="body", id_field="key")
    assert list(read_documents([tmp_path / "c.jsonl"], spec)) == [(9, "Five.")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"text": "fine"}\n{"text": "cut\n', r"Line 2 of .*bad.jsonl is not valid JSON"),
        (b'{"text": "fine"}\n\n{"body": "x"}\n', r"Line 3 of .*bad.jsonl has no 'text' string"),
        (b'{"text": "fine"}\n[1, 2]\n', r"Line 2 .*a JSON list, not an object"),
        (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', r"Line 2 of .*bad.jsonl is not valid UTF-8"),
    ],
    ids=["json", "field", "not-an-object", "utf8"],
)
def test_bad_lines_are_named_or_skipped(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content + b'{"text": "after"}\n')
    with pytest.raises(InputError, match=message):
        list(read_documents([path], InputSpec()))
    spec = InputSpec(skip_bad=True)
    # The bad line keeps its index: the ids of the documents after it do not shift.
    assert list(read_documents([path], spec)) == [(0, "fine"), (2, "after")]
    assert spec.bad.count == 1 and str(path) in spec.bad.first


def test_bad_utf8_in_plain_text_skips_its_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"One.\n\nTw\xff\nstill two.\n\nThree.\n")
    with pytest.raises(InputError, match=r"\[E904\] Line 3 of .*bad.txt is not valid UTF-8"):
        list(read_documents([path], InputSpec()))
    spec = InputSpec(skip_bad=True)
    assert list(read_documents([path], spec)) == [(0, "One."), (2, "Three.")]


def test_missing_and_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\[E905\] Input .*missing.jsonl does not exist"):
        check_inputs([tmp_path / "missing.jsonl"])
    with pytest.raises(InputError, match="is a directory"):
        check_inputs([tmp_path])
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(b"Some text.\n" * 1000)[:-20])
    with pytest.raises(InputError, match=r"\[E906\] Cannot read input .*broken.txt.gz"):
        list(read_documents([broken], InputSpec()))


def test_chunks_are_bounded_and_cover_every_document() -> None:
    documents = [(i, "x" * (i % 7 + 1)) for i in range(1000)]
    cut = list(chunks(iter(documents), max_chars=50, max_documents=10))
    assert [c.number for c in cut] == list(range(len(cut)))
    assert [d for c in cut for d in zip(c.ids, c.texts)] == documents
    for chunk in cut:
        assert len(chunk.texts) <= 10 and sum(map(len, chunk.texts)) - len(chunk.texts[-1]) < 50
        assert chunk.ids[0] == chunk.start and chunk.last == chunk.ids[-1]
    assert cut == list(chunks(iter(documents), max_chars=50, max_documents=10))
