"""Shared fixtures: small gensim models trained on real text (gensim's Lee news corpus)."""

from __future__ import annotations

from pathlib import Path

import gensim
import pytest
from gensim.models import Word2Vec

from spacy_hs import HSModel

TEST_DATA = Path(gensim.__file__).parent / "test" / "test_data"
LEE = TEST_DATA / "lee_background.cor"


def train_lee(**params) -> Word2Vec:
    """A small HS Word2Vec on the Lee corpus, deterministic (one worker, fixed seed)."""
    settings = dict(
        corpus_file=str(LEE), vector_size=32, window=4, min_count=3, epochs=3, workers=1, seed=7
    )
    settings.update(params)
    return Word2Vec(**settings)


@pytest.fixture(scope="session")
def lee_path() -> Path:
    return LEE


@pytest.fixture(scope="session")
def cbow_gensim() -> Word2Vec:
    return train_lee(sg=0, hs=1, negative=0)


@pytest.fixture(scope="session")
def sg_gensim() -> Word2Vec:
    return train_lee(sg=1, hs=1, negative=0, cbow_mean=1)


@pytest.fixture(scope="session")
def hs_model(cbow_gensim: Word2Vec) -> HSModel:
    return HSModel.from_gensim(cbow_gensim)
