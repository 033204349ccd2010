"""Preprocessing throughput: `spacy_hs.corpus.preprocess` against plain `nlp.tokenizer.pipe`.

Both run on the same text files in the same run, alternating, each with a fresh
``spacy.blank(lang)`` (so both start with a cold tokenizer cache):

- baseline: read the lines, ``nlp.tokenizer.pipe`` them, consume each Doc; nothing written;
- spacy-hs: ``preprocess(...)``: read, tokenize, split sentences, normalise, write the token file
  and its meta.json.

Target: spacy-hs >= 85% of the baseline's tokens/s. The corpus defaults to the bundled default
corpus (Wikipedia sample + Lee, extracted into a temporary directory). Wall-clock and CPU time
(user + system, which other jobs on a shared machine disturb less) are both reported, as medians.

    python bench/bench_preprocess.py [--repeat 3] [--copies 1] [--input FILE ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import spacy
from _quick import QUICK_HELP, first_lines, lee_corpus

from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.corpus.sources import extract_default_corpus


def timed(function, *args):
    """(result, wall seconds, CPU seconds) of a call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def baseline(files: list[Path], lang: str) -> int:
    """spaCy tokens of reading the files and tokenizing each line."""
    nlp = spacy.blank(lang)
    tokens = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for doc in nlp.tokenizer.pipe(line.strip() for line in f if not line.isspace()):
                tokens += len(doc)
    return tokens


def spacy_hs(files: list[Path], output: Path, lang: str, heldout: Path | None) -> int:
    """Tokens written by the whole `preprocess` call (reading, tokenizing, writing)."""
    result = preprocess(files, output, lang=lang, progress=False, heldout=heldout)
    return result.meta["stats"]["tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", nargs="*", type=Path, help="text files (default corpus)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--copies", type=int, default=1, help="concatenate the text N times")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--heldout", action="store_true", help="also write a 5%% held-out file")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.input = 1, args.input or [lee_corpus()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        sources = args.input or [c.path for c in extract_default_corpus(tmp_dir / "corpus")]
        corpus = tmp_dir / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as out:
            for _ in range(args.copies):
                for source in sources:
                    text = Path(source).read_text(encoding="utf-8")
                    out.write(first_lines(text, 20_000) if args.quick else text)
        size = corpus.stat().st_size
        files = [corpus]
        heldout = tmp_dir / "heldout.tok.txt" if args.heldout else None
        runs: dict[str, list[tuple[float, float]]] = {"base": [], "ours": []}
        for _ in range(args.repeat):
            spacy_tokens, *times = timed(baseline, files, args.lang)
            runs["base"].append(times)
            output = tmp_dir / "corpus.tok.txt"
            written, *times = timed(spacy_hs, files, output, args.lang, heldout)
            runs["ours"].append(times)
    wall = {k: statistics.median(t[0] for t in v) for k, v in runs.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in runs.items()}
    print(f"corpus: {size / 1e6:.1f} MB, {spacy_tokens:,} spaCy tokens -> {written:,} written")
    print(f"{'system':<34}{'wall s':>8}{'CPU s':>8}{'tokens/s (wall)':>17}   wall of each run")
    for key, name in (
        ("base", "nlp.tokenizer.pipe (read only)"),
        ("ours", "spacy-hs preprocess (read+write)"),
    ):
        each = " ".join(f"{w:.2f}" for w, _ in runs[key])
        rate = spacy_tokens / wall[key]
        print(f"{name:<34}{wall[key]:>8.2f}{cpu[key]:>8.2f}{rate:>17,.0f}   {each}")
    print(
        f"throughput ratio spacy-hs / tokenizer: wall {wall['base'] / wall['ours']:.1%}, "
        f"CPU {cpu['base'] / cpu['ours']:.1%} (target >= 85%)"
    )
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, spaCy {spacy.__version__}")
    print("reproduce: python bench/bench_preprocess.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
