"""Peak memory of `spacy-hs preprocess` on a corpus and on the same corpus 5x larger.

Each run is a fresh subprocess; its peak resident set size comes from ``os.wait4``'s rusage
(``ru_maxrss``, per child, so one run cannot mask another). A third subprocess that only imports
spaCy and builds ``spacy.blank`` gives the floor every run pays. Target: flat (ratio ~1.0).

The corpus is the bundled default corpus (Wikipedia sample + Lee), or --input files; the larger
one repeats it, so both have the same vocabulary and only the amount of text differs.

    python bench/bench_memory.py [--factor 5] [--input FILE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _quick import QUICK_HELP, first_lines, lee_corpus

from spacy_hs.corpus.sources import extract_default_corpus

CHILD_PREPROCESS = """
import sys
from spacy_hs.corpus.preprocess import preprocess
result = preprocess(sys.argv[1], sys.argv[2], progress=False)
print(result.meta["stats"]["tokens"])
"""
CHILD_FLOOR = """
import spacy, spacy_hs.corpus.preprocess
spacy.blank("en")
print(0)
"""


def run_child(code: str, *args: str) -> tuple[int, float, str]:
    """(peak RSS in MB, wall seconds, stdout) of ``python -c code args`` in a subprocess."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert process.stdout is not None
    out = process.stdout.read().decode().strip()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"child failed with exit code {process.returncode}")
    return usage.ru_maxrss // 1024, time.perf_counter() - start, out  # ru_maxrss is in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", nargs="*", type=Path, help="text files (default corpus)")
    parser.add_argument("--factor", type=int, default=5, help="size of the larger corpus")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:
        args.factor, args.input = 2, args.input or [lee_corpus()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        sources = args.input or [c.path for c in extract_default_corpus(tmp_dir / "corpus")]
        text = "".join(Path(s).read_text(encoding="utf-8") for s in sources)
        if args.quick:
            text = first_lines(text, 20_000)
        rows = []
        floor, _, _ = run_child(CHILD_FLOOR)
        for copies in (1, args.factor):
            corpus = tmp_dir / f"corpus{copies}.txt"
            with open(corpus, "w", encoding="utf-8") as f:
                for _ in range(copies):
                    f.write(text)
            size = corpus.stat().st_size
            output = tmp_dir / "out.tok.txt"
            peak, seconds, tokens = run_child(CHILD_PREPROCESS, str(corpus), str(output))
            rows.append((copies, size, int(tokens), peak, seconds))
            corpus.unlink()
    print(f"floor (python + spaCy + spacy.blank): {floor} MB peak RSS")
    header = ("corpus", "MB", "tokens written", "peak RSS MB", "above floor", "s")
    print("{:<10}{:>8}{:>16}{:>13}{:>13}{:>7}".format(*header))
    for copies, size, tokens, peak, seconds in rows:
        print(
            f"{f'{copies}x':<10}{size / 1e6:>8.1f}{tokens:>16,}{peak:>13}{peak - floor:>13}"
            f"{seconds:>7.1f}"
        )
    (_, small_size, _, small, _), (_, big_size, _, big, _) = rows
    print(
        f"{args.factor}x the text ({big_size / small_size:.1f}x bytes): peak RSS ratio "
        f"{big / small:.2f} (target: flat, ~1.0)"
    )
    print("reproduce: python bench/bench_memory.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
