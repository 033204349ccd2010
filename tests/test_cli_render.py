"""`spacy-hs render` and the library functions behind it (spacy_hs.view.documents)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import spacy
import typer.main
from typer.testing import CliRunner

from spacy_hs import HSModel
from spacy_hs.cli import app
from spacy_hs.pipeline.package import build_pipeline
from spacy_hs.view.documents import token_lines_to_docs, write_page

runner = CliRunner()
TEXT = "Hundreds of people have been forced to vacate their homes. The fires spread."


class Run:
    """A CLI run: exit code, and the output with wasabi's line wrapping undone."""

    def __init__(self, *args: object, input: str | None = None):  # noqa: A002
        result = runner.invoke(app, [str(a) for a in args], input=input)
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


@pytest.fixture(scope="module")
def pipeline_dir(normalized_model: HSModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipelines") / "hs_pipeline"
    build_pipeline(normalized_model).to_disk(path)
    return path


def token_count(path: Path) -> int:
    return path.read_text(encoding="utf8").count('<span class="hs-token')


def test_every_option_has_help() -> None:
    command = typer.main.get_command(app).commands["render"]
    assert command.help
    for param in command.params:
        assert getattr(param, "help", None), f"render {param.name} has no help"
    assert Run("render", "--help").exit_code == 0


def test_render_a_file_one_document_per_line(pipeline_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text(f"{TEXT}\n\nThe president of the united states.\n", encoding="utf8")
    output = tmp_path / "out" / "view.html"
    result = Run("render", pipeline_dir, source, "--output", output, "--top-k", 3)
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf8")
    assert html.startswith("<!DOCTYPE html>") and html.count('class="hs-doc"') == 2
    nlp = spacy.load(pipeline_dir)
    assert token_count(output) == len(nlp(TEXT)) + len(nlp("The president of the united states."))
    assert f"Wrote {output}: 2 document(s)" in result.output
    top = re.search(r'"top":\[0,\[([^\]]*)\]', html)  # first token has no prediction
    assert top and len(top.group(1).split(",")) == 2 * 3  # 3 word ids, 3 probabilities
    assert not list(output.parent.glob(".*.tmp"))  # written atomically, nothing left over


def test_render_text_stdin_style_and_max_docs(pipeline_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "text.html"
    result = Run("render", pipeline_dir, "--text", TEXT, "-o", output, "--style", "surprisal")
    assert result.exit_code == 0, result.output
    assert 'data-mode="surprisal"' in output.read_text(encoding="utf8")
    output = tmp_path / "stdin.html"
    lines = "\n".join(["First line here.", "Second line.", "Third."])
    result = Run("render", pipeline_dir, "-", "-o", output, "--max-docs", 2, input=lines)
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf8").count('class="hs-doc"') == 2


def test_render_pretokenized_lines_are_sentences(
    pipeline_dir: Path, normalized_token_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "heldout.html"
    result = Run(
        "render",
        pipeline_dir,
        normalized_token_file,
        "-o",
        output,
        "--pretokenized",
        "--sentences-per-doc",
        3,
        "--max-docs",
        2,
    )
    assert result.exit_code == 0, result.output
    lines = normalized_token_file.read_text(encoding="utf8").splitlines()[:6]
    html = output.read_text(encoding="utf8")
    assert html.count('class="hs-doc"') == 2
    assert token_count(output) == sum(len(line.split()) for line in lines)
    # Each line is a sentence: the CBOW head cannot score a line's first known word, and the
    # sentencizer did not merge or split the lines.
    nlp = spacy.load(pipeline_dir)
    docs = token_lines_to_docs(nlp, lines, sentences_per_doc=3)
    assert [len(list(doc.sents)) for doc in docs] == [3, 3]
    assert [[t.text for t in s] for doc in docs for s in doc.sents] == [x.split() for x in lines]
    assert "<num>" not in html and "&lt;num&gt;" in html  # the placeholder, escaped


def test_render_errors_name_the_fix(pipeline_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "view.html"
    no_predictor = tmp_path / "blank_pipeline"
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(no_predictor)
    cases = [
        (("render", no_predictor, "--text", TEXT, "-o", output), "spacy-hs assemble"),
        (("render", pipeline_dir, "-o", output), "give INPUT"),
        (("render", pipeline_dir, "x.txt", "--text", "x", "-o", output), "not both"),
        (("render", pipeline_dir, tmp_path / "missing.txt", "-o", output), "does not exist"),
        (("render", pipeline_dir, "--text", TEXT, "-o", tmp_path), "is a directory"),
        (("render", pipeline_dir, "--text", TEXT, "-o", output, "--style", "x"), "rank"),
        (("render", pipeline_dir, "--text", TEXT, "-o", output, "--sentences-per-doc", 2), "add"),
    ]
    for args, message in cases:
        result = Run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    assert not output.exists()
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Caf\xe9 au lait.".encode("latin1"))
    result = Run("render", pipeline_dir, latin1, "-o", output)
    assert result.exit_code == 1 and "iconv" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf8")
    assert "every line is empty" in Run("render", pipeline_dir, empty, "-o", output).output


def test_render_never_writes_over_its_input(pipeline_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "text.txt"
    source.write_text(TEXT, encoding="utf8")
    result = Run("render", pipeline_dir, source, "-o", source)
    assert result.exit_code == 1 and "[E180]" in result.output, result.output
    assert source.read_text(encoding="utf8") == TEXT


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "target", ["meta.json", "config.cfg", "hs_predictor/model/vectors.npy", "new.html"]
)
def test_render_never_writes_into_a_pipeline(pipeline_dir: Path, target: str) -> None:
    """-o at a pipeline's own files wrote HTML over them (the pipeline no longer loaded)."""
    before = snapshot(pipeline_dir)
    result = Run("render", pipeline_dir, "--text", TEXT, "-o", pipeline_dir / target)
    assert result.exit_code == 1 and "[E181]" in result.output, result.output
    assert snapshot(pipeline_dir) == before


@pytest.mark.parametrize("target", ["meta.json", "vectors.npy", "words.json"])
def test_render_never_writes_into_a_model(
    normalized_model: HSModel, tmp_path: Path, target: str
) -> None:
    model_dir = tmp_path / "model"
    normalized_model.to_disk(model_dir)
    before = snapshot(model_dir)
    result = Run("render", model_dir, "--text", TEXT, "-o", model_dir / target)
    assert result.exit_code == 1 and "[E181]" in result.output, result.output
    assert snapshot(model_dir) == before
    HSModel.from_disk(model_dir)  # still loads


def test_render_a_line_over_max_length(pipeline_dir: Path, tmp_path: Path) -> None:
    """Not spaCy's E088 traceback: an error that says how to split the text."""
    source = tmp_path / "long.txt"
    source.write_text("Short line.\n" + "word " * 250_000 + "\n", encoding="utf8")
    output = tmp_path / "view.html"
    result = Run("render", pipeline_dir, source, "-o", output)
    assert result.exit_code == 1 and "[E741] Document 2 has 1,250,000 characters" in (
        result.output
    ), result.output
    assert not output.exists()


def test_a_page_with_a_lone_surrogate_is_written(tmp_path: Path) -> None:
    """Text decoded with surrogateescape: written with U+FFFD, not UnicodeEncodeError."""
    output = write_page(tmp_path / "view.html", "<p>caf\udce9</p>")
    assert output.read_text(encoding="utf8") == "<p>caf\ufffd</p>"
