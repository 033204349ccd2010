"""Preprocessing throughput: `spacy_hs.preprocess` against plain `nlp.tokenizer.pipe`.

Both run on the same text files in the same run, alternating, each with a fresh
``spacy.blank(lang)`` (so both start with a cold tokenizer cache):

- baseline: read the lines, ``nlp.tokenizer.pipe`` them, consume each Doc; nothing written;
- spacy-hs: ``preprocess(...)``: read, tokenize, split sentences, normalise, write the token file
  and its meta.json.

Target: spacy-hs >= 85% of the baseline's tokens/s. The corpus defaults to the bundled default
corpus (Wikipedia sample + Lee, extracted into a temporary directory).

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

from spacy_hs.corpus import extract_default_corpus
from spacy_hs.preprocess import preprocess


def baseline(files: list[Path], lang: str) -> tuple[int, float]:
    """spaCy tokens and seconds for reading the files and tokenizing each line."""
    start = time.perf_counter()
    nlp = spacy.blank(lang)
    tokens = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for doc in nlp.tokenizer.pipe(line.strip() for line in f if not line.isspace()):
                tokens += len(doc)
    return tokens, time.perf_counter() - start


def spacy_hs(files: list[Path], output: Path, lang: str, heldout: Path | None) -> tuple[int, float]:
    """Sentences' tokens written and seconds for the whole `preprocess` call."""
    start = time.perf_counter()
    result = preprocess(files, output, lang=lang, progress=False, heldout=heldout)
    seconds = time.perf_counter() - start
    return result.meta["stats"]["tokens"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", nargs="*", type=Path, help="text files (default corpus)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--copies", type=int, default=1, help="concatenate the text N times")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--heldout", action="store_true", help="also write a 5%% held-out file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        sources = args.input or [c.path for c in extract_default_corpus(tmp_dir / "corpus")]
        corpus = tmp_dir / "corpus.txt"
        with open(corpus, "w", encoding="utf-8") as out:
            for _ in range(args.copies):
                for source in sources:
                    out.write(Path(source).read_text(encoding="utf-8"))
        size = corpus.stat().st_size
        files = [corpus]
        heldout = tmp_dir / "heldout.tok.txt" if args.heldout else None
        base_times, ours_times = [], []
        for _ in range(args.repeat):
            spacy_tokens, seconds = baseline(files, args.lang)
            base_times.append(seconds)
            written, seconds = spacy_hs(files, tmp_dir / "corpus.tok.txt", args.lang, heldout)
            ours_times.append(seconds)
        base, ours = statistics.median(base_times), statistics.median(ours_times)
    print(f"corpus: {size / 1e6:.1f} MB, {spacy_tokens:,} spaCy tokens -> {written:,} written")
    print(f"{'system':<34}{'median s':>10}{'spaCy tokens/s':>16}   runs")
    for name, value, runs in (
        ("nlp.tokenizer.pipe (read only)", base, base_times),
        ("spacy-hs preprocess (read+write)", ours, ours_times),
    ):
        runs_text = " ".join(f"{r:.2f}" for r in runs)
        print(f"{name:<34}{value:>10.2f}{spacy_tokens / value:>16,.0f}   {runs_text}")
    print(f"ratio spacy-hs / tokenizer throughput: {base / ours:.1%} (target >= 85%)")
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, spaCy {spacy.__version__}")
    print("reproduce: python bench/bench_preprocess.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
