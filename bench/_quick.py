"""What every bench script's ``--quick`` mode shares: tiny settings and inputs, so that
tests/test_bench.py runs each script in seconds. A quick run checks that the script works, not
its figures."""

from __future__ import annotations

from pathlib import Path

QUICK_HELP = "tiny settings, seconds: checks that the script runs, not its figures"


def lee_corpus() -> Path:
    """gensim's Lee corpus (300 news stories, one per line): a quick input that needs no
    extraction."""
    from gensim.test.utils import datapath

    return Path(datapath("lee_background.cor"))


def first_lines(text: str, chars: int) -> str:
    """The whole lines of ``text`` within its first ``chars`` characters (all of a shorter
    text)."""
    if len(text) <= chars:
        return text
    return text[: text.rfind("\n", 0, chars) + 1]
