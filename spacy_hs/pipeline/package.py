"""Build, save, load and package spaCy pipelines around the ``hs_predictor`` component.

The library side of ``spacy-hs assemble``, ``spacy-hs predict`` and ``spacy-hs package``:
tests and ``project.yml`` use these functions, the commands only parse options and print.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
import srsly
from packaging.version import Version
from spacy.language import Language

from .. import __version__
from ..errors import ConfigError, Errors, ModelFileError, PipelineError
from ..hs_format import META_FILE, model_files
from ..hs_model import HSModel
from ..util import (
    check_output_location,
    check_replaceable,
    check_utf8,
    recover_dir,
    staging_dir,
)
from . import DEFAULT_HEAD, DEFAULT_TOP_K
from .component import HSPredictor

FACTORY = "hs_predictor"
DISTRIBUTION = "spacy-hs"  # our name on PyPI, required by every packaged pipeline


# -- building and saving ----------------------------------------------------------------------


def cache_setting(choice: str) -> str | None:
    """The component's ``cache`` setting for the CLI's ``--cache`` choice: "auto" or "off"."""
    if choice not in ("auto", "off"):
        raise ConfigError(Errors.E191.format(option="cache", value=choice))
    return None if choice == "off" else "auto"


def build_pipeline(
    model: HSModel,
    lang: str | None = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    head: str = DEFAULT_HEAD,
    context_size: int | None = None,
    sentencizer: bool = True,
    cache: str = "auto",
) -> Language:
    """A blank ``lang`` pipeline (default: the model's language, else "en") with a sentencizer
    and ``hs_predictor`` holding ``model``. Its config has no ``model_path``: the model is saved
    inside the pipeline directory by ``nlp.to_disk``. cache: "auto" or "off" (``cache_setting``).
    """
    lang = lang or model.settings.get("lang") or "en"
    try:
        nlp = spacy.blank(lang)
    except ImportError:
        raise PipelineError(Errors.E318.format(lang=lang)) from None
    if sentencizer:
        nlp.add_pipe("sentencizer")
    component = nlp.add_pipe(
        FACTORY,
        config={
            "top_k": top_k,
            "head": head,
            "context_size": context_size,
            "cache": cache_setting(cache),
        },
    )
    assert isinstance(component, HSPredictor)
    component.set_model(model)
    nlp.meta["name"] = "hs_pipeline"
    nlp.meta["description"] = (
        f"Word vectors and exact hierarchical-softmax next-word probabilities (spacy-hs "
        f"{__version__}): {len(model)} words, {model.vector_size} dimensions."
    )
    nlp.meta["spacy_hs"] = {
        "version": __version__,
        "words": len(model),
        "vector_size": model.vector_size,
        "settings": model.settings,
    }
    return nlp


def assemble(
    model_dir: str | Path,
    pipeline_dir: str | Path,
    lang: str | None = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    head: str = DEFAULT_HEAD,
    context_size: int | None = None,
    cache: str = "auto",
) -> Language:
    """Write a pipeline directory (``spacy.load``-able) for the HSModel in ``model_dir``.

    Written atomically: into a temporary sibling, then renamed. An existing pipeline with an
    hs_predictor, or an empty directory, is replaced, if it holds nothing that spacy-hs did
    not write (``pipeline_files``); anything else is left alone and an error raised.
    """
    pipeline_dir = Path(pipeline_dir)
    recover_dir(pipeline_dir)  # a replacement killed between its renames is undone first
    if pipeline_dir.exists() and not _is_replaceable(pipeline_dir):
        raise PipelineError(Errors.E310.format(path=pipeline_dir))
    check_output_location(pipeline_dir, [model_dir], replaces_dir=True)
    owned = pipeline_files(pipeline_dir)
    check_replaceable(pipeline_dir, owned)  # before the model is read, not after
    model = HSModel.from_disk(model_dir)
    nlp = build_pipeline(
        model, lang, top_k=top_k, head=head, context_size=context_size, cache=cache
    )
    with staging_dir(pipeline_dir, owned) as tmp:
        nlp.to_disk(tmp)
    return nlp


def _is_replaceable(path: Path) -> bool:
    if path.is_dir() and not any(path.iterdir()):
        return True
    return FACTORY in _pipeline_factories(path)


# What nlp.to_disk writes besides the components' own files.
SPACY_FILES = ("config.cfg", "meta.json", "tokenizer", "vocab/")


def pipeline_files(path: str | Path) -> set[str]:
    """What spacy-hs wrote in the pipeline directory ``path`` (as ``check_replaceable`` reads
    them): spaCy's own files, the hs_predictor's model files and the sentencizer's settings. A
    component of another kind (added since) is not ours, and neither is anything else."""
    path = Path(path)
    config_path = path / "config.cfg"
    if not config_path.is_file():
        return set()
    try:
        components = spacy.util.load_config(config_path, interpolate=False).get("components", {})
    except Exception:  # a broken config is not a pipeline we made
        return set()
    owned = set(SPACY_FILES)
    for name, component in components.items():
        factory = component.get("factory") if isinstance(component, dict) else None
        if factory == FACTORY:
            owned |= {f"{name}/model/{file}" for file in model_files(path / name / "model")}
        elif factory == "sentencizer":
            owned |= {f"{name}.json", f"{name}/"}
    return owned


def _pipeline_factories(path: Path) -> list[str]:
    """The component factories of the pipeline at ``path`` ([] if it is not a pipeline)."""
    config_path = path / "config.cfg"
    if not path.is_dir() or not config_path.exists():
        return []
    try:
        config = spacy.util.load_config(config_path, interpolate=False)
    except Exception:  # a broken config is not a pipeline we made
        return []
    return [c.get("factory", "") for c in config.get("components", {}).values()]


# -- loading for prediction ---------------------------------------------------------------------


def load_predictor_pipeline(
    path: str | Path,
    *,
    top_k: int | None = None,
    head: str | None = None,
    cache: str | None = None,
) -> tuple[Language, HSPredictor]:
    """A pipeline and its hs_predictor from an HSModel directory or a pipeline directory.

    top_k / head / cache ("auto" or "off"): override the component's settings (None keeps the
    pipeline's own; for an HSModel directory the defaults, DEFAULT_TOP_K, DEFAULT_HEAD, "auto").
    """
    path = Path(path)
    recover_dir(path)  # an interrupted replacement: the previous version is put back (W010)
    if not path.exists():
        raise PipelineError(Errors.E311.format(path=path))
    if (path / "config.cfg").exists():
        factories = _pipeline_factories(path)
        names = _component_names(path)
        if FACTORY not in factories:
            raise PipelineError(Errors.E312.format(path=path, names=", ".join(names) or "none"))
        name = names[factories.index(FACTORY)]
        overrides: dict[str, Any] = {}
        if top_k is not None:
            overrides["top_k"] = top_k
        if head is not None:
            overrides["head"] = head
        if cache is not None:
            overrides["cache"] = cache_setting(cache)
        config = {"components": {name: overrides}} if overrides else {}
        nlp = spacy.load(path, config=config)
        component = nlp.get_pipe(name)
    elif (path / META_FILE).exists():
        try:
            model = HSModel.from_disk(path)
        except ModelFileError as err:
            raise PipelineError(str(err)) from None
        nlp = build_pipeline(
            model, top_k=top_k or DEFAULT_TOP_K, head=head or DEFAULT_HEAD, cache=cache or "auto"
        )
        component = nlp.get_pipe(FACTORY)
    else:
        raise PipelineError(Errors.E311.format(path=path))
    assert isinstance(component, HSPredictor)
    return nlp, component


def _component_names(path: Path) -> list[str]:
    config = spacy.util.load_config(path / "config.cfg", interpolate=False)
    return list(config.get("components", {}))


@dataclass
class Prediction:
    """The next-word prediction for a text: the context the model read, and the top-k."""

    context: list[str]
    next_words: list[tuple[str, float]]


def predict_next(nlp: Language, component: HSPredictor, text: str) -> Prediction:
    """Top-k words after ``text`` (its last sentence), as ``Doc._.hs_next`` gives them."""
    doc = nlp(check_utf8(text, "The text"))
    model = component.model
    assert model is not None
    context = [model.words[i] for i in component.context_ids(doc, 0, len(doc))]
    return Prediction(context=context, next_words=doc._.hs_next)


# -- packaging ----------------------------------------------------------------------------------


def package_pipeline(
    pipeline_dir: str | Path,
    output_dir: str | Path,
    name: str,
    version: str,
    *,
    isolation: bool = False,
    force: bool = False,
    silent: bool = True,
) -> Path:
    """Build an installable wheel of a pipeline with spaCy's own packaging (``spacy package``).

    The package is named ``{lang}_{name}`` (spaCy's convention; ``name`` may already carry the
    prefix) and requires ``spacy-hs`` (a compatible minor range of this version) and spaCy.
    The wheel is built with ``python -m build --wheel``, by default without an isolated build
    environment, so nothing is downloaded: this environment's setuptools and wheel are used.

    version: X.Y.Z, normalised as the wheel's metadata will be (PEP 440: "01.2.3" is "1.2.3"),
    so that the directory and the wheel carry the same version.
    Refused: a pipeline with symbolic links inside (their targets would be copied into the
    wheel); an output inside the pipeline. The package directory is built in a temporary
    sibling and renamed into place; with ``force`` an existing one is replaced, if it holds
    nothing but what packaging writes.

    Returns the path of the wheel, ``output_dir/{lang}_{name}-{version}/dist/*.whl``.
    """
    from spacy.cli.package import package

    pipeline_dir, output_dir = Path(pipeline_dir), Path(output_dir)
    recover_dir(pipeline_dir)  # an interrupted replacement: the previous version is put back
    missing = [f for f in ("config.cfg", "meta.json") if not (pipeline_dir / f).exists()]
    if not pipeline_dir.is_dir() or missing:
        raise PipelineError(
            Errors.E313.format(path=pipeline_dir, missing=" or ".join(missing) or "directory")
        )
    if not name.isascii() or not name.isidentifier():
        raise PipelineError(Errors.E314.format(name=name))
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise PipelineError(Errors.E315.format(version=version))
    version = str(Version(version))  # as setuptools will write it into the wheel
    links = _symlinks(pipeline_dir)
    if links:
        shown = ", ".join(links[:10]) + (f" and {len(links) - 10} more" if len(links) > 10 else "")
        raise PipelineError(Errors.E331.format(path=pipeline_dir, links=shown))
    meta = srsly.read_json(pipeline_dir / "meta.json")
    lang = meta.get("lang") or "en"
    package_name = name if name.startswith(f"{lang}_") else f"{lang}_{name}"
    main_path = output_dir / f"{package_name}-{version}"
    check_output_location(main_path, [pipeline_dir], replaces_dir=True)
    recover_dir(main_path)
    owned = set(PACKAGE_FILES) | {f"{package_name}/", f"{package_name}.egg-info/"}
    if main_path.exists() or main_path.is_symlink():
        if not force:
            raise PipelineError(Errors.E317.format(path=main_path))
        check_replaceable(main_path, owned)
    # spaCy finds third-party requirements through the factories' modules, which works only
    # for an installed spacy-hs; naming the requirement here makes it hold in every case.
    requirements = [
        r
        for r in meta.get("requirements", [])
        if spacy.util.split_requirement(r)[0] != DISTRIBUTION
    ]
    requirements.append(DISTRIBUTION + spacy.util.get_minor_version_range(__version__))
    # spaCy writes <parent>/<package>-<version>: its parent is our staging directory, whose
    # content then moves up one level, so the staging directory becomes the package directory.
    with staging_dir(main_path, owned) as staged:
        meta_path = staged / ".package-meta.json"  # what spaCy packages; removed before the swap
        srsly.write_json(meta_path, {**meta, "requirements": requirements})
        written = staged / main_path.name
        # spaCy's messages name the staging directory, which is gone once the package is in
        # place: they are captured, and shown with the final paths.
        report = io.StringIO()
        try:
            with contextlib.redirect_stdout(report):
                package(
                    pipeline_dir,
                    staged,
                    meta_path=meta_path,
                    name=name,
                    version=version,
                    create_sdist=False,
                    create_wheel=False,
                    require_parent=True,
                    silent=silent,
                )
        except SystemExit as err:  # spaCy's packaging reports failures by exiting
            said = " ".join(_final_paths(report.getvalue(), written, main_path).split())
            raise PipelineError(Errors.E319.format(code=err.code, output=said)) from None
        if not silent:
            print(_final_paths(report.getvalue(), written, main_path), end="")
        _build_wheel(written, isolation=isolation)
        if not list((written / "dist").glob("*.whl")):
            raise PipelineError(
                Errors.E316.format(code=0, command="build", output="no wheel was written")
            )
        for entry in list(written.iterdir()):
            entry.rename(staged / entry.name)
        written.rmdir()
        meta_path.unlink()
    wheels = sorted((main_path / "dist").glob("*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1]


def _final_paths(text: str, written: Path, main_path: Path) -> str:
    """spaCy's messages with the staging paths replaced by where the package ends up."""
    return text.replace(str(written), str(main_path)).replace(
        str(written.parent), str(main_path.parent)
    )


# What spaCy's packaging and the wheel build write in a package directory, besides the
# package itself and its .egg-info.
PACKAGE_FILES = ("setup.py", "MANIFEST.in", "meta.json", "README.md", "LICENSE", "build/", "dist/")


def _symlinks(directory: Path) -> list[str]:
    """The symbolic links under ``directory`` (relative paths; not followed)."""
    links = []
    for root, dirs, files in os.walk(directory):
        for name in sorted(dirs + files):
            if Path(root, name).is_symlink():
                links.append((Path(root, name).relative_to(directory)).as_posix())
    return links


def _build_wheel(package_dir: Path, *, isolation: bool) -> None:
    if _has_distribution("build"):
        command = [sys.executable, "-m", "build", ".", "--wheel"]
        if not isolation:
            command.append("--no-isolation")
    else:
        command = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", "dist"]
        if not isolation:
            command.append("--no-build-isolation")
    result = subprocess.run(
        command,
        cwd=package_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    # The build log is long and routine: show it only when the build fails.
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise PipelineError(
            Errors.E316.format(code=result.returncode, command=" ".join(command), output=tail)
        )


def _has_distribution(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False
