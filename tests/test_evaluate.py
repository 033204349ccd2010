"""Tests of evaluate.py and `spacy-hs evaluate`, on models trained on most of the Lee corpus and
evaluated on the rest."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import srsly
from conftest import CliRun, run_cli, train_lee
from gensim.models.callbacks import CallbackAny2Vec

from spacy_hs import HSModel
from spacy_hs.corpus.sources import gensim_test_data
from spacy_hs.errors import MissingModelFileError, SpacyHSError
from spacy_hs.evaluation.evaluate import evaluate
from spacy_hs.evaluation.next_word import next_word_metrics
from spacy_hs.evaluation.plots import write_plots
from spacy_hs.heads.directional import DirectionalHead

N_TRAIN_LINES = 250  # of the Lee corpus's 300 documents, one per line; the rest is held out
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class EpochLoss(CallbackAny2Vec):
    """Each epoch's own loss (gensim's is cumulative within a train() call)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.total = 0.0

    def on_epoch_end(self, model) -> None:
        latest = model.get_latest_training_loss()
        self.losses.append(latest - self.total)
        self.total = latest


@pytest.fixture(scope="module")
def lee_split(lee_path: Path, tmp_path_factory) -> tuple[Path, Path]:
    lines = lee_path.read_text(encoding="utf8").splitlines(keepends=True)
    root = tmp_path_factory.mktemp("lee_split")
    train, heldout = root / "train.txt", root / "heldout.txt"
    train.write_text("".join(lines[:N_TRAIN_LINES]), encoding="utf8")
    heldout.write_text("".join(lines[N_TRAIN_LINES:]), encoding="utf8")
    return train, heldout


@pytest.fixture(scope="module")
def small_heldout(lee_split, tmp_path_factory) -> Path:
    """Three held-out documents: few enough positions to recompute everything independently."""
    path = tmp_path_factory.mktemp("small") / "small.txt"
    path.write_text("".join(lee_split[1].read_text("utf8").splitlines(True)[:3]), "utf8")
    return path


@pytest.fixture(scope="module")
def trained(lee_split, tmp_path_factory) -> dict[str, Path]:
    """An HS model directory (with its per-epoch loss) and gensim models with and without
    negative sampling, all trained on the training split."""
    train, _ = lee_split
    root = tmp_path_factory.mktemp("models")
    losses = EpochLoss()
    hs = train_lee(corpus_file=str(train), hs=1, negative=0, compute_loss=True, callbacks=[losses])
    model = HSModel.from_gensim(hs)
    model.meta["loss_history"] = losses.losses
    model.to_disk(root / "hs_model")
    hs.save(str(root / "hs.gensim"))
    train_lee(corpus_file=str(train), hs=1, negative=5).save(str(root / "ns.gensim"))
    return {"model": root / "hs_model", "hs": root / "hs.gensim", "ns": root / "ns.gensim"}


@pytest.fixture(scope="module")
def full_run(trained, lee_split, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("run")
    metrics = evaluate(
        trained["model"],
        lee_split[1],
        out / "metrics.json",
        out / "plots",
        gensim_model=trained["ns"],
        max_positions=1000,
        show_progress=False,
    )
    return metrics, out


def scored_positions(path: Path, model: HSModel) -> list[tuple[list[str], str]]:
    """(words before t in its sentence, word at t) for every position the evaluation scores,
    computed straight from the definition."""
    positions = []
    for line in path.read_text("utf8").splitlines():
        tokens = line.split()
        for t, word in enumerate(tokens):
            if word in model and any(w in model for w in tokens[:t]):
                positions.append((tokens[:t], word))
    return positions


def run_evaluate(*args: object) -> CliRun:
    return run_cli("evaluate", *args)


# -- the metrics ------------------------------------------------------------------------------


def test_metrics_json_has_keys_and_sane_values(full_run, trained):
    metrics, out = full_run
    assert srsly.read_json(out / "metrics.json") == srsly.json_loads(srsly.json_dumps(metrics))
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    n_words = metrics["model"]["n_words"]
    assert set(metrics) >= {"model", "loss", "analogies", "similarity", "next_word"}

    next_word = metrics["next_word"]
    excluded = next_word["excluded"]
    n_excluded = excluded["oov_target"] + excluded["no_known_context"]
    assert next_word["n_scored"] + n_excluded == next_word["n_tokens"]
    assert 0 < next_word["coverage"] <= 1
    assert next_word["coverage"] == pytest.approx(next_word["n_scored"] / next_word["n_tokens"])
    predictors = next_word["predictors"]
    assert set(predictors) == {"cbow", "unigram", "gensim_predict_output_word"}
    for name in ("cbow", "unigram", "gensim_predict_output_word"):
        result = predictors[name]
        assert 0 <= result["hit_at_1"] <= result["hit_at_10"] <= 1, name
        assert result["perplexity"] > 1, name
    assert predictors["cbow"]["n_scored"] == predictors["unigram"]["n_scored"]
    assert predictors["cbow"]["n_scored"] == next_word["n_scored"]
    # A trained model does better than a uniform guess over the vocabulary.
    assert predictors["cbow"]["perplexity"] < n_words
    assert predictors["cbow"]["context_size"] == 4

    analogies = metrics["analogies"]
    assert analogies["case_insensitive"] is True  # no normaliser settings: gensim's default
    assert 0 < analogies["n_covered"] < analogies["n_total"]
    questions = (gensim_test_data() / "questions-words.txt").read_text("utf8").splitlines()
    assert analogies["n_total"] == sum(1 for q in questions if not q.startswith(":"))
    assert 0 <= analogies["accuracy"] <= 1
    assert analogies["coverage"] == pytest.approx(analogies["n_covered"] / analogies["n_total"])
    for name, n_total in (("wordsim353", 353), ("simlex999", 999)):
        similarity = metrics["similarity"][name]
        assert similarity["n_total"] == n_total
        assert 0 < similarity["n_covered"] < n_total
        assert similarity["coverage"] == pytest.approx(1 - similarity["oov_ratio"])
        assert -1 <= similarity["spearman"] <= 1

    loss = metrics["loss"]["per_epoch"]
    assert len(loss) == 3 and all(x > 0 for x in loss)


def test_loss_history_passes_through(full_run, trained):
    model = HSModel.from_disk(trained["model"])
    assert full_run[0]["loss"]["per_epoch"] == pytest.approx(model.meta["loss_history"])


def test_unigram_baseline_matches_an_independent_computation(full_run, lee_split, trained):
    model = HSModel.from_disk(trained["model"])
    positions = scored_positions(lee_split[1], model)
    count = dict(zip(model.words, model.counts.tolist()))
    total = sum(count.values())
    ranked = sorted(model.words, key=lambda w: -count[w])
    mean_nll = -sum(math.log(count[w] / total) for _, w in positions) / len(positions)
    unigram = full_run[0]["next_word"]["predictors"]["unigram"]
    assert unigram["n_scored"] == len(positions)
    assert unigram["perplexity"] == pytest.approx(math.exp(mean_nll), rel=1e-9)
    assert unigram["hit_at_1"] == pytest.approx(
        sum(w == ranked[0] for _, w in positions) / len(positions)
    )
    assert unigram["hit_at_10"] == pytest.approx(
        sum(w in ranked[:10] for _, w in positions) / len(positions)
    )


def test_exclusions_follow_the_definition(hs_model, tmp_path):
    known = hs_model.words[:3]
    path = tmp_path / "tiny.txt"
    # Line 1: an unknown word, a known word with nothing known before it, then one scored.
    # Line 2: the context never crosses the sentence boundary, so its only word is not scored.
    path.write_text(f"qqqunknownqqq {known[0]} {known[1]}\n\n{known[2]}\n", "utf8")
    result = next_word_metrics(hs_model, path, show_progress=False)
    assert result["n_sentences"] == 2 and result["n_tokens"] == 4
    assert result["excluded"] == {"oov_target": 1, "no_known_context": 2}
    assert result["n_scored"] == 1 and result["coverage"] == 0.25
    expected = hs_model.log_prob_next(known[1], [known[0]], head="cbow")
    assert result["predictors"]["cbow"]["perplexity"] == pytest.approx(math.exp(-expected))


@pytest.mark.parametrize("head", ["cbow", "directional"])
def test_heads_match_the_public_prediction_api(trained, small_heldout, head):
    """The batched, chunked evaluation equals scoring each position with predict_next and
    log_prob_next."""
    model = HSModel.from_disk(trained["model"])
    if head == "directional":
        model.trained_head = DirectionalHead.from_hs_model(
            model, context_size=2, diagonal=True, fine_tune_vectors=True
        )
    positions = scored_positions(small_heldout, model)
    contexts = [context for context, _ in positions]
    targets = [word for _, word in positions]
    top = model.predict_next_batch(contexts, top_k=10, head=head)
    log_probs = model.log_prob_next_batch(targets, contexts, head=head)
    hit_1 = np.mean([ranked[0][0] == w for ranked, w in zip(top, targets)])
    hit_10 = np.mean([w in [x for x, _ in ranked] for ranked, w in zip(top, targets)])
    for chunk_size in (4096, 7):
        result = next_word_metrics(model, small_heldout, chunk_size=chunk_size, show_progress=False)
        metrics = result["predictors"][head]
        assert metrics["n_scored"] == len(positions)
        assert metrics["hit_at_1"] == pytest.approx(hit_1)
        assert metrics["hit_at_10"] == pytest.approx(hit_10)
        assert metrics["perplexity"] == pytest.approx(math.exp(-np.mean(log_probs)), rel=1e-5)
    assert ("directional" in result["predictors"]) == (head == "directional")
    if head == "directional":
        assert metrics["context_size"] == 2
        # Also measured on every known word, a sentence's first one included (P(w | start)).
        every = metrics["with_sentence_starts"]
        firsts = sentence_starts(small_heldout, model)
        start_log_probs = model.log_prob_next_batch(firsts, [[] for _ in firsts], head=head)
        all_log_probs = np.concatenate([log_probs, start_log_probs])
        assert every["n_scored"] == len(positions) + len(firsts)
        assert every["perplexity"] == pytest.approx(math.exp(-np.mean(all_log_probs)), rel=1e-5)
    else:
        assert "with_sentence_starts" not in metrics


def sentence_starts(path, model):
    """The first known word of each line of a token file."""
    firsts = []
    for line in Path(path).read_text(encoding="utf8").splitlines():
        known = [w for w in line.split() if w in model]
        if known:
            firsts.append(known[0])
    return firsts


# -- gensim's predict_output_word ---------------------------------------------------------------


def test_gensim_baseline_matches_gensim_itself(trained, small_heldout):
    """Hits from predict_output_word's top 10; perplexity equal to the target probabilities
    gensim itself returns when asked for the whole distribution (topn = V)."""
    from gensim.models import Word2Vec

    model = HSModel.from_disk(trained["model"])
    gensim = Word2Vec.load(str(trained["ns"]))
    vocab, n_words = gensim.wv.key_to_index, len(gensim.wv)
    hits_1, hits_10, log_probs = [], [], []
    for context, word in scored_positions(small_heldout, model):
        context = [w for w in context if w in vocab][-gensim.window :]
        if not context or word not in vocab:
            continue
        ranked = gensim.predict_output_word(context, topn=n_words)
        words = [w for w, _ in ranked]
        hits_1.append(words[0] == word)
        hits_10.append(word in words[:10])
        log_probs.append(math.log(dict(ranked)[word]))
    result = next_word_metrics(
        model, small_heldout, gensim_model=gensim, max_positions=10**6, show_progress=False
    )["predictors"]["gensim_predict_output_word"]
    assert result["available"] and not result["sampled"]
    assert result["n_scored"] == len(log_probs) > 100
    assert result["hit_at_1"] == pytest.approx(np.mean(hits_1))
    assert result["hit_at_10"] == pytest.approx(np.mean(hits_10))
    assert result["perplexity"] == pytest.approx(math.exp(-np.mean(log_probs)), rel=1e-4)
    assert result["same_positions"]["cbow"]["n_scored"] == result["n_scored"]


def test_gensim_baseline_is_sampled_with_a_cap(full_run):
    result = full_run[0]["next_word"]["predictors"]["gensim_predict_output_word"]
    assert result["available"] and result["sampled"] and result["negative"] == 5
    assert result["n_sampled"] == 1000 < result["n_scored_positions_total"]
    assert result["n_scored"] <= 1000
    assert "sample of 1000" in result["note"]
    same = result["same_positions"]["cbow"]
    assert same["n_scored"] == result["n_scored"]
    assert 0 <= same["hit_at_1"] <= same["hit_at_10"] <= 1


def test_gensim_baseline_unavailable_without_negative_sampling(trained, small_heldout):
    metrics = evaluate(
        trained["model"], small_heldout, gensim_model=trained["hs"], show_progress=False
    )
    result = metrics["next_word"]["predictors"]["gensim_predict_output_word"]
    assert result["available"] is False
    assert "negative=0" in result["reason"] and "negative sampling" in result["reason"]
    assert "hit_at_1" not in result


def test_gensim_baseline_reported_absent_when_not_given(full_run, trained, small_heldout):
    model = HSModel.from_disk(trained["model"])
    result = next_word_metrics(model, small_heldout, show_progress=False)
    assert result["predictors"]["gensim_predict_output_word"] == {
        "available": False,
        "reason": "no gensim model given (--gensim-model)",
    }


# -- plots -------------------------------------------------------------------------------------


def test_plots_are_written(full_run):
    metrics, out = full_run
    plots = sorted(Path(p).name for p in metrics["plots"])
    assert plots == ["loss.png", "next_word.png"]
    for name in plots:
        data = (out / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert not [p for p in (out / "plots").iterdir() if p.suffix != ".png"]


def test_no_loss_history_means_no_loss_plot(hs_model, small_heldout, tmp_path):
    hs_model.to_disk(tmp_path / "model")  # built by hand: no loss_history in its meta
    with pytest.warns(UserWarning, match="no loss_history"):
        metrics = evaluate(
            tmp_path / "model", small_heldout, plots_dir=tmp_path / "plots", show_progress=False
        )
    assert metrics["loss"]["per_epoch"] is None and "loss_history" in metrics["loss"]["note"]
    assert [Path(p).name for p in metrics["plots"]] == ["next_word.png"]


def test_plots_skipped_with_install_hint_without_matplotlib(full_run, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import matplotlib...` fail
    with pytest.warns(UserWarning, match=r'pip install "spacy-hs\[plots\]"'):
        assert write_plots(full_run[0], tmp_path / "plots") == []
    assert not (tmp_path / "plots").exists()


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, error, match",
    [
        (None, FileNotFoundError, "does not exist"),
        ("", SpacyHSError, "has no tokens"),
        ("\n  \n\t\n", SpacyHSError, "has no tokens"),
        ("qqqx qqqy qqqz\n", SpacyHSError, "No position"),
        (b"caf\xe9 the\n", SpacyHSError, "not UTF-8"),
    ],
)
def test_bad_heldout_files(trained, tmp_path, content, error, match):
    path = tmp_path / "heldout.txt"
    if isinstance(content, str):
        path.write_text(content, "utf8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        evaluate(trained["model"], path, tmp_path / "m.json", show_progress=False)
    assert not (tmp_path / "m.json").exists()


def test_bad_options(trained, small_heldout, tmp_path):
    with pytest.raises(MissingModelFileError):
        evaluate(tmp_path / "nope", small_heldout, show_progress=False)
    with pytest.raises(SpacyHSError, match="max_positions"):
        evaluate(trained["model"], small_heldout, max_positions=0)
    with pytest.raises(SpacyHSError, match="Cannot load .* as a gensim Word2Vec"):
        evaluate(trained["model"], small_heldout, gensim_model=small_heldout)
    with pytest.raises(FileNotFoundError, match="gensim model file"):
        evaluate(trained["model"], small_heldout, gensim_model=tmp_path / "missing.model")
    with pytest.raises(FileNotFoundError, match="--analogies file"):
        evaluate(trained["model"], analogies=tmp_path / "missing.txt")
    with pytest.raises(SpacyHSError, match="is a directory"):
        evaluate(trained["model"], output=tmp_path)


def test_normaliser_mismatch_warns(trained, small_heldout, tmp_path):
    model = HSModel.from_disk(trained["model"])
    model.settings["normalizer"] = {"lowercase": True, "punct": "drop"}
    heldout = tmp_path / "h.txt"
    heldout.write_text(small_heldout.read_text("utf8"), "utf8")
    srsly.write_json(str(heldout) + ".meta.json", {"normalizer": {"lowercase": False}})
    with pytest.warns(UserWarning, match="normalised with"):
        next_word_metrics(model, heldout, show_progress=False)


def test_analogies_follow_the_models_lowercasing(trained, tmp_path):
    """A cased vocabulary is matched case-sensitively, a lowercased one case-insensitively."""
    model = HSModel.from_disk(trained["model"])
    questions = tmp_path / "q.txt"
    # Capitalised words whose lowercase form is not in the vocabulary.
    words = [w for w in model.words if w.istitle() and w.lower() not in model][:4]
    questions.write_text(": s\n" + " ".join(words) + "\n" + " ".join(words).lower() + "\n")
    for lowercase, covered in ((False, 1), (True, 2)):
        model.settings["normalizer"] = {"lowercase": lowercase}
        model.to_disk(tmp_path / "model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate(tmp_path / "model", analogies=questions)["analogies"]
        assert result["case_insensitive"] is lowercase
        assert (result["n_covered"], result["n_total"]) == (covered, 2)


# -- the command line -------------------------------------------------------------------------


def test_cli_prints_tables_and_writes_outputs(trained, lee_split, tmp_path):
    result = run_evaluate(
        trained["model"],
        "--heldout", lee_split[1],
        "--output", tmp_path / "metrics.json",
        "--plots", tmp_path / "plots",
        "--gensim-model", trained["ns"],
        "--max-positions", 300,
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("hit@1", "HS cbow head", "unigram baseline", "predict_output_word",
                 "questions-words.txt", "simlex999.txt", "coverage", "Wrote metrics"):  # fmt: skip
        assert text in result.output
    metrics = srsly.read_json(tmp_path / "metrics.json")
    assert metrics["next_word"]["predictors"]["gensim_predict_output_word"]["n_sampled"] == 300
    assert (tmp_path / "plots" / "next_word.png").read_bytes().startswith(PNG_MAGIC)


def test_cli_skips_the_vector_tests_on_request(trained, small_heldout, tmp_path):
    """--no-vectors leaves out analogies and similarity (most of evaluate's time), and
    next-word prediction is the same as with them."""
    result = run_evaluate(
        trained["model"], "--heldout", small_heldout, "--no-vectors", "--no-progress",
        "--output", tmp_path / "metrics.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Word vectors: skipped" in result.output and "questions-words" not in result.output
    metrics = srsly.read_json(tmp_path / "metrics.json")
    assert metrics["analogies"] is None and metrics["similarity"] is None
    full = evaluate(trained["model"], small_heldout, show_progress=False)
    assert metrics["next_word"] == srsly.json_loads(srsly.json_dumps(full["next_word"]))


def test_cli_reports_unavailable_gensim_baseline(trained, small_heldout):
    result = run_evaluate(
        trained["model"], "--heldout", small_heldout, "--gensim-model", trained["hs"],
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "not measured" in result.output and "negative=0" in result.output


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing model", "Missing model file"),
        ("not a model", "not an spacy-hs model directory"),
        ("missing heldout", "does not exist"),
        ("empty heldout", "has no tokens"),
        ("bad max positions", "max_positions must be a positive integer"),
    ],
)
def test_cli_bad_inputs_fail_cleanly(trained, tmp_path, case, match):
    model, heldout, extra = trained["model"], tmp_path / "heldout.txt", []
    heldout.write_text("the of\n", "utf8")
    if case == "missing model":
        model = tmp_path / "no_model"
    elif case == "not a model":
        model = tmp_path
    elif case == "missing heldout":
        heldout = tmp_path / "missing.txt"
    elif case == "empty heldout":
        heldout.write_text("", "utf8")
    else:
        extra = ["--max-positions", "0"]
    result = run_evaluate(model, "--heldout", heldout, "--no-progress", *extra)
    assert result.exit_code == 1
    assert match in " ".join(result.output.split())  # the message, however it was wrapped
    assert "Traceback" not in result.output


# -- the document cache -------------------------------------------------------------------------


def cached_expectation(model: HSModel, documents: list[list[list[str]]]) -> tuple[float, float]:
    """hit@1 and perplexity of the trained head with the saved cache on the positions the
    evaluation scores, each document read on its own through ``HSModel.document``."""
    log_probs, hits = [], []
    for sentences in documents:
        ids = np.array([model.key_to_index.get(w, -1) for s in sentences for w in s], np.int32)
        document = model.document(ids, [len(s) for s in sentences], unknown=None)
        all_log_probs = document.log_probs()
        positions = []
        t = 0
        for sentence in sentences:
            for i, word in enumerate(sentence):
                if word in model and any(w in model for w in sentence[:i]):
                    positions.append(t + i)
            t += len(sentence)
        top_ids, _ = document.top_k_at(np.array(positions), 10)
        log_probs += all_log_probs[positions].tolist()
        hits += (top_ids[:, 0] == ids[positions]).tolist()
    return float(np.mean(hits)), math.exp(-np.mean(log_probs))


def test_the_cache_row_beside_the_head(trained, small_heldout, tmp_path):
    model = HSModel.from_disk(trained["model"])
    model.trained_head = DirectionalHead.from_hs_model(
        model, context_size=2, diagonal=True, fine_tune_vectors=True
    )
    model.settings["cache"] = {"size": 40, "weight": 0.25}
    sentences = [line.split() for line in small_heldout.read_text("utf8").splitlines()]
    # Unmarked: the whole file is one document; marked: each line is one.
    marked = tmp_path / "marked.txt"
    marked.write_text("".join(" ".join(s) + "\n\n" for s in sentences), "utf8")
    for path, documents in ((small_heldout, [sentences]), (marked, [[s] for s in sentences])):
        hit_1, perplexity = cached_expectation(model, documents)
        for chunk_size in (4096, 7):
            result = next_word_metrics(model, path, chunk_size=chunk_size, show_progress=False)
            assert result["n_documents"] == len(documents)
            predictors = result["predictors"]
            head, cached = predictors["directional"], predictors["directional+cache"]
            assert cached["cache"] == {"size": 40, "weight": 0.25}
            assert cached["n_scored"] == head["n_scored"] == result["n_scored"]
            assert cached["hit_at_1"] == pytest.approx(hit_1)
            assert cached["perplexity"] == pytest.approx(perplexity, rel=1e-6)
            assert cached["perplexity"] != head["perplexity"]
    # No saved cache: no cache row.
    del model.settings["cache"]
    result = next_word_metrics(model, small_heldout, show_progress=False)
    assert not [name for name in result["predictors"] if name.endswith("+cache")]


def test_one_long_line_stays_flat(trained, lee_split, tmp_path):
    """A held-out file that is one long line kept a cache window per position (5M tokens grew
    past 6.4 GB); its top-k queries are now answered a bounded number at a time, so its peak
    is close to that of the same tokens in short lines."""
    import tracemalloc

    model = HSModel.from_disk(trained["model"])
    model.trained_head = DirectionalHead.from_hs_model(
        model, context_size=2, diagonal=False, fine_tune_vectors=False
    )
    model.settings["cache"] = {"size": 40, "weight": 0.25}
    tokens = lee_split[1].read_text("utf8").split()
    tokens = (tokens * (1 + 40_000 // len(tokens)))[:40_000]
    one_line, short_lines = tmp_path / "one_line.txt", tmp_path / "short_lines.txt"
    one_line.write_text(" ".join(tokens) + "\n", "utf8")
    short_lines.write_text(
        "".join(" ".join(tokens[i : i + 20]) + "\n" for i in range(0, len(tokens), 20)), "utf8"
    )
    peaks = {}
    for path in (one_line, short_lines):
        tracemalloc.start()
        try:
            result = next_word_metrics(model, path, chunk_size=4096, show_progress=False)
            peaks[path.stem] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result["n_tokens"] == len(tokens)
    assert peaks["one_line"] < 2 * peaks["short_lines"] + 8_000_000, peaks
