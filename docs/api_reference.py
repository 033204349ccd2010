"""Write docs/api.md, the API reference, from the package itself: every public module, and in
each the classes and functions it defines, with their signatures and the first line of their
docstrings; for a class, its own public methods, properties and fields.

    python docs/api_reference.py > docs/api.md

tests/test_docs.py checks that the page has a line for every public name.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from typing import Any

import spacy_hs

INTRO = """# API reference

Every public module of spacy-hs, with the classes and functions it defines: each with its
signature and the first line of its docstring (`help()` shows the rest). Start with
[`spacy_hs.hs_model`](#spacy_hshs_model) (the model) and
[`spacy_hs.pipeline.component`](#spacy_hspipelinecomponent) (the spaCy component); the
command-line modules (`spacy_hs.cli.*`) are described for use in [cli.md](cli.md).
Written by `python docs/api_reference.py > docs/api.md`.
"""


def first_line(value: Any) -> str:
    doc = inspect.getdoc(value) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = re.match(r"(.{40,}?[.:;])\s", paragraph)  # the first sentence of a long one
    return sentence.group(1) if sentence and len(paragraph) > 160 else paragraph


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return "" if text.startswith("Annotated[") else text  # a typer option: see cli.md


def signature(value: Any, skip_self: bool = False) -> str:
    """``(name: type = default, *, ...) -> type``, annotations as written in the source."""
    try:
        sig = inspect.signature(value)
    except (TypeError, ValueError):
        return "(...)"
    parts, star = [], False
    for index, param in enumerate(sig.parameters.values()):
        if skip_self and index == 0 and param.name in ("self", "cls"):
            continue
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        prefix = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "")
        star = star or param.kind is param.VAR_POSITIONAL
        annotation = _annotation(param.annotation)
        text = prefix + param.name + (f": {annotation}" if annotation else "")
        if param.default is not param.empty:
            text += f" = {param.default!r}" if annotation else f"={param.default!r}"
        parts.append(text)
    returns = _annotation(sig.return_annotation)
    return f"({', '.join(parts)})" + (f" -> {returns}" if returns and returns != "None" else "")


def modules() -> list[str]:
    names = ["spacy_hs"]
    for info in pkgutil.walk_packages(spacy_hs.__path__, "spacy_hs."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def member_lines(cls: type, name: str) -> list[str]:
    """The own public members of a class the module calls ``name``, as ``name.member``."""
    lines = []
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        fields.update({name: None for name in cls._fields})
    own = {name: value for name, value in vars(cls).items() if not name.startswith("_")}
    for member in sorted(set(fields) | set(own)):
        value = own.get(member)
        label = f"{name}.{member}"
        if member in fields and not callable(value):
            field = fields[member]
            kind = getattr(field, "type", "") if field is not None else ""
            kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
            default = ""
            if field is not None and field.default is not dataclasses.MISSING:
                default = f" = {field.default!r}"
            lines.append(f"  - `{label}`{f': `{kind}{default}`' if kind else ''} (field)")
        elif isinstance(value, property):
            lines.append(f"  - `{label}` (property): {first_line(value)}")
        elif isinstance(value, (classmethod, staticmethod)):
            function = value.__func__
            kind = "classmethod" if isinstance(value, classmethod) else "staticmethod"
            lines.append(
                f"  - `{label}{signature(function, skip_self=True)}` ({kind}): "
                f"{first_line(function)}"
            )
        elif inspect.isfunction(value):
            lines.append(f"  - `{label}{signature(value, skip_self=True)}`: {first_line(value)}")
        elif isinstance(value, (str, int, float, bool, tuple)) and len(repr(value)) < 60:
            lines.append(f"  - `{label}` = `{value!r}`")
        else:
            lines.append(f"  - `{label}` (attribute)")
    return [line[:-2] if line.endswith(": ") else line for line in lines]


def module_section(name: str) -> list[str]:
    module = importlib.import_module(name)
    lines = [f"## `{name}`", "", first_line(module), ""]
    for attr, value in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(value, "__module__", None) != name:
            continue
        if inspect.isclass(value):
            lines.append(f"- `{attr}{signature(value)}` (class): {first_line(value)}")
            lines += member_lines(value, attr)
        elif inspect.isfunction(value):
            lines.append(f"- `{attr}{signature(value)}`: {first_line(value)}")
    return [line[:-2] if line.endswith(": ") else line for line in lines] + [""]


def main() -> None:
    out = [INTRO]
    for name in modules():
        out += module_section(name)
    print("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
