"""spacy_hs.scoring.buckets: CCNet's head/middle/tail cutoffs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from spacy_hs.errors import ConfigError
from spacy_hs.scoring.buckets import (
    Cutoffs,
    PerplexitySample,
    parse_cutoffs,
    parse_percentiles,
    write_cutoffs,
)


def test_buckets_as_ccnet_cuts_them() -> None:
    cutoffs = Cutoffs(100.0, 300.0)
    assert [cutoffs.bucket(p) for p in (5, 99.9, 100, 299, 300, 1e9, None)] == [
        "head", "head", "middle", "middle", "tail", "tail", None,
    ]  # fmt: skip


def test_a_small_corpus_is_sampled_whole_and_cut_at_its_percentiles() -> None:
    values = [float(v) for v in range(1, 1001)]
    sample = PerplexitySample(size=5000)
    for position, value in enumerate(values):
        sample.add(position, value)
    sample.add(1000, None)  # no perplexity: not in the sample
    cutoffs = sample.cutoffs((33, 66))
    assert (cutoffs.head, cutoffs.tail) == tuple(np.percentile(values, [33, 66]))
    assert cutoffs.sample == 1000 and cutoffs.percentiles == (33, 66)


def test_the_sample_is_deterministic_and_spread() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(5, 1) for _ in range(20000)]
    order = list(range(len(values)))
    rng.shuffle(order)
    forward, shuffled = PerplexitySample(size=2000), PerplexitySample(size=2000)
    for position, value in enumerate(values):
        forward.add(position, value)
    for position in order:  # the order documents arrive in does not matter
        shuffled.add(position, values[position])
    assert len(forward) == 2000
    assert forward.cutoffs((30, 60)) == shuffled.cutoffs((30, 60))
    exact = np.percentile(values, [30, 60])
    sampled = forward.cutoffs((30, 60))
    assert sampled.head == pytest.approx(exact[0], rel=0.1)
    assert sampled.tail == pytest.approx(exact[1], rel=0.1)


def test_an_empty_sample_says_so() -> None:
    with pytest.raises(ConfigError, match=r"\[E914\]"):
        PerplexitySample().cutoffs((33, 66))


def test_parsing_percentiles_and_cutoffs(tmp_path: Path) -> None:
    assert parse_percentiles("33,66") == (33.0, 66.0)
    for bad in ("66,33", "0,50", "50", "a,b", "10,20,30", "50,100"):
        with pytest.raises(ConfigError, match=r"\[E909\]"):
            parse_percentiles(bad)
    assert parse_cutoffs("120,450.5") == Cutoffs(120.0, 450.5)
    for bad in ("450,120", "-1,5", "x", "1,inf"):
        with pytest.raises(ConfigError, match=r"\[E910\]"):
            parse_cutoffs(bad)
    path = tmp_path / "scores.jsonl.cutoffs.json"
    with open(path, "w") as f:
        write_cutoffs(Cutoffs(10.5, 20.25, percentiles=(30, 60), sample=5), f)
    assert parse_cutoffs(str(path)) == Cutoffs(10.5, 20.25)
    path.write_text("{}")
    with pytest.raises(ConfigError, match=r"\[E910\].*not a cutoffs file"):
        parse_cutoffs(path)
