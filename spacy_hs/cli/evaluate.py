"""`spacy-hs evaluate`: analogies, similarity, next-word prediction and loss of a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from wasabi import msg

from ..evaluation.evaluate import evaluate
from ..evaluation.next_word import DEFAULT_MAX_POSITIONS
from ..evaluation.plots import head_label
from ._util import Arg, Opt, app, library_warnings

# The baselines; a head is labelled by its name (``head_label``).
PREDICTOR_LABELS = {
    "unigram": "unigram baseline",
    "gensim_predict_output_word": "gensim predict_output_word (NS)",
}


@app.command("evaluate")
def evaluate_cli(
    model_dir: Annotated[Path, Arg(help="HSModel directory written by `spacy-hs train`.")],
    heldout: Annotated[
        Path | None,
        Opt(
            "--heldout",
            help="Held-out token file (one sentence per line, as written by `spacy-hs "
            "preprocess`) for next-word hit@1, hit@10 and perplexity. Skipped if not given.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        Opt("--output", "-o", help="Write all metrics to this JSON file (atomically)."),
    ] = None,
    plots: Annotated[
        Path | None,
        Opt(
            "--plots",
            help="Directory for loss.png and next_word.png. Needs matplotlib, the 'plots' extra "
            "of spacy-hs; without it, plots are skipped with a warning.",
        ),
    ] = None,
    gensim_model: Annotated[
        Path | None,
        Opt(
            "--gensim-model",
            help="A gensim Word2Vec saved with .save() and trained with negative > 0, to compare "
            "with gensim's own predict_output_word. It is unpickled: pass only files you made.",
        ),
    ] = None,
    max_positions: Annotated[
        int,
        Opt(
            "--max-positions",
            help="Measure gensim's predict_output_word (O(V) per query) on a seeded random "
            "sample of at most this many held-out positions; the HS heads and the unigram "
            "baseline are measured on all of them.",
        ),
    ] = DEFAULT_MAX_POSITIONS,
    analogies: Annotated[
        Path | None,
        Opt(
            "--analogies",
            help="Analogy questions in word2vec's questions-words.txt format. Default: the file "
            "in gensim's test data.",
        ),
    ] = None,
    similarity: Annotated[
        list[Path] | None,
        Opt(
            "--similarity",
            help="Word-pair similarity file (word, word, score; tab-separated); repeat the "
            "option for several. Default: wordsim353.tsv and simlex999.txt from gensim's test "
            "data.",
        ),
    ] = None,
    vectors: Annotated[
        bool,
        Opt(
            "--vectors/--no-vectors",
            help="Run the word-vector tests (analogies, similarity); --no-vectors skips them, "
            "e.g. to measure next-word prediction only (the analogy test is most of the time).",
        ),
    ] = True,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Evaluate a model: analogies, similarity, held-out next-word prediction, loss.

    Next-word prediction is measured against a unigram baseline and, with --gensim-model,
    gensim's own predict_output_word.
    """
    with library_warnings():
        metrics = evaluate(
            model_dir,
            heldout,
            output,
            plots,
            gensim_model=gensim_model,
            max_positions=max_positions,
            analogies=analogies,
            similarity=similarity or None,
            show_progress=progress,
            vectors=vectors,
        )
    print_metrics(metrics)
    if output is not None:
        msg.good(f"Wrote metrics to {output}")
    for plot in metrics.get("plots", []):
        msg.good(f"Wrote plot {plot}")


def print_metrics(metrics: dict[str, Any]) -> None:
    """Tables of the metrics, for reading in a terminal."""
    model = metrics["model"]
    msg.divider(f"Model {model['path']}")
    msg.text(
        f"{model['n_words']} words, {model['vector_size']} dimensions, "
        f"{'skip-gram' if model['sg'] else 'CBOW'}, window {model['window']}, "
        f"trained head: {model['head'] or 'none'}"
    )
    loss = metrics["loss"]["per_epoch"]
    if loss:
        msg.text(f"Training loss per epoch: {', '.join(f'{x:.4g}' for x in loss)}")
    else:
        msg.text(f"Training loss: not available ({metrics['loss']['note']})")

    if metrics["analogies"] is not None:
        _print_vector_metrics(metrics)
    else:
        msg.text("Word vectors: skipped (--no-vectors).")

    next_word = metrics.get("next_word")
    if not next_word:
        msg.text("Next-word prediction: skipped (no --heldout file).")
        return
    msg.divider("Next-word prediction")
    excluded = next_word["excluded"]
    msg.text(
        f"{next_word['heldout']}: {next_word['n_tokens']} tokens in {next_word['n_sentences']} "
        f"sentences; {next_word['n_scored']} scored (coverage {next_word['coverage']:.1%}); "
        f"excluded: {excluded['oov_target']} out-of-vocabulary words, "
        f"{excluded['no_known_context']} with no known word before them in their sentence."
    )
    rows = []
    unavailable = None
    for name, result in next_word["predictors"].items():
        label = PREDICTOR_LABELS.get(name) or head_label(name)
        if "cache" in result:  # the trained head with the model's document cache
            cache = result["cache"]
            label = f"{head_label(result['head'])} + cache (N={cache['size']}, λ={cache['weight']})"
        if result.get("available") is False:
            unavailable = f"{label}: not measured, {result['reason']}"
            continue
        rows.append(_row(label, result))
        if "with_sentence_starts" in result:
            rows.append(_row(f"{label}, sentence starts too", result["with_sentence_starts"]))
        if name == "gensim_predict_output_word":
            for head, same in result["same_positions"].items():
                rows.append(_row(f"{head_label(head)}, same positions", same))
    msg.table(
        rows,
        header=("predictor", "positions", "hit@1", "hit@10", "perplexity"),
        aligns=("l", "r", "r", "r", "r"),
        divider=True,
        max_col=40,
    )
    gensim = next_word["predictors"].get("gensim_predict_output_word", {})
    if gensim.get("available"):
        msg.text(f"gensim: {gensim['note']}")
    elif unavailable:
        msg.text(unavailable)


def _print_vector_metrics(metrics: dict[str, Any]) -> None:
    msg.divider("Word vectors")
    rows = []
    analogies = metrics["analogies"]
    rows.append(
        (
            Path(analogies["file"]).name,
            "accuracy",
            _fmt(analogies["accuracy"]),
            f"{analogies['n_covered']}/{analogies['n_total']}",
        )
    )
    for result in metrics["similarity"].values():
        rows.append(
            (
                Path(result["file"]).name,
                "Spearman",
                _fmt(result["spearman"]),
                f"{result['n_covered']}/{result['n_total']}",
            )
        )
    msg.table(rows, header=("test", "metric", "score", "covered"), divider=True)



def _row(label: str, result: dict[str, Any]) -> tuple[str, ...]:
    perplexity = result["perplexity"]
    return (
        label,
        str(result["n_scored"]),
        _fmt(result["hit_at_1"]),
        _fmt(result["hit_at_10"]),
        f"{perplexity:.1f}" if perplexity is not None else "-",
    )


def _fmt(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"
