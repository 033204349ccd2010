"""The examples of README.md and docs/*.md run as written, and the reference pages are complete.

Every ```python and ```bash block runs, in order, page by page, in a copy of the project after
`spacy project run all` on small settings (built once per session: conftest.built_project), as
a reader would run them after the set-up commands. Python blocks of a page share one namespace.
A block preceded by ``<!-- docs-test: skip REASON -->`` is not run (it needs what a test cannot
have, e.g. a remote Dask scheduler); there are few, and each says why.

Printed values: ``expression  # -> VALUE`` in a Python block is checked against the
expression's value (to the decimals shown), unless the comment says "illustrative". A ```text
block (a command's output) is preceded by ``<!-- docs-test: illustrative -->``.

`spacy project run` commands in examples run with the small settings too
(``WEASEL_CONFIG_OVERRIDES``), except the vars the example sets itself.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import ROOT, SMALL_VARS

import spacy_hs
import spacy_hs.cli

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|illustrative)\b\s*(.*?)\s*-->")
# The README's set-up commands install the package: CI runs the test command (.ci/run reads it
# from the README), and tests/test_project.py the workflow of the main command.
SETUP = {
    "<!-- main-command -->": ("skip", "the set-up command (pip install); tests/test_project.py"),
    "<!-- test-command -->": ("skip", "the set-up command (pip install); CI runs it"),
}
CHECK = re.compile(r"#\s*->\s*(.*?)\s*$")
MAX_SKIPPED = 8


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: tuple[str, str] | None  # ("skip", reason) or ("illustrative", "")

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, each with the docs-test marker just before it."""
    found, lines = [], page.read_text(encoding="utf8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.groups()
        end = i + 1
        while not lines[end].strip().startswith("```"):
            end += 1
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(previous)
        found_marker = marker.groups() if marker else SETUP.get(previous.strip())
        found.append(Block(page, i + 1, lang, "\n".join(body), found_marker))
        i = end + 1
    return found


EXAMPLES = [b for page in PAGES for b in blocks(page) if b.lang in RUN]


# -- the examples run --------------------------------------------------------------------------


def close_enough(actual: Any, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return actual == expected
    if isinstance(expected, (int, float)):
        return math.isclose(float(actual), expected, rel_tol=0, abs_tol=tolerance)
    if isinstance(expected, (list, tuple)):
        actual = list(actual)
        return len(actual) == len(expected) and all(
            close_enough(a, e, tolerance) for a, e in zip(actual, expected)
        )
    if isinstance(expected, dict):
        return set(actual) == set(expected) and all(
            close_enough(actual[k], v, tolerance) for k, v in expected.items()
        )
    return actual == expected


def shown_literal(shown: str) -> tuple[Any, str]:
    """The Python literal a ``# -> `` comment starts with (a remark may follow it), and its text."""
    for end in range(len(shown), 0, -1):
        if end < len(shown) and shown[end] not in " :(":
            continue
        text = shown[:end].rstrip(" :")
        try:
            return ast.literal_eval(text), text
        except (ValueError, SyntaxError):
            continue
    raise AssertionError(f"not a Python literal: {shown}")


def check_value(value: Any, shown: str, where: str) -> None:
    """``value`` printed to the decimals of ``shown`` (a Python literal) is ``shown``."""
    expected, text = shown_literal(shown)
    decimals = max((len(d) for d in re.findall(r"\d\.(\d+)", text)), default=0)
    tolerance = 0.5 * 10**-decimals + 1e-12 if decimals else 1e-12
    assert close_enough(value, expected, tolerance), f"{where}: {value!r}, the page shows {text}"


def run_python(block: Block, namespace: dict[str, Any]) -> None:
    """Statement by statement, as a reader pastes them; ``# -> VALUE`` lines are checked."""
    tree = ast.parse(block.code, filename=str(block))
    lines = block.code.splitlines()
    for statement in tree.body:
        shown = CHECK.search(lines[statement.end_lineno - 1])
        module = ast.Module(body=[statement], type_ignores=[])
        if isinstance(statement, ast.Expr) and shown and "illustrative" not in shown.group(1):
            value = eval(compile(ast.Expression(statement.value), str(block), "eval"), namespace)
            check_value(value, shown.group(1), f"{block} line {statement.lineno}")
        else:
            exec(compile(module, str(block), "exec"), namespace)


def run_shell(block: Block, cwd: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update({"COLUMNS": "80", "OPENBLAS_NUM_THREADS": "1"})
    own = set(re.findall(r"--vars\.(\w+)", block.code))
    env["WEASEL_CONFIG_OVERRIDES"] = " ".join(
        f"--vars.{key}={value}" for key, value in SMALL_VARS.items() if key not in own
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, f"{block}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_examples_of_a_page_run(
    page: Path, built_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = [b for b in EXAMPLES if b.page == page and not (b.marker and b.marker[0] == "skip")]
    if not examples:
        pytest.skip("no examples to run")
    workdir = tmp_path / "project"
    shutil.copytree(built_project, workdir, symlinks=True)
    for folder in ("docs", "bench"):  # examples run docs/screenshot.py and bench scripts
        shutil.copytree(ROOT / folder, workdir / folder, dirs_exist_ok=True)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in examples:
        if RUN[block.lang] == "python":
            run_python(block, namespace)
        else:
            run_shell(block, workdir)


def test_few_examples_are_skipped_and_each_says_why() -> None:
    skipped = [b for b in EXAMPLES if b.marker and b.marker[0] == "skip"]
    assert len(skipped) <= MAX_SKIPPED, [str(b) for b in skipped]
    assert all(b.marker[1] for b in skipped), [str(b) for b in skipped if not b.marker[1]]


def test_every_output_block_is_marked_illustrative() -> None:
    """Command output is shown in ```text blocks, and its figures are illustrative."""
    outputs = [b for page in PAGES for b in blocks(page) if b.lang == "text"]
    unmarked = [str(b) for b in outputs if not (b.marker and b.marker[0] == "illustrative")]
    assert unmarked == []


def test_every_fence_has_a_known_language() -> None:
    """A block is run (python, bash), output (text), or a plain diagram (no language): a typo
    in the language would silently leave an example unrun."""
    langs = {b.lang for page in PAGES for b in blocks(page)}
    assert langs <= {*RUN, "text", "", "ini", "yaml", "html", "json"}, langs


def test_the_setup_commands_are_first_in_the_readme() -> None:
    """.ci/run reads the test command from the line after its marker's fence."""
    lines = (ROOT / "README.md").read_text(encoding="utf8").splitlines()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        index = lines.index(marker)
        assert index < 30 and lines[index + 1] == "```bash"
        assert lines[index + 2].startswith("python -m pip install -e ")
    assert len(lines) <= 250


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, page.name


def test_relative_links_point_to_files() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text("utf8")):
            assert (page.parent / target).exists(), f"{page_id(page)}: {target}"


# -- the reference pages are complete ----------------------------------------------------------


def section(text: str, heading: str) -> str:
    """The part of ``text`` from the line ``heading`` to the next heading of its level."""
    level = heading.split()[0]
    start = text.index(heading + "\n")
    end = re.search(rf"^{level} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + end.start()] if end else text[start:]


def public_modules() -> list[str]:
    """Every module of spacy_hs whose dotted name has no part starting with ``_``: the list
    docs/api_reference.py writes the page from."""
    path = ROOT / "docs" / "api_reference.py"
    spec = importlib.util.spec_from_file_location("api_reference", path)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator.modules()


def public_api(module_name: str) -> list[str]:
    """The public classes and functions a module defines, and each class's own public
    methods, properties and fields, as ``Name`` and ``Name.member``."""
    module = importlib.import_module(module_name)
    names = []
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or getattr(value, "__module__", None) != module_name:
            continue
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        names.append(name)
        if inspect.isclass(value):
            members = set(getattr(value, "__dataclass_fields__", {}))
            members |= {m for m in vars(value) if not m.startswith("_")}
            if issubclass(value, tuple) and hasattr(value, "_fields"):
                members |= set(value._fields)
            names += [f"{name}.{m}" for m in sorted(members) if not m.startswith("_")]
    return names


def test_the_api_reference_has_a_line_for_every_public_name() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf8")
    missing = []
    for module_name in public_modules():
        heading = f"## `{module_name}`"
        if heading + "\n" not in text:
            missing.append(heading)
            continue
        part = section(text, heading)
        missing += [f"{module_name}: {n}" for n in public_api(module_name) if f"`{n}" not in part]
    assert missing == []


def module_files() -> list[str]:
    """Every source file of the package (``.py``, ``.pyx``, ``.pxd``, ``.h``; C files made by
    Cython left out) as a path under spacy_hs/, and every subpackage as ``name/``."""
    package = ROOT / "spacy_hs"
    found = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package).as_posix()
        if "__pycache__" in relative or "static" in path.relative_to(package).parts:
            continue
        if path.is_dir():
            found.append(f"{relative}/")
        elif path.suffix in {".py", ".pyx", ".pxd", ".h"}:
            if path.name == "__init__.py" and path.parent != package:
                continue  # the folder's own line covers it
            found.append(relative)
    return found


def test_the_architecture_page_has_a_line_for_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf8")
    missing = [name for name in module_files() if f"`{name}`" not in text]
    assert missing == []


def test_the_cli_page_has_every_command_and_option() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf8")
    group = typer.main.get_command(spacy_hs.cli.app)
    missing = []
    for name, command in sorted(group.commands.items()):
        heading = f"## `spacy-hs {name}`"
        if heading + "\n" not in text:
            missing.append(heading)
            continue
        part = section(text, heading)
        for param in command.params:
            options = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            if options and options[0] != "--help" and options[0] not in part:
                missing.append(f"{name} {options[0]}")
            argument = (param.metavar or param.name.upper()).rstrip(".")
            if not options and argument not in part:
                missing.append(f"{name} {argument}")
    for param in group.params:
        if param.opts[0] != "--help" and param.opts[0] not in text:
            missing.append(param.opts[0])
    assert missing == []
