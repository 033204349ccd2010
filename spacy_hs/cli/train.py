"""`spacy-hs train`: gensim Word2Vec with hierarchical softmax, then an HS model directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from wasabi import msg

from ..errors import ConfigError, Errors
from ._util import Arg, Command, Opt, app

# Settings overrides (--word2vec.epochs 10) arrive as extra arguments, as in `spacy train`.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


class _TrainCommand(Command):
    """``train --help`` ends with every setting that ``--SECTION.KEY VALUE`` overrides, read
    from the registered settings functions (so it follows them), with its default."""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        from ..training.config import FUNCTION_KEY, default_config

        config = default_config()
        rows = []
        for section, values in config.items():
            settings = [
                f"{key}={_show(value)}" for key, value in values.items() if key != FUNCTION_KEY
            ]
            rows.append((f"--{section}.KEY", ", ".join(settings)))
        with formatter.section("Config overrides (--SECTION.KEY VALUE; defaults shown)"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


def _show(value: Any) -> str:
    import srsly

    return value if isinstance(value, str) else srsly.json_dumps(value)


@app.command("train", context_settings=OVERRIDES, cls=_TrainCommand)
def train_cli(
    ctx: typer.Context,
    corpus_path: Annotated[
        Path,
        Arg(
            metavar="CORPUS",
            help="Token file: one sentence per line, tokens separated by spaces, UTF-8 (the "
            "output of `spacy-hs preprocess`). The language and normalizer settings in its "
            "<file>.meta.json, if present, are stored with the model.",
            show_default=False,
        ),
    ],
    output_dir: Annotated[
        Path,
        Arg(
            metavar="OUTPUT_DIR",
            help="Output directory. The HS model is written to OUTPUT_DIR/hs_model (replaced "
            "atomically if it exists).",
            show_default=False,
        ),
    ],
    config_path: Annotated[
        Path | None,
        Opt(
            "--config",
            "-c",
            help="Training config (confection format), e.g. configs/default.cfg. Without it the "
            "built-in defaults are used, which are the values in configs/default.cfg.",
            show_default=False,
        ),
    ] = None,
    heldout_path: Annotated[
        Path | None,
        Opt(
            "--heldout",
            help="Held-out token file for the next-word head's early stopping, when the head "
            "is enabled (--head.enabled true); without it the head holds out part of the corpus.",
            show_default=False,
        ),
    ] = None,
    save_gensim: Annotated[
        bool,
        Opt(
            "--save-gensim",
            help="Also save the gensim Word2Vec model to OUTPUT_DIR/word2vec.model, e.g. to "
            "train it further. It is a Python pickle for use with gensim only (Word2Vec.load); "
            "load it only if you trust its source. The HS model never uses pickle.",
        ),
    ] = False,
) -> None:
    """Train Word2Vec with hierarchical softmax (and the next-word head) on a token file.

    Writes the HS model to OUTPUT_DIR/hs_model (gensim: hs=1, negative=0).

    Override any config setting as `spacy train` does: --word2vec.epochs 10 --word2vec.min_count 5.

    Each epoch prints its own loss: the exact mean -log P(word | context), in nats, on a sample.
    """
    from ..training.train import MODEL_DIR, train
    from ..training.word2vec import EpochReport, Word2VecResult

    overrides = parse_overrides(ctx.args)
    widths = (7, 10, 9, 12)
    aligns = ("r", "r", "r", "r")

    def on_vocab(result: Word2VecResult) -> None:
        msg.info(
            f"Corpus: {result.sentences:,} sentences, {result.words:,} words; vocabulary "
            f"{result.vocab_size:,} words ({result.vocab_seconds:.1f} s)"
        )
        if result.loss_sample_size:
            msg.text(f"Loss measured on {result.loss_sample_size:,} training examples")
        msg.row(("epoch", "loss", "seconds", "words/s"), widths=widths, aligns=aligns)
        msg.row(("-" * w for w in widths), widths=widths, aligns=aligns)

    def on_epoch(report: EpochReport) -> None:
        loss = "-" if math.isnan(report.loss) else f"{report.loss:.4f}"
        row = (
            f"{report.epoch}/{report.epochs}",
            loss,
            f"{report.seconds:.2f}",
            f"{report.words_per_second:,.0f}",
        )
        msg.row(row, widths=widths, aligns=aligns)

    def on_start(params: dict[str, Any]) -> None:
        mode = "skip-gram" if params["sg"] else "CBOW"
        msg.info(
            f"Training gensim Word2Vec ({mode}, hs=1, {params['vector_size']} dims, window "
            f"{params['window']}, {params['epochs']} epochs, {params['workers']} workers) on "
            f"{corpus_path}"
        )

    model = train(
        corpus_path,
        output_dir,
        config=config_path,
        overrides=overrides,
        heldout_path=heldout_path,
        save_gensim=save_gensim,
        on_vocab=on_vocab,
        on_epoch=on_epoch,
        on_status=msg.text,
        on_start=on_start,
    )
    meta = model.meta
    head = f", head {meta['head_seconds']:.1f} s" if "head_seconds" in meta else ""
    msg.good(
        f"Trained: gensim {meta['train_seconds']:.1f} s ({meta['words_per_second']:,.0f} "
        f"words/s){head}; HS model with {len(model):,} words in {output_dir / MODEL_DIR}"
    )


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Config overrides from extra command-line arguments, as ``spacy train`` reads them:
    ``--section.key value``, ``--section.key=value``, or a bare ``--section.key`` for true;
    dashes in names become underscores.
    Values are parsed as JSON where they can be (10, 0.5, true, null), else kept as strings.

    (spaCy's own parser raises click's NoSuchOption, which typer's bundled click does not
    catch, so a typo would end in a traceback.)
    """
    import srsly

    from ..training.config import SECTIONS, settings_names

    overrides: dict[str, Any] = {}
    args = list(args)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            raise ConfigError(Errors.E167.format(arg=arg))
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif args and not args[0].startswith("--"):
            value = args.pop(0)
        else:
            value = "true"
        name = name.replace("-", "_")  # --word2vec.vector-size is --word2vec.vector_size
        if "." not in name:
            sections = [s for s in SECTIONS if name in settings_names(s)]
            hint = f" Did you mean --{sections[0]}.{name}?" if sections else ""
            raise ConfigError(Errors.E168.format(arg=arg, hint=hint))
        try:
            overrides[name] = srsly.json_loads(value)
        except ValueError:
            overrides[name] = value
    return overrides
