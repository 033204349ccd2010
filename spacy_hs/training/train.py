"""Training, end to end: config -> gensim Word2Vec (``word2vec.py``) -> ``HSModel`` -> optional
next-word head (``head.py``: directional or n-gram) -> model directory, written atomically.

The layout ``spacy-hs train CORPUS OUTPUT_DIR`` writes::

    OUTPUT_DIR/hs_model/         the HSModel (HSModel.from_disk; no pickle)
    OUTPUT_DIR/word2vec.model    only with save_gensim: gensim's own pickle, for gensim only

The config (``config.py``) has three sections, all optional in a user's file; each is
resolved through its registered function, whose signature holds the defaults (spelled out with
comments in configs/default.cfg):

- ``[word2vec]``: gensim ``Word2Vec`` parameters (``spacy_hs.word2vec.v1``);
- ``[training]``: how training is measured (``spacy_hs.training.v1``: ``loss_sample``, the
  examples the per-epoch loss is computed on, 0 to skip it);
- ``[head]``: the next-word head (``spacy_hs.head.v1``; n-gram features with
  ``ngram_orders`` > 0), or the recurrent head (``spacy_hs.recurrent_head.v1``,
  ``recurrent.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from confection import Config

from ..corpus import tokenfile
from ..errors import Errors, OutputError
from ..hs_format import check_output_dir, read_header
from ..hs_model import HSModel
from ..util import atomic_file, check_output_location, missing_dirs, remove_empty
from .config import RecurrentHeadSettings, load_config, resolve_config
from .word2vec import EpochReport, Word2VecResult, train_word2vec

MODEL_DIR = "hs_model"
GENSIM_FILE = "word2vec.model"
# model.meta[GENSIM_RECORD]: the gensim file saved beside the model (name, bytes, mtime_ns), so
# that the next run knows it may replace it.
GENSIM_RECORD = "gensim_file"


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
    on_start: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> HSModel:
    """Train on a token file and write ``output_dir/hs_model`` (and, with ``save_gensim``,
    ``output_dir/word2vec.model``). Returns the trained model.

    config / overrides: see ``load_config``.
    heldout_path: a held-out token file, for the head's early stopping.
    on_vocab / on_epoch / on_status: progress callbacks (the CLI prints them).
    on_start: called with gensim's parameters once every check has passed, as training starts.
    progress: show the progress of each stage on stderr (``spacy_hs.progress``).

    Everything is checked before training starts (config, corpus, held-out file, output
    directory), so a mistake fails in seconds, not after the last epoch.
    """
    config = load_config(config, overrides)  # every section checked before gensim starts
    sections = resolve_config(config)
    head_settings = sections["head"]
    corpus_path, output_dir = Path(corpus_path), Path(output_dir)
    checked = tokenfile.check_token_file(corpus_path)
    if head_settings.enabled and heldout_path is None:
        from .head_engine import check_heldout_split

        check_heldout_split(checked.lines, head_settings, str(corpus_path))
    if heldout_path is not None:
        tokenfile.check_token_file(heldout_path, what="Held-out file")
    inputs = [corpus_path, heldout_path, config if isinstance(config, (str, Path)) else None]
    _check_output(output_dir, inputs, save_gensim)
    corpus_meta = tokenfile.read_meta(corpus_path) or {}
    if on_start is not None:
        on_start(sections["word2vec"])

    result = train_word2vec(
        corpus_path,
        sections["word2vec"],
        loss_sample=sections["training"]["loss_sample"],
        on_epoch=on_epoch,
        on_vocab=on_vocab,
        check=False,  # done above
        progress=progress,
    )
    settings: dict[str, Any] = {"lang": corpus_meta.get("lang", "en")}
    if corpus_meta.get("normalizer") is not None:
        settings["normalizer"] = corpus_meta["normalizer"]
    model = HSModel.from_gensim(result.model, settings=settings)
    model.meta.update(_training_meta(config, result, corpus_path, corpus_meta))

    if head_settings.enabled:
        from .head import attach_head, train_head

        recurrent = isinstance(head_settings, RecurrentHeadSettings)
        if on_status is not None:
            kind = "n-gram" if head_settings.ngram_orders else "directional"
            kind = "recurrent" if recurrent else kind
            on_status(f"Training the {kind} next-word head")
        start = time.perf_counter()
        if recurrent:
            from .recurrent import train_recurrent_head

            head = train_recurrent_head(
                model, corpus_path, heldout_path, head_settings, progress=progress
            )
            attach_head(model, head, export_fine_tuned_vectors=False)
        else:
            head = train_head(model, corpus_path, heldout_path, head_settings, progress=progress)
            export = head_settings.export_fine_tuned_vectors
            attach_head(model, head, export_fine_tuned_vectors=export)
        model.meta["head_seconds"] = time.perf_counter() - start

    model_dir = output_dir / MODEL_DIR
    gensim_path = output_dir / GENSIM_FILE
    # A failed write (a full disk) leaves neither a new gensim file without its model nor an
    # empty output directory behind.
    created, new_gensim_file = missing_dirs(output_dir), not gensim_path.exists()
    try:
        if save_gensim:  # first, so that the model's meta records it
            model.meta[GENSIM_RECORD] = _save_gensim(result.model, gensim_path, model_dir)
            if on_status is not None:
                on_status(f"Saved the gensim model (a pickle, for gensim only) to {gensim_path}")
        model.to_disk(model_dir)
    except BaseException:
        if save_gensim and new_gensim_file:
            gensim_path.unlink(missing_ok=True)
        remove_empty(created)
        raise
    if on_status is not None:
        on_status(f"Saved the HS model to {model_dir}")
    return model


def _check_output(output_dir: Path, inputs: list[Any], save_gensim: bool) -> None:
    """Fail before training, not after, if the model could not be written, or writing it
    would lose an input or files spacy-hs did not write."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(Errors.E164.format(path=output_dir))
    model_dir = output_dir / MODEL_DIR
    if model_dir.exists() and (
        not model_dir.is_dir()
        or (any(model_dir.iterdir()) and not (model_dir / "meta.json").exists())
    ):
        raise OutputError(Errors.E166.format(path=model_dir))
    check_output_location(model_dir, inputs, replaces_dir=True)
    check_output_dir(model_dir)  # E016 / E182: only model files may be replaced
    if save_gensim:
        gensim_path = output_dir / GENSIM_FILE
        check_output_location(gensim_path, inputs)
        why = _gensim_not_ours(model_dir)(gensim_path, gensim_path)
        if gensim_path.exists() and why:
            raise OutputError(Errors.E183.format(path=gensim_path, why=why))


def _training_meta(
    config: Config, result: Word2VecResult, corpus_path: Path, corpus_meta: Mapping[str, Any]
) -> dict[str, Any]:
    import gensim

    from .. import __version__

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
        "loss_history": [None if math.isnan(x) else x for x in result.loss_history],
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
        # With the @settings function names: read back with load_config.
        "config": {section: dict(values) for section, values in config.items()},
    }


def _save_gensim(model: Any, path: Path, model_dir: Path) -> dict[str, Any]:
    """gensim's own pickle, in one file, written to a temporary file and renamed into place;
    returns the record of it that the model's meta keeps (``GENSIM_RECORD``)."""
    with atomic_file(path, "wb", not_ours=_gensim_not_ours(model_dir)) as file:
        model.save(file)  # a file handle: gensim pickles everything into it (no .npy files)
    info = path.stat()
    return {"name": path.name, "bytes": info.st_size, "mtime_ns": info.st_mtime_ns}


def _gensim_not_ours(model_dir: Path) -> Any:
    """``not_ours`` for the gensim file: it may be replaced if the model beside it records it
    (unchanged since: same size and modification time)."""

    def not_ours(target: Path, temporary: Path) -> str | None:
        record = ((read_header(model_dir) or {}).get("meta") or {}).get(GENSIM_RECORD)
        try:
            info = target.stat()
        except OSError:
            return None
        if (
            isinstance(record, dict)
            and record.get("name") == target.name
            and record.get("bytes") == info.st_size
            and record.get("mtime_ns") == info.st_mtime_ns
        ):
            return None
        return f"{model_dir / 'meta.json'} does not record it as the gensim model saved there"

    return not_ours
