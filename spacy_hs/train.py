"""Training, end to end: config -> gensim Word2Vec (``word2vec.py``) -> ``HSModel`` -> optional
directional next-word head (``head.py``) -> model directory, written atomically.

The layout ``spacy-hs train CORPUS OUTPUT_DIR`` writes::

    OUTPUT_DIR/hs_model/         the HSModel (HSModel.from_disk; no pickle)
    OUTPUT_DIR/word2vec.model    only with save_gensim: gensim's own pickle, for gensim only

The config has three sections, all optional in a user's file (missing keys take the defaults
below, which configs/default.cfg spells out with comments):

- ``[word2vec]``: gensim ``Word2Vec`` parameters (``word2vec.WORD2VEC_DEFAULTS``);
- ``[training]``: how training is measured (``loss_sample``: examples the per-epoch loss is
  computed on, 0 to skip it);
- ``[head]``: the directional next-word head; ``enabled`` plus the keyword arguments of
  ``spacy_hs.head.train_head``.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import srsly
from confection import Config

from .errors import Errors, Warnings
from .hs_model import HSModel
from .util import atomic_file
from .word2vec import (
    LOSS_SAMPLE,
    WORD2VEC_DEFAULTS,
    EpochReport,
    Word2VecResult,
    check_corpus,
    train_word2vec,
    word2vec_params,
)

MODEL_DIR = "hs_model"
GENSIM_FILE = "word2vec.model"
CORPUS_META_SUFFIX = ".meta.json"

TRAINING_DEFAULTS: dict[str, Any] = {"loss_sample": LOSS_SAMPLE}
# The directional head (issue 5): ``enabled`` switches it on; every other key is passed to
# spacy_hs.head.train_head as a keyword argument, and the keys left out take train_head's own
# defaults (configs/default.cfg lists them, and tests/test_train.py checks they agree).
HEAD_DEFAULTS: dict[str, Any] = {"enabled": True}
# Accepted without importing the head module (and thinc) while the head is off; when it is
# on, every key is checked against train_head's signature.
HEAD_KEYS = (
    "enabled",
    "context_size",
    "diagonal",
    "epochs",
    "learn_rate",
    "dense_learn_rate",
    "optimizer",
    "lr_schedule",
    "patience",
    "fine_tune_vectors",
    "export_fine_tuned_vectors",
    "seed",
    "lr_decay",
    "dropout",
    "l2",
    "eos_token",
    "heldout_fraction",
    "workers",
)
# train_head parameters that are not config settings.
_HEAD_NOT_SETTINGS = ("model", "corpus_path", "heldout_path", "progress")
DEFAULTS: dict[str, dict[str, Any]] = {
    "word2vec": WORD2VEC_DEFAULTS,
    "training": TRAINING_DEFAULTS,
    "head": HEAD_DEFAULTS,
}


def default_config() -> Config:
    """The built-in defaults (the same values as configs/default.cfg)."""
    return Config(copy.deepcopy(DEFAULTS))


def load_config(
    config: Config | Mapping[str, Any] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, complete and validate a training config.

    config: a .cfg path, a dict/Config, or None for the defaults. Keys it leaves out take the
        defaults.
    overrides: dotted keys as ``spacy train`` takes them on the command line, e.g.
        ``{"word2vec.epochs": 10}``; applied before ``${...}`` variables are interpolated.

    Raises ValueError (FileNotFoundError for a missing file) naming the bad section or key,
    the valid ones, and the fix.
    """
    if config is None:
        user = Config()
    elif isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(Errors.E156.format(path=path))
        try:
            user = Config().from_disk(path, interpolate=False)
        except Exception as err:  # configparser and confection raise many types
            raise ValueError(Errors.E157.format(path=path, reason=_reason(err))) from None
    else:
        user = Config(copy.deepcopy(dict(config)))
    _check_keys(user)
    merged = default_config().merge(user)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        _check_keys({section: {name: value}})
        merged[section][name] = value
    try:
        merged = merged.interpolate()
    except Exception as err:  # an unresolvable ${section.key}
        raise ValueError(Errors.E157.format(path=config, reason=_reason(err))) from None
    _check_values(merged)
    return merged


def _check_keys(config: Mapping[str, Any]) -> None:
    for section, values in config.items():
        if section not in DEFAULTS or not isinstance(values, Mapping):
            raise ValueError(Errors.E158.format(section=section, valid=", ".join(DEFAULTS)))
        for key in values:
            if key in DEFAULTS[section] or (section == "head" and key in HEAD_KEYS):
                continue
            if section == "head":
                options = head_options()
                if options is not None and key in options:
                    continue
                valid = sorted(options or HEAD_KEYS)
            else:
                valid = sorted(DEFAULTS[section])
            raise ValueError(Errors.E159.format(section=section, key=key, valid=", ".join(valid)))


def head_options() -> dict[str, Any] | None:
    """The ``[head]`` settings ``spacy_hs.head.train_head`` accepts, with its defaults; None
    if this version has no head module."""
    try:
        from . import head
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.head":
            raise
        return None
    import inspect

    return {
        name: parameter.default
        for name, parameter in inspect.signature(head.train_head).parameters.items()
        if name not in _HEAD_NOT_SETTINGS
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def _check_values(config: Config) -> None:
    word2vec_params(config["word2vec"])
    loss_sample = config["training"]["loss_sample"]
    if isinstance(loss_sample, bool) or not isinstance(loss_sample, int) or loss_sample < 0:
        raise ValueError(
            Errors.E160.format(
                section="training",
                key="loss_sample",
                expected="an integer >= 0 (0 skips the per-epoch loss)",
                value=loss_sample,
            )
        )
    if not isinstance(config["head"]["enabled"], bool):
        raise ValueError(
            Errors.E160.format(
                section="head",
                key="enabled",
                expected="true or false",
                value=config["head"]["enabled"],
            )
        )


def read_corpus_meta(corpus_path: str | Path) -> dict[str, Any]:
    """``<corpus>.meta.json`` written by ``spacy-hs preprocess``, or {} if there is none."""
    path = Path(f"{corpus_path}{CORPUS_META_SUFFIX}")
    if not path.exists():
        return {}
    try:
        meta = srsly.read_json(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(Errors.E165.format(path=path, reason=_reason(err))) from None
    if not isinstance(meta, dict):
        raise ValueError(Errors.E165.format(path=path, reason="it is not a JSON object"))
    return meta


def train(
    corpus_path: str | Path,
    output_dir: str | Path,
    config: Config | Mapping[str, Any] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    heldout_path: str | Path | None = None,
    save_gensim: bool = False,
    on_vocab: Callable[[Word2VecResult], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> HSModel:
    """Train on a token file and write ``output_dir/hs_model`` (and, with ``save_gensim``,
    ``output_dir/word2vec.model``). Returns the trained model.

    config / overrides: see ``load_config``.
    heldout_path: a held-out token file, for the directional head's early stopping.
    on_vocab / on_epoch / on_status: progress callbacks (the CLI prints them).

    Everything is checked before training starts (config, corpus, held-out file, output
    directory), so a mistake fails in seconds, not after the last epoch.
    """
    config = load_config(config, overrides)
    corpus_path, output_dir = Path(corpus_path), Path(output_dir)
    check_corpus(corpus_path)
    if heldout_path is not None:
        check_corpus(heldout_path, what="Held-out file")
    _check_output(output_dir)
    corpus_meta = read_corpus_meta(corpus_path)
    head_config = dict(config["head"])
    train_head = _head_trainer(head_config) if head_config.pop("enabled") else None

    result = train_word2vec(
        corpus_path,
        config["word2vec"],
        loss_sample=config["training"]["loss_sample"],
        on_epoch=on_epoch,
        on_vocab=on_vocab,
        check=False,  # done above
    )
    settings: dict[str, Any] = {"lang": corpus_meta.get("lang", "en")}
    if corpus_meta.get("normalizer") is not None:
        settings["normalizer"] = corpus_meta["normalizer"]
    model = HSModel.from_gensim(result.model, settings=settings)
    model.meta.update(_training_meta(config, result, corpus_path, corpus_meta))

    if train_head is not None:
        if on_status is not None:
            on_status("Training the directional next-word head")
        start = time.perf_counter()
        train_head(
            model, corpus_path, None if heldout_path is None else Path(heldout_path), **head_config
        )
        model.meta["head_seconds"] = time.perf_counter() - start

    model_dir = output_dir / MODEL_DIR
    model.to_disk(model_dir)
    if on_status is not None:
        on_status(f"Saved the HS model to {model_dir}")
    if save_gensim:
        gensim_path = output_dir / GENSIM_FILE
        _save_gensim(result.model, gensim_path)
        if on_status is not None:
            on_status(f"Saved the gensim model (a pickle, for gensim only) to {gensim_path}")
    return model


def _head_trainer(head_config: Mapping[str, Any]) -> Callable[..., None] | None:
    """``spacy_hs.head.train_head`` if this version has it (else warn), its keys checked."""
    options = head_options()
    if options is None:
        warnings.warn(Warnings.W150, stacklevel=3)
        return None
    for key in head_config:
        if key not in options:
            raise ValueError(Errors.E163.format(key=key, valid=", ".join(sorted(options))))
    from .head import train_head

    return train_head


def _check_output(output_dir: Path) -> None:
    """Fail before training, not after, if the model could not be written."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(Errors.E164.format(path=output_dir))
    model_dir = output_dir / MODEL_DIR
    if model_dir.exists() and (
        not model_dir.is_dir()
        or (any(model_dir.iterdir()) and not (model_dir / "meta.json").exists())
    ):
        raise ValueError(Errors.E166.format(path=model_dir))


def _training_meta(
    config: Config, result: Word2VecResult, corpus_path: Path, corpus_meta: Mapping[str, Any]
) -> dict[str, Any]:
    import gensim

    from . import __version__

    corpus: dict[str, Any] = {
        "path": str(corpus_path),
        "bytes": corpus_path.stat().st_size,
        # As gensim counted them (lines, tokens), so they describe what was trained on.
        "sentences": result.sentences,
        "words": result.words,
        "vocab_size": result.vocab_size,
    }
    for key in ("lang", "pretokenized"):
        if key in corpus_meta:
            corpus[key] = corpus_meta[key]
    if isinstance(corpus_meta.get("stats"), dict):
        # What `spacy-hs preprocess` counted (documents, tokens, types, replaced bytes...).
        corpus["preprocess"] = corpus_meta["stats"]
    return {
        "loss_history": result.loss_history,
        "loss": {
            "measure": "mean -log P(target | input) in nats, exact hierarchical softmax, on a "
            "fixed sample of training examples after each epoch (see spacy_hs/word2vec.py)",
            "examples": result.loss_sample_size,
        },
        "epochs": result.epoch_dicts(),
        "corpus": corpus,
        "words_per_second": result.words_per_second,
        "train_seconds": result.train_seconds,
        "vocab_seconds": result.vocab_seconds,
        "workers": int(result.model.workers),
        "gensim_version": gensim.__version__,
        "spacy_hs_version": __version__,
        "config": {section: dict(values) for section, values in config.items()},
    }


def _save_gensim(model: Any, path: Path) -> None:
    """gensim's own pickle, in one file, written to a temporary file and renamed into place."""
    with atomic_file(path, "wb") as file:
        model.save(file)  # a file handle: gensim pickles everything into it (no .npy files)


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
