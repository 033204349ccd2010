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


@pytest.fixture(scope="session")
def normalized_token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lee corpus as `spacy-hs preprocess` would write it (spaCy tokens, lowercased,
    punctuation dropped, numbers as <num>): one sentence per line."""
    import spacy

    from spacy_hs.normalize import TokenNormalizer

    normalizer = TokenNormalizer()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    lines = []
    for doc in nlp.pipe(LEE.read_text(encoding="utf8").splitlines()):
        for sentence in doc.sents:
            words = normalizer.words(sentence)
            if words:
                lines.append(" ".join(words))
    token_file = tmp_path_factory.mktemp("normalized") / "lee.tok.txt"
    token_file.write_text("\n".join(lines) + "\n", encoding="utf8")
    return token_file


@pytest.fixture(scope="session")
def normalized_model(normalized_token_file: Path) -> HSModel:
    """An HS model trained on ``normalized_token_file``, with the normaliser settings and
    language stored in ``model.settings``."""
    from spacy_hs.normalize import NormalizerSettings

    gensim_model = train_lee(sg=0, hs=1, negative=0, corpus_file=str(normalized_token_file))
    return HSModel.from_gensim(
        gensim_model, settings={"normalizer": NormalizerSettings().to_dict(), "lang": "en"}
    )


@pytest.fixture(scope="session")
def directional_model(normalized_model: HSModel, normalized_token_file: Path) -> HSModel:
    """A copy of ``normalized_model`` with a directional head trained briefly on the same text."""
    from spacy_hs.head import train_head

    model = HSModel.from_bytes(normalized_model.to_bytes())
    train_head(model, normalized_token_file, epochs=2, context_size=3, progress=False)
    return model
