"""train.py and `spacy-hs train`: config loading and validation, the trained model directory,
its metadata, and the command line, on gensim's Lee news corpus."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import srsly
from conftest import run_cli
from gensim.models import Word2Vec

from spacy_hs import HSModel
from spacy_hs.training.train import GENSIM_FILE, MODEL_DIR, train

DEFAULT_CFG = Path(__file__).parent.parent / "configs" / "default.cfg"
# Small and deterministic: one worker (gensim's and the head's), few dimensions, two epochs.
FAST = {
    "word2vec.vector_size": 16,
    "word2vec.epochs": 2,
    "word2vec.workers": 1,
    "head.workers": 1,
    "training.loss_sample": 300,
}
FAST_ARGS = [arg for key, value in FAST.items() for arg in (f"--{key}", str(value))]


@pytest.fixture(scope="module")
def trained(lee_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HSModel]:
    output = tmp_path_factory.mktemp("train")
    model = train(lee_path, output, DEFAULT_CFG, {**FAST, "word2vec.epochs": 3})
    return output, model


# -- training -------------------------------------------------------------------------------


def test_train_writes_a_loadable_model(trained: tuple[Path, HSModel]):
    output, model = trained
    loaded = HSModel.from_disk(output / MODEL_DIR)
    assert loaded.words == model.words and len(loaded) > 1000
    np.testing.assert_array_equal(loaded.vectors, model.vectors)
    predictions = loaded.predict_next(["the", "prime"], top_k=5)
    assert len(predictions) == 5 and all(word in loaded for word, _ in predictions)
    probabilities = [p for _, p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) < 1
    assert not (output / GENSIM_FILE).exists()
    assert sorted(p.name for p in output.iterdir()) == [MODEL_DIR]  # no temporary leftovers


def test_train_meta(trained: tuple[Path, HSModel], lee_path: Path):
    output, _ = trained
    meta = HSModel.from_disk(output / MODEL_DIR).meta
    losses = meta["loss_history"]
    assert len(losses) == 3 == len(meta["epochs"])
    # Per-epoch values in nats per example, not a running total.
    assert all(0 < loss < 10 for loss in losses) and max(losses) - min(losses) < 1
    assert [epoch["loss"] for epoch in meta["epochs"]] == losses
    assert meta["loss"]["examples"] > 100
    assert meta["corpus"]["sentences"] == 300 and meta["corpus"]["words"] == 59890
    assert meta["corpus"]["bytes"] == lee_path.stat().st_size
    assert meta["words_per_second"] > 0 and meta["train_seconds"] > 0
    assert meta["gensim_version"] and meta["workers"] == 1
    assert meta["config"]["word2vec"]["epochs"] == 3
    assert meta["config"]["word2vec"]["vector_size"] == 16


def test_train_settings_without_corpus_meta(trained: tuple[Path, HSModel]):
    _, model = trained
    assert model.settings["lang"] == "en" and "normalizer" not in model.settings
    assert model.settings["vector_size"] == 16 and model.settings["sg"] == 0


def test_train_copies_corpus_meta(lee_path: Path, tmp_path: Path):
    corpus = tmp_path / "lee.txt"
    shutil.copy(lee_path, corpus)
    normalizer = {"lowercase": True, "punct": "drop", "numbers": "placeholder"}
    stats = {"documents": 300, "tokens": 59890}
    srsly.write_json(
        f"{corpus}.meta.json",
        {"lang": "de", "pretokenized": True, "normalizer": normalizer, "stats": stats},
    )
    model = train(corpus, tmp_path / "out", None, FAST)
    assert model.settings["lang"] == "de" and model.settings["normalizer"] == normalizer
    assert model.meta["corpus"]["preprocess"] == stats and model.meta["corpus"]["lang"] == "de"
    assert HSModel.from_disk(tmp_path / "out" / MODEL_DIR).settings["normalizer"] == normalizer


def test_train_bad_corpus_meta(lee_path: Path, tmp_path: Path):
    corpus = tmp_path / "lee.txt"
    shutil.copy(lee_path, corpus)
    Path(f"{corpus}.meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="Cannot read the corpus metadata"):
        train(corpus, tmp_path / "out", None, FAST)


def test_train_refuses_a_huge_corpus_meta_before_training(lee_path: Path, tmp_path: Path):
    """A corpus meta was copied whole into the model's meta.json: 80 MB gave a model over the
    loader's 64 MB cap (E061), written with exit 0 over a good previous model."""
    corpus = tmp_path / "lee.txt"
    shutil.copy(lee_path, corpus)
    srsly.write_json(f"{corpus}.meta.json", {"lang": "en", "stats": {"x": "a" * (2 << 20)}})
    started = []
    with pytest.raises(ValueError, match=r"E172.*corpus metadata.*more than the 1,048,576"):
        train(corpus, tmp_path / "out", None, FAST, on_start=started.append)
    assert not started and not (tmp_path / "out").exists()


def test_a_one_line_corpus_fails_before_training(lee_path: Path, tmp_path: Path):
    """A text8-style corpus (one line) failed with E404 only after gensim had trained."""
    corpus = tmp_path / "one_line.txt"
    corpus.write_text(" ".join(lee_path.read_text().split()) + "\n")
    started = []
    with pytest.raises(ValueError, match=r"E418.*has 1 line\(s\).*held-out token file"):
        train(corpus, tmp_path / "out", None, FAST, on_start=started.append)
    assert not started
    # with a held-out file, or without the head, it trains
    held = tmp_path / "held.txt"
    held.write_text("\n".join(lee_path.read_text().splitlines()[:50]) + "\n")
    model = train(corpus, tmp_path / "out", None, FAST, heldout_path=held)
    assert model.trained_head is not None


def test_train_overrides_and_save_gensim(lee_path: Path, tmp_path: Path):
    overrides = {**FAST, "word2vec.sg": 1, "word2vec.window": 2, "word2vec.min_count": 5}
    model = train(lee_path, tmp_path, DEFAULT_CFG, overrides, save_gensim=True)
    assert model.settings["sg"] == 1 and model.settings["window"] == 2
    assert model.settings["word2vec"]["min_count"] == 5
    assert min(model.counts) >= 5
    gensim_model = Word2Vec.load(str(tmp_path / GENSIM_FILE))
    assert gensim_model.wv.index_to_key == model.words
    np.testing.assert_array_equal(gensim_model.wv.vectors, model.vectors)
    np.testing.assert_array_equal(gensim_model.syn1[: len(model) - 1], model.inner_node_weights)
    # The pickle sits beside the HS model directory, never inside it.
    assert not any(p.suffix == ".model" for p in (tmp_path / MODEL_DIR).iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_DIR, GENSIM_FILE])


def test_train_replaces_an_earlier_model(lee_path: Path, tmp_path: Path):
    train(lee_path, tmp_path, None, FAST)
    model = train(lee_path, tmp_path, None, {**FAST, "word2vec.vector_size": 8})
    assert HSModel.from_disk(tmp_path / MODEL_DIR).vector_size == 8 == model.vector_size
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_DIR]


@pytest.mark.parametrize(
    "corpus, heldout, pattern",
    [
        ("missing.txt", None, "Corpus file .*missing.txt does not exist"),
        ("empty.txt", None, "Corpus file .*empty.txt has no tokens"),
        ("latin1.txt", None, r"not UTF-8 \(line 2"),
        ("lee", "missing.txt", "Held-out file .*missing.txt does not exist"),
    ],
)
def test_train_bad_inputs_fail_before_training(
    tmp_path: Path, lee_path: Path, corpus: str, heldout: str | None, pattern: str
):
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "latin1.txt").write_bytes("one two\ncaf\xe9 au lait\n".encode("latin1"))
    corpus_path = lee_path if corpus == "lee" else tmp_path / corpus
    heldout_path = None if heldout is None else tmp_path / heldout
    with pytest.raises((ValueError, OSError), match=pattern):
        train(corpus_path, tmp_path / "out", None, FAST, heldout_path=heldout_path)
    assert not (tmp_path / "out").exists()


def test_train_output_is_a_file(lee_path: Path, tmp_path: Path):
    (tmp_path / "out").write_text("")
    with pytest.raises(ValueError, match="Output directory .* is a file"):
        train(lee_path, tmp_path / "out", None, FAST)


def test_train_never_overwrites_other_data(lee_path: Path, tmp_path: Path):
    (tmp_path / MODEL_DIR).mkdir()
    (tmp_path / MODEL_DIR / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not an spacy-hs model directory"):
        train(lee_path, tmp_path, None, FAST)
    assert (tmp_path / MODEL_DIR / "notes.txt").read_text() == "mine"


def test_training_with_the_head_off_never_imports_the_head_trainer(lee_path: Path, tmp_path):
    """With ``head.enabled = false`` the head's trainer (its module, its compiled kernels) is
    never imported; the same probe sees it once a head is trained."""
    trainer = ("spacy_hs.training.head", "spacy_hs._head_train")
    code = (
        "import sys; from spacy_hs.training.train import train; "
        f"loaded = lambda: [m for m in sys.modules if m in {trainer!r}]; "
        f"train({str(lee_path)!r}, sys.argv[1], {str(DEFAULT_CFG)!r}, "
        f"{{**{FAST!r}, 'head.enabled': False}}); print('loaded:', loaded()); "
        f"train({str(lee_path)!r}, sys.argv[2], {str(DEFAULT_CFG)!r}, "
        f"{{**{FAST!r}, 'head.epochs': 1}}); print('loaded:', loaded())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "off"), str(tmp_path / "on")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    off, on = [line for line in result.stdout.splitlines() if line.startswith("loaded:")]
    assert off == "loaded: []"
    assert "'spacy_hs.training.head'" in on and "'spacy_hs._head_train'" in on


def test_train_with_head(lee_path: Path, tmp_path: Path):
    overrides = {**FAST, "head.enabled": True, "head.epochs": 1, "head.progress": False}
    with pytest.raises(ValueError, match="Unknown setting head.progress"):
        train(lee_path, tmp_path, None, overrides)
    del overrides["head.progress"]
    model = train(lee_path, tmp_path, None, overrides)
    assert model.trained_head is not None and model.meta["head_seconds"] > 0
    assert math.isfinite(model.log_prob_next("minister", ["the", "prime"]))


# -- command line ---------------------------------------------------------------------------


def test_cli_train(lee_path: Path, tmp_path: Path):
    args = ["train", str(lee_path), str(tmp_path), "--config", str(DEFAULT_CFG), *FAST_ARGS]
    args += ["--word2vec.sample", "0.0005"]
    result = run_cli(*args, "--word2vec.window=3", "--save-gensim")
    assert result.exit_code == 0, result.output
    assert "2/2" in result.output and "words/s" in result.output
    model = HSModel.from_disk(tmp_path / MODEL_DIR)
    assert model.settings["window"] == 3 and len(model.meta["loss_history"]) == 2
    assert model.settings["word2vec"]["sample"] == 0.0005
    assert (tmp_path / GENSIM_FILE).is_file()


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--word2vec.hs", "0"], "hs = 1"),
        (["--word2vec.negative", "5"], "set it to 0"),
        (["--word2vec.min_count", "1000000"], "--word2vec.min_count"),
        (["--word2vec.size", "5"], "Valid settings in [word2vec]"),
        (["--epochs", "5"], "Did you mean --word2vec.epochs?"),
        (["--word2vec.epochs"], "word2vec.epochs must be a positive integer, got True"),
        (["extra"], "Unexpected argument 'extra'"),
        (["--head.enabled", "yes"], "head.enabled must be true or false"),
    ],
)
def test_cli_train_errors(lee_path: Path, tmp_path: Path, extra: list[str], pattern: str):
    result = run_cli("train", str(lee_path), str(tmp_path), *FAST_ARGS, *extra)
    assert result.exit_code == 1
    assert pattern in " ".join(result.output.split())
    assert not (tmp_path / MODEL_DIR).exists()


def test_cli_train_help_names_the_layout():
    result = run_cli("train", "--help")
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "OUTPUT_DIR/hs_model" in text and "pickle" in text and "--word2vec.epochs" in text


def test_train_without_the_loss_sample(lee_path: Path, tmp_path: Path):
    """loss_sample = 0 skips the per-epoch loss: the meta records None (JSON has no NaN)."""
    model = train(
        lee_path, tmp_path, None, {**FAST, "training.loss_sample": 0, "head.enabled": False}
    )
    assert model.meta["loss_history"] == [None, None]
    saved = HSModel.from_disk(tmp_path / MODEL_DIR)
    assert [epoch["loss"] for epoch in saved.meta["epochs"]] == [None, None]
