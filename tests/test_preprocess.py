"""spacy_hs.corpus.preprocess and `spacy-hs preprocess`, on real text (Lee, Penn Treebank)."""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
import spacy
import srsly
import treebank
from conftest import TRICKY, run_cli

from spacy_hs.corpus.normalize import NormalizerSettings, TokenNormalizer
from spacy_hs.corpus.preprocess import (
    preprocess,
)
from spacy_hs.corpus.tokenfile import meta_path, read_meta
from spacy_hs.errors import InputNotFoundError, SpacyHSError


@pytest.fixture(scope="module")
def lee_lines(lee_path: Path) -> list[str]:
    return [line.strip() for line in lee_path.read_text(encoding="utf-8").splitlines()][:60]


@pytest.fixture()
def lee_txt(tmp_path: Path, lee_lines: list[str]) -> Path:
    path = tmp_path / "lee.txt"
    path.write_text("\n".join(lee_lines + TRICKY) + "\n", encoding="utf-8")
    return path


def reference(lines: list[str], settings: dict) -> list[str]:
    """The token-file lines the slow, obvious way: spaCy's sentencizer + TokenNormalizer.words."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    normalizer = TokenNormalizer(settings)
    out = []
    for doc in nlp.pipe(line for line in lines if line.strip()):
        for sent in doc.sents:
            if words := normalizer.words(sent):
                out.append(" ".join(words))
    return out


def lines_of(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return text.splitlines()


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"lowercase": False, "punct": "keep", "numbers": "keep", "urls": "keep"},
        {"punct": "placeholder", "numbers": "drop", "urls": "drop", "stopwords": "drop"},
    ],
)
def test_output_equals_sentencizer_and_normalizer(
    tmp_path: Path, lee_txt: Path, settings: dict
) -> None:
    # The vectorised sentence rule and the orth-id cache must give exactly what spaCy's
    # sentencizer and the component's TokenNormalizer give token by token.
    out = tmp_path / "out.txt"
    preprocess(lee_txt, out, normalizer=settings, batch_size=7, progress=False)
    expected = reference(lee_txt.read_text(encoding="utf-8").splitlines(), settings)
    assert lines_of(out) == expected
    assert len(expected) > 100


def test_each_normalizer_option_changes_the_output(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text(
        "The Reserve Bank raised rates by 25 points, see https://www.rba.gov.au today.\n"
    )

    def words(**settings) -> list[str]:
        out = tmp_path / "out.txt"
        preprocess(source, out, normalizer=settings, progress=False)
        return out.read_text().split()

    default = words()
    assert default == "the reserve bank raised rates by <num> points see <url> today".split()
    assert "Reserve" in words(lowercase=False)
    assert "," in words(punct="keep") and "." in words(punct="keep")
    assert words(punct="placeholder").count("<punct>") == 2
    assert "25" in words(numbers="keep") and "<num>" not in words(numbers="drop")
    assert "https://www.rba.gov.au" in words(urls="keep")
    assert "<url>" not in words(urls="drop")
    assert "the" not in words(stopwords="drop") and "by" not in words(stopwords="drop")


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


def test_pretokenized_penn_treebank_keeps_tokens_and_lines(tmp_path: Path) -> None:
    lines = treebank.penn["valid"].splitlines()[:300]
    source = tmp_path / "ptb.valid.txt"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ptb.tok.txt"
    keep_all = {"lowercase": False, "punct": "keep", "numbers": "keep", "urls": "keep"}
    result = preprocess(source, out, pretokenized=True, normalizer=keep_all, progress=False)
    # Tokens are the whitespace-separated input (no spaCy tokenization, e.g. "<unk>" and "'s"
    # stay whole), one sentence per input line, no sentence splitting.
    expected = [" ".join(line.split()) for line in lines if line.split()]
    assert lines_of(out) == expected
    assert result.meta["pretokenized"] is True
    assert result.meta["stats"]["sentences"] == len(expected)
    # Normalisation still applies: "N" (PTB's number) is lowercased, "$" dropped as punctuation.
    preprocess(source, out, pretokenized=True, normalizer={"punct": "drop"}, progress=False)
    normalised = out.read_text().split()
    assert "n" in normalised and "N" not in normalised and "<unk>" in normalised


def test_heldout_split_is_deterministic_disjoint_and_complete(tmp_path: Path, lee_path: Path):
    full = tmp_path / "full.txt"
    preprocess(lee_path, full, progress=False)
    runs = []
    for run, (batch_size, seed) in enumerate([(1000, 0), (13, 0), (1000, 1)]):
        train, held = tmp_path / f"train{run}.txt", tmp_path / f"held{run}.txt"
        result = preprocess(
            lee_path,
            train,
            heldout=held,
            heldout_fraction=0.1,
            heldout_seed=seed,
            batch_size=batch_size,
            progress=False,
        )
        runs.append((lines_of(train), lines_of(held)))
        assert result.heldout_meta is not None and read_meta(held) == result.heldout_meta
        assert result.heldout_meta["split"]["role"] == "heldout"
        assert result.heldout_meta["stats"]["sentences"] == len(runs[-1][1])
        assert result.meta["stats"]["sentences"] == len(runs[-1][0])
    train, held = runs[0]
    assert runs[1] == runs[0]  # independent of batching
    assert runs[2] != runs[0]  # another seed, another split
    assert not set(train) & set(held)  # disjoint: a repeated sentence stays on one side
    assert Counter(train) + Counter(held) == Counter(lines_of(full))  # nothing lost
    assert 0.06 < len(held) / (len(train) + len(held)) < 0.14


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


def test_min_sentence_length(tmp_path: Path, lee_txt: Path) -> None:
    out = tmp_path / "out.txt"
    preprocess(lee_txt, out, progress=False)
    all_sentences = len(lines_of(out))
    result = preprocess(lee_txt, out, min_sentence_length=12, progress=False)
    lengths = [len(line.split()) for line in lines_of(out)]
    assert min(lengths) >= 12
    assert result.meta["stats"]["sentences"] == len(lengths) < all_sentences


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


# -- document markers ---------------------------------------------------------------------------


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
