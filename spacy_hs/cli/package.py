"""`spacy-hs package`: an installable wheel of a pipeline, through `spacy package`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import Arg, Opt, app


@app.command("package")
def package_cli(
    pipeline_dir: Annotated[Path, Arg(help="Pipeline directory (`spacy-hs assemble` output).")],
    output_dir: Annotated[Path, Arg(help="Parent directory for the package (created).")],
    name: Annotated[
        str, Opt("--name", help="Package name; spaCy prefixes the language, e.g. en_NAME.")
    ],
    version: Annotated[str, Opt("--version", "-v", help="Package version, X.Y.Z.")],
    isolation: Annotated[
        bool,
        Opt(
            "--isolation/--no-isolation",
            help="Build in an isolated environment (downloads setuptools) or with this one's.",
        ),
    ] = False,
    force: Annotated[
        bool, Opt("--force", "-f", help="Replace an existing package directory.")
    ] = False,
) -> None:
    """Package a pipeline as an installable wheel, with spaCy's packaging.

    The wheel requires spacy-hs and spaCy; once installed, `spacy.load("LANG_NAME")` loads it.
    """
    from ..pipeline.package import package_pipeline  # spaCy loads lazily: --help stays fast

    wheel = package_pipeline(
        pipeline_dir, output_dir, name, version, isolation=isolation, force=force, silent=False
    )
    package_name = wheel.name.split("-")[0]
    msg.good(f"Built {wheel}")
    msg.text(f"Install it with `pip install {wheel}`, then spacy.load({package_name!r}).")
