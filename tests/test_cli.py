"""The `spacy-hs` command line as a whole (spacy_hs/cli/__init__.py, _util.py): the version,
help that reads at 80 columns, and short options that mean one thing in every command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import pytest
import typer

import spacy_hs
from spacy_hs.cli import app
from spacy_hs.training.config import FUNCTION_KEY, default_config

COMMANDS = sorted(typer.main.get_command(app).commands)
WIDTH = 80


def help_at_80_columns(*args: str) -> str:
    """``spacy-hs ARGS... --help`` in a process of its own, with the terminal width fixed."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1"}
    env.pop("TERMINAL_WIDTH", None)
    result = subprocess.run(
        [sys.executable, "-m", "spacy_hs", *args, "--help"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def test_version() -> None:
    for flag in ("--version", "-v"):
        result = subprocess.run(
            [sys.executable, "-m", "spacy_hs", flag], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == f"spacy-hs {spacy_hs.__version__}"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_reads_at_80_columns(name: str) -> None:
    """No line is wider than the terminal, and every option is named in full (Rich's panels cut
    "--min-sentence-length" to "--min-sentence-l…" at 80 columns)."""
    text = help_at_80_columns(name)
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert "…" not in text
    command = typer.main.get_command(app).commands[name]
    for param in command.params:
        if isinstance(param, typer.core.TyperOption):
            for option in param.opts + param.secondary_opts:
                assert option in text.split() or f"{option}," in text.split(), option


def test_root_help_lists_every_command_unabridged() -> None:
    text = help_at_80_columns()
    assert "..." not in text.split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in text


def test_train_help_lists_every_override() -> None:
    """Every setting of the config, in every section, with its default, as the settings
    functions declare them."""
    text = " ".join(help_at_80_columns("train").split())
    overrides = text.split("Config overrides")[1]
    for section, values in default_config().items():
        assert f"--{section}.KEY" in overrides
        for key in values:
            if key != FUNCTION_KEY:
                assert f" {key}=" in overrides, (section, key)
    assert "epochs=10" in overrides and "ngram_orders=3" in overrides


def test_a_short_option_means_one_thing_in_every_command() -> None:
    """``-n`` is not --name here and --n-process there; ``-v`` is the version wherever it is."""
    meanings: dict[str, set[str]] = defaultdict(set)
    group = typer.main.get_command(app)
    commands = [group, *group.commands.values()]
    for command in commands:
        for param in command.params:
            options = param.opts + param.secondary_opts
            long_name = next((o for o in options if o.startswith("--")), None)
            for option in options:
                if not option.startswith("--") and long_name:
                    meanings[option].add(long_name)
    assert meanings["-v"] == {"--version"}
    assert {o: m for o, m in meanings.items() if len(m) > 1} == {}
