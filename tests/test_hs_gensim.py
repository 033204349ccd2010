"""The gensim conversion (``hs_gensim.py``): a trained Word2Vec copied without rebuilding, and
the models it refuses, each with the fix."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEE, train_lee
from gensim.models import FastText, Word2Vec

from spacy_hs import HSModel
from spacy_hs.hs_gensim import gensim_parts
from spacy_hs.hs_vocab import HSVocab


def test_from_gensim_copies_without_rebuilding(cbow_gensim: Word2Vec) -> None:
    model = HSModel.from_gensim(cbow_gensim)
    wv = cbow_gensim.wv
    n_words = len(wv)
    assert model.words == wv.index_to_key
    np.testing.assert_array_equal(
        model.counts, [wv.get_vecattr(i, "count") for i in range(n_words)]
    )
    np.testing.assert_array_equal(model.vectors, wv.vectors)
    np.testing.assert_array_equal(model.inner_node_weights, cbow_gensim.syn1[: n_words - 1])
    for i in (0, n_words // 3, n_words - 1):
        nodes, codes = model.tree.path(i)
        np.testing.assert_array_equal(nodes, wv.expandos["point"][i])
        np.testing.assert_array_equal(codes, wv.expandos["code"][i])
    expected = {"sg": 0, "cbow_mean": 1, "window": 4, "vector_size": 32}
    assert {key: model.settings[key] for key in expected} == expected
    assert model.settings["word2vec"]["hs"] == 1
    # A copy: training gensim further does not change the HS model.
    assert not np.shares_memory(model.vectors, wv.vectors)


def test_from_gensim_without_hs_names_the_fix() -> None:
    gensim_model = train_lee(hs=0, negative=5, epochs=1)
    with pytest.raises(ValueError, match=r"hs=1, negative=0"):
        HSModel.from_gensim(gensim_model)


def test_from_gensim_untrained_model_raises() -> None:
    gensim_model = Word2Vec(vector_size=8, hs=1, negative=0, min_count=1)
    gensim_model.build_vocab([["a", "b", "c"], ["a", "b"]])
    with pytest.raises(ValueError, match="never trained"):
        HSModel.from_gensim(gensim_model)


def test_from_gensim_rejects_other_types(cbow_gensim: Word2Vec) -> None:
    fasttext = FastText(
        corpus_file=str(LEE), vector_size=8, min_count=5, epochs=1, hs=1, negative=0, workers=1
    )
    for wrong in (fasttext, cbow_gensim.wv, "model.bin", None):
        with pytest.raises(TypeError, match="Expected a gensim Word2Vec model"):
            HSModel.from_gensim(wrong)


def test_the_parts_build_a_vocabulary_without_a_head(cbow_gensim: Word2Vec) -> None:
    """The conversion gives the parts of the vocabulary; HSModel.from_gensim is those parts."""
    vocab = HSVocab(**gensim_parts(cbow_gensim, {"lang": "en"}))
    model = HSModel.from_gensim(cbow_gensim, {"lang": "en"})
    assert vocab.words == model.words and vocab.settings == model.settings
    np.testing.assert_array_equal(vocab.vectors, model.vectors)
    assert model.trained_head is None and not hasattr(vocab, "trained_head")


def test_negative_sampling_too_warns_at_the_callers_line(ns_gensim_small: Word2Vec) -> None:
    with pytest.warns(UserWarning, match=r"\[W020\]") as record:
        HSModel.from_gensim(ns_gensim_small)
    assert record[0].filename == __file__


@pytest.fixture(scope="module")
def ns_gensim_small() -> Word2Vec:
    return train_lee(sg=0, hs=1, negative=5, epochs=1)
