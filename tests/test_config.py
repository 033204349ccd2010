"""spacy_hs.training.config: the training config, its sections resolved and validated by
confection, and the one source of every head setting on its way to the engine."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from confection import Config

import spacy_hs
from spacy_hs.training.config import (
    HeadSettings,
    default_config,
    head_settings,
    load_config,
    resolve_config,
)
from spacy_hs.training.head import train_head
from spacy_hs.validation import MAX_CONTEXT_SIZE, is_context_size

CONFIGS = Path(__file__).parent.parent / "configs"
DEFAULT_CFG = CONFIGS / "default.cfg"
PACKAGE = Path(spacy_hs.__file__).parent


def test_default_cfg_matches_the_built_in_defaults():
    """configs/default.cfg spells out the defaults of the registered settings functions."""
    config = load_config(DEFAULT_CFG)
    assert config == default_config() == load_config(None)
    assert config["head"]["enabled"] is True
    assert config["word2vec"]["@settings"] == "spacy_hs.word2vec.v1"


def test_loading_a_config_imports_no_trainer():
    """Reading and checking a config is light: it imports neither gensim's training nor the
    head's (the probe does see them once the trainer is imported)."""
    trainers = ("gensim", "spacy_hs.training.head", "spacy_hs.training.word2vec")
    code = (
        "import sys; from spacy_hs.training.config import load_config; "
        f"load_config({str(DEFAULT_CFG)!r}); "
        f"loaded = lambda: [m for m in sys.modules if m.startswith({trainers!r})]; "
        "print(loaded()); import spacy_hs.training.train, spacy_hs.training.head; print(loaded())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    before, after = result.stdout.splitlines()
    assert before == "[]", result.stderr
    assert "'spacy_hs.training.head'" in after and "'spacy_hs.training.word2vec'" in after


def test_overrides_apply_before_interpolation(tmp_path: Path):
    path = tmp_path / "vars.cfg"
    path.write_text("[word2vec]\nepochs = 3\nseed = 1\n\n[head]\nseed = ${word2vec.seed}\n")
    config = load_config(path, {"word2vec.seed": 42, "word2vec.window": 2})
    assert config["word2vec"]["seed"] == 42 and config["head"]["seed"] == 42
    assert config["word2vec"]["window"] == 2 and config["word2vec"]["epochs"] == 3
    # Keys the file leaves out take the defaults.
    assert config["word2vec"]["vector_size"] == default_config()["word2vec"]["vector_size"]
    assert config["training"] == default_config()["training"]


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"word2vec.size": 10}, r"Unknown setting word2vec.size\. Valid settings in \[word2vec\]"),
        ({"training.epochs": 10}, r"Unknown setting training.epochs.*loss_sample"),
        ({"head.unknown_key": 1}, r"Unknown setting head.unknown_key.*context_size"),
        ({"gensim.epochs": 10}, r"Unknown config section \[gensim\]. Valid sections: word2vec"),
        ({"word2vec.hs": 0}, r"hs = 1"),
        ({"word2vec.negative": 5}, r"set it to 0"),
        ({"word2vec.epochs": "many"}, r"word2vec.epochs must be a positive integer"),
        ({"training.loss_sample": -1}, r"training.loss_sample must be an integer >= 0"),
        ({"head.enabled": "yes"}, r"head.enabled must be true or false"),
        # step sizes that diverge are refused before training (they ended in an OverflowError
        # or a NaN in meta.json after all the training)
        ({"word2vec.alpha": 1}, r"word2vec.alpha must be a number in \(0, 0.5\]"),
        ({"word2vec.min_alpha": 1}, r"word2vec.min_alpha must be a number in \[0, 0.5\]"),
        ({"head.learn_rate": 100}, r"head.learn_rate must be a number in \(0, 2\]"),
        ({"head.learn_rate": 1e30}, r"head.learn_rate .*larger steps diverge"),
        ({"head.dense_learn_rate": 1}, r"head.dense_learn_rate must be a number in \(0, 0.1\]"),
        ({"head.table_learn_rate": 1e6}, r"head.table_learn_rate must be a number in \(0, 2\]"),
    ],
)
def test_bad_settings(overrides: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        load_config(DEFAULT_CFG, overrides)


def test_unknown_key_in_a_config_file(tmp_path: Path):
    path = tmp_path / "bad.cfg"
    path.write_text("[word2vec]\niter = 5\n")
    with pytest.raises(ValueError, match="Unknown setting word2vec.iter.*epochs"):
        load_config(path)


def test_config_file_missing_or_malformed(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="Config file .* does not exist"):
        load_config(tmp_path / "missing.cfg")
    path = tmp_path / "broken.cfg"
    path.write_text("word2vec.epochs = 5\n[word2vec\n")
    with pytest.raises(ValueError, match="Cannot read config"):
        load_config(path)


# -- one source for every head setting -------------------------------------------------------


def test_the_old_head_settings_name_still_resolves(tmp_path: Path):
    """Configs written for earlier versions name ``spacy_hs.directional_head.v1``."""
    path = tmp_path / "old.cfg"
    path.write_text('[head]\n@settings = "spacy_hs.directional_head.v1"\nlearn_rate = 0.2\n')
    settings = resolve_config(load_config(path))["head"]
    assert isinstance(settings, HeadSettings) and settings.learn_rate == 0.2
    assert default_config()["head"]["@settings"] == "spacy_hs.head.v1"


def _defaults_in_python(path: Path, names: set[str]) -> list[str]:
    """``name (where)`` for every default given to one of ``names``: function parameters
    (None, "not given", excepted) and class-level fields."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                is_none = isinstance(default, ast.Constant) and default.value is None
                if arg.arg in names and not is_none:
                    found.append(f"{arg.arg} ({path.name}: {node.name})")
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                target = getattr(statement, "target", None)
                if isinstance(statement, ast.AnnAssign) and statement.value is not None:
                    if isinstance(target, ast.Name) and target.id in names:
                        found.append(f"{target.id} ({path.name}: {node.name})")
    return found


def test_each_head_setting_has_its_default_in_one_place():
    """``HeadSettings`` is the only place a head training setting gets a default: the config
    resolves to it and the engine and the kernels take every value from it. The modules and
    kernels that train heads are searched for every setting; the whole package for the
    settings only head training has (a step size, an optimiser...). gensim's training
    (``word2vec.py``, the [word2vec] section) has an epochs, workers and seed of its own."""
    names = {field.name for field in dataclasses.fields(HeadSettings)}
    training_only = names - {
        "enabled", "context_size", "diagonal", "fine_tune_vectors", "epochs", "seed",
        "workers", "heldout_fraction", "eos_token",
    }
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        head_training = path.parent.name == "training" and path.name != "word2vec.py"
        found += _defaults_in_python(path, names if head_training else training_only)
    pattern = re.compile(r"\b(?:bint|int|double|float|str|Py_ssize_t|uint64_t)\s+(\w+)\s*=")
    for path in sorted(PACKAGE.glob("*.pyx")):
        found += [
            f"{m.group(1)} ({path.name})"
            for m in pattern.finditer(path.read_text(encoding="utf8"))
            if m.group(1) in names
        ]
    # The recurrent head's section (spacy_hs.recurrent_head.v1) is another head's settings.
    found = [
        f for f in found if "word2vec_settings)" not in f and "RecurrentHeadSettings)" not in f
    ]
    assert sorted(found) == sorted(f"{name} (config.py: HeadSettings)" for name in names)


def _raw_head_section(path: Path) -> dict:
    """The [head] section as written in the file, without the defaults filled in."""
    section = dict(Config().from_disk(path, interpolate=False)["head"])
    section.pop("@settings")
    return section


@pytest.mark.parametrize("name", ["ptb.cfg", "default.cfg"])
def test_the_engine_trains_with_the_values_the_config_writes(
    name: str, hs_model, lee_path: Path
) -> None:
    """configs/ptb.cfg and configs/default.cfg: every [head] value written there reaches the
    engine unchanged (only the run's length, threads and table size are overridden here, to
    train one short epoch on the Lee corpus); what the file leaves out takes the defaults."""
    written = _raw_head_section(CONFIGS / name)
    assert len(written) >= 15
    overrides = {"epochs": 1, "workers": 1, "table_size": 1 << 20, "tune_cache": False}
    settings = resolve_config(
        load_config(CONFIGS / name, {f"head.{k}": v for k, v in overrides.items()})
    )["head"]
    defaults = dataclasses.asdict(HeadSettings())
    expected = {**defaults, **written, **overrides}
    assert dataclasses.asdict(settings) == expected
    head = train_head(hs_model, lee_path, None, settings, progress=False)
    history = head.history
    assert history["settings"] == expected  # every setting, as the engine received it
    # ... and as it used them: its own records of the run.
    assert history["optimizer"] == expected["optimizer"]
    assert history["lr_schedule"] == expected["lr_schedule"]
    assert history["learn_rate"][0] == expected["learn_rate"]  # the first epoch's, undecayed
    for key in ("context_size", "diagonal", "fine_tune_vectors", "dropout", "ngram_orders"):
        assert history[key] == expected[key], key
    assert history["table_size"] == (expected["table_size"] if expected["ngram_orders"] else 0)
    assert history["workers"] == 1


def test_head_settings_are_validated_as_the_config_is():
    assert head_settings(learn_rate=0.3).learn_rate == 0.3
    with pytest.raises(ValueError, match=r"head.learn_rate must be a number in \(0, 2\]"):
        head_settings(learn_rate=0)
    with pytest.raises(ValueError, match=r"head.optimizer must be 'adagrad' or 'sgd'"):
        head_settings(optimizer="adam")


# -- the context-size rule ------------------------------------------------------------------


def test_the_context_size_rule():
    assert is_context_size(1) and is_context_size(MAX_CONTEXT_SIZE)
    assert not any(map(is_context_size, [0, MAX_CONTEXT_SIZE + 1, 2.0, True, "5", None]))


@pytest.mark.parametrize(
    "key, value",
    [("word2vec.window", MAX_CONTEXT_SIZE + 1), ("word2vec.window", 0),
     ("head.context_size", MAX_CONTEXT_SIZE + 1), ("head.context_size", 0)],
)
def test_the_config_applies_the_context_size_rule(key: str, value: int):
    message = rf"{key} must be an integer from 1 to {MAX_CONTEXT_SIZE}, got {value}"
    with pytest.raises(ValueError, match=message):
        load_config(DEFAULT_CFG, {key: value})
    load_config(DEFAULT_CFG, {key: MAX_CONTEXT_SIZE, "head.ngram_orders": 1})
