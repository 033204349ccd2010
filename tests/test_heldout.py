"""spacy_hs.corpus.heldout: the held-out split (through `preprocess`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import lines_of

from spacy_hs.corpus.preprocess import preprocess
from spacy_hs.corpus.tokenfile import read_meta


def test_heldout_split_is_deterministic_disjoint_and_complete(tmp_path: Path, lee_path: Path):
    full = tmp_path / "full.txt"
    preprocess(lee_path, full, progress=False)
    runs = []
    for run, (batch_size, seed) in enumerate([(1000, 0), (13, 0), (1000, 1)]):
        train, held = tmp_path / f"train{run}.txt", tmp_path / f"held{run}.txt"
        result = preprocess(
            lee_path,
            train,
            heldout=held,
            heldout_fraction=0.1,
            heldout_seed=seed,
            batch_size=batch_size,
            progress=False,
        )
        runs.append((lines_of(train), lines_of(held)))
        assert result.heldout_meta is not None and read_meta(held) == result.heldout_meta
        assert result.heldout_meta["split"]["role"] == "heldout"
        assert result.heldout_meta["stats"]["sentences"] == len(runs[-1][1])
        assert result.meta["stats"]["sentences"] == len(runs[-1][0])
    train, held = runs[0]
    assert runs[1] == runs[0]  # independent of batching
    assert runs[2] != runs[0]  # another seed, another split
    assert not set(train) & set(held)  # disjoint: a repeated sentence stays on one side
    assert Counter(train) + Counter(held) == Counter(lines_of(full))  # nothing lost
    assert 0.06 < len(held) / (len(train) + len(held)) < 0.14
