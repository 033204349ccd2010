"""spacy_hs.validation: every model file, setting and array is checked when a model loads (from
disk and from bytes), word ids and contexts when they are queried. Nothing hangs, nothing
reads more than the model declares, and each error names the file and the key."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
import srsly
from conftest import train_lee
from gensim.models import Word2Vec
from isolated import GIB, run_python

from spacy_hs import HSModel
from spacy_hs.errors import (
    ConfigError,
    ModelFileError,
    SpacyHSError,
    WordIdError,
    WrongTypeError,
)
from spacy_hs.heads.cbow import hidden_from_matrix, log_prob_from_matrix
from spacy_hs.pipeline.component import HSPredictor
from spacy_hs.validation import MAX_CONTEXT_SIZE, META_MAX_BYTES, words_limit

FIXTURE = Path(__file__).parent / "fixtures" / "model_v1"  # small, with a directional head


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    shutil.copytree(FIXTURE, path)
    return path


def read_meta(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "meta.json").read_text(encoding="utf8"))


def write_meta(model_dir: Path, meta: dict[str, Any]) -> None:
    (model_dir / "meta.json").write_text(json.dumps(meta), encoding="utf8")


def set_key(meta: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        meta = meta[key]
    meta[last] = value


def rewrite_array(model_dir: Path, name: str, array: np.ndarray) -> None:
    """Replace an array file and its spec in meta.json consistently (checksum included)."""
    np.save(model_dir / f"{name}.npy", array, allow_pickle=False)
    meta = read_meta(model_dir)
    meta["arrays"][name] = {
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "crc32": zlib.crc32(np.ascontiguousarray(array).data),
    }
    write_meta(model_dir, meta)


def load_error(path: Path | str) -> ModelFileError:
    with pytest.raises(ModelFileError) as info:
        HSModel.from_disk(path)
    return info.value


# -- only regular files are read, never more than the model declares ----------------------------

# Run in a child process: before these checks, each of them hung from_disk while its memory
# grew at about 250 MB/s.
LOAD = """
import sys
from spacy_hs import HSModel
from spacy_hs.errors import ModelFileError
try:
    HSModel.from_disk(sys.argv[1])
except ModelFileError as err:
    print(err)
    sys.exit(3)
"""


@pytest.mark.parametrize("kind", ["fifo", "urandom", "directory"])
@pytest.mark.parametrize(
    "name", ["meta.json", "words.json", "vectors.npy", "head.input_vectors.npy"]
)
def test_special_files_in_place_of_model_files(model_dir: Path, name: str, kind: str) -> None:
    target = model_dir / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "urandom":
        target.symlink_to("/dev/urandom")
    else:
        target.mkdir()
    run = run_python(LOAD, str(model_dir), timeout=60)
    assert not run.timed_out, "loading hung"
    assert run.returncode == 3, run.stderr
    message = run.stdout.strip()
    assert "[E060]" in message and str(target) in message and "not a regular file" in message
    expected = {"fifo": "FIFO", "urandom": "character device", "directory": "a directory"}
    assert expected[kind] in message
    if kind == "urandom":
        assert "/dev/urandom" in message  # where the link points
    assert run.seconds < 30 and run.max_rss < GIB


def test_oversized_files_are_refused_before_they_are_read(model_dir: Path) -> None:
    """Sparse files: their size is what the checks see, and nothing of them is read."""
    n_words = read_meta(model_dir)["arrays"]["counts"]["shape"][0]
    cases = {
        "vectors.npy": 1 << 40,  # 1 TiB
        "words.json": words_limit(n_words) + 1,
    }
    for name, size in cases.items():
        path = model_dir / name
        original = path.read_bytes()
        with path.open("r+b") as file:
            file.truncate(size)
        start = time.perf_counter()
        error = load_error(model_dir)
        assert time.perf_counter() - start < 5
        assert "[E061]" in str(error) and str(path) in str(error)
        path.write_bytes(original)
    meta = model_dir / "meta.json"
    with meta.open("r+b") as file:
        file.truncate(META_MAX_BYTES + 1)
    error = load_error(model_dir)
    assert "[E061]" in str(error) and str(meta) in str(error)


def test_npy_with_data_after_the_array(model_dir: Path) -> None:
    path = model_dir / "counts.npy"
    path.write_bytes(path.read_bytes() + b"\0" * 64)
    error = load_error(model_dir)
    assert "[E011]" in str(error) and str(path) in str(error) and "data after" in str(error)


def test_npy_header_is_checked_before_its_data(model_dir: Path) -> None:
    """A header announcing a huge array in a small file allocates nothing."""
    path = model_dir / "vectors.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 12)}
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        file.write(b"\0" * 128)
    error = load_error(model_dir)
    assert "[E072]" in str(error) and "inconsistent" in str(error) and str(path) in str(error)


# -- every setting of meta.json ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("settings.window", -3, "an integer from 1 to"),
        ("settings.window", 0, "an integer from 1 to"),
        ("settings.window", "five", "an integer from 1 to"),
        ("settings.window", 10**6, f"an integer from 1 to {MAX_CONTEXT_SIZE}"),
        ("settings.window", True, "an integer from 1 to"),
        ("settings.cbow_mean", "no", "0 or 1"),
        ("settings.cbow_mean", 2, "0 or 1"),
        ("settings.sg", True, "0 or 1"),
        ("settings.vector_size", "12", "a positive integer"),
        ("settings.vector_size", 13, "the vectors' width"),
        ("settings.lang", 5, "a language code"),
        ("settings.lang", "e n", "a language code"),
        ("settings.normalizer", "x", "normaliser settings"),
        ("settings.normalizer", {"lowercase": "no"}, "true or false"),
        ("settings.normalizer", {"punct": "zap"}, "'keep' or 'drop' or 'placeholder'"),
        ("settings.normalizer", {"stopwords": "placeholder"}, "'keep' or 'drop'"),
        ("settings.word2vec", "hs", "a JSON object"),
        ("settings", [1, 2], "a JSON object"),
        ("meta", "notes", "a JSON object"),
        ("head", "directional", "a JSON object"),
        ("head.architecture", 7, "a registered head name"),
        ("head.context_size", 20000, f"an integer from 1 to {MAX_CONTEXT_SIZE}"),
        ("head.context_size", "3", "an integer from 1 to"),
        ("head.context_size", 0, "an integer from 1 to"),
        ("head.width", -12, "a positive integer"),
        ("arrays.vectors.shape", [525, 12], "[524, 12] (V = 524 words in counts, d = 12"),
        ("arrays.vectors.shape", [524, -12], "non-negative integers"),
        ("arrays.vectors.shape", [524], "[524, d] (V = 524 words in counts)"),
        ("arrays.inner_node_weights.shape", [524, 12], "[523, 12]"),
        ("arrays.path_offsets.shape", [524], "[525]"),
        ("arrays.path_codes.shape", [5309], "that of path_nodes"),
        ("arrays.counts.shape", [1], "V >= 2"),
        ("arrays.counts.dtype", "<f8", "'<i8'"),
        ("arrays.vectors.crc32", "abc", "an integer or null"),
    ],
)
def test_bad_meta_values_name_the_file_and_key(
    model_dir: Path, key: str, value: Any, expected: str
) -> None:
    meta = read_meta(model_dir)
    set_key(meta, key, value)
    write_meta(model_dir, meta)
    start = time.perf_counter()
    error = load_error(model_dir)
    message = str(error)
    assert time.perf_counter() - start < 2  # refused before the arrays are read
    assert "[E063]" in message, message
    assert str(model_dir / "meta.json") in message
    assert re.search(rf"{re.escape(key)}(\.\w+)? = ", message)  # the key, or the one in it
    assert expected in message


def test_format_version_as_a_string(model_dir: Path) -> None:
    """ "1" is not the integer 1; the message used to read "has format v1 ... reads v1"."""
    meta = read_meta(model_dir)
    meta["format_version"] = "1"
    write_meta(model_dir, meta)
    message = str(load_error(model_dir))
    assert "[E062]" in message and str(model_dir / "meta.json") in message
    assert "'1' (str)" in message and "not the integer 1" in message
    assert not re.search(r"v1 .* reads .*v1", message)


def test_bad_settings_in_bytes_are_named(model_dir: Path) -> None:
    message = srsly.msgpack_loads(HSModel.from_disk(model_dir).to_bytes())
    message["header"]["settings"]["cbow_mean"] = "no"
    with pytest.raises(ModelFileError, match=r"\[E063\] Model file <bytes>: settings\.cbow_mean"):
        HSModel.from_bytes(srsly.msgpack_dumps(message))
    message["header"]["settings"]["cbow_mean"] = 1
    message["header"]["format_version"] = "1"
    with pytest.raises(ModelFileError, match=r"\[E062\]"):
        HSModel.from_bytes(srsly.msgpack_dumps(message))


def test_constructor_checks_settings(hs_model: HSModel) -> None:
    parts = (hs_model.words, hs_model.counts, hs_model.vectors, hs_model.tree)
    for settings in ({"window": 0}, {"cbow_mean": "no"}, {"normalizer": "x"}):
        with pytest.raises(ConfigError, match=r"\[E064\] HSModel setting"):
            HSModel(*parts, hs_model.inner_node_weights, settings=settings)


def test_a_valid_normalizer_and_lang_load(model_dir: Path) -> None:
    meta = read_meta(model_dir)
    meta["settings"]["normalizer"] = {"lowercase": True, "punct": "drop", "future_key": 1}
    meta["settings"]["lang"] = "xx"
    write_meta(model_dir, meta)
    assert HSModel.from_disk(model_dir).settings["lang"] == "xx"


# -- context_size: bounded by the arrays and by a maximum ------------------------------------------


def test_head_context_size_must_match_its_arrays(model_dir: Path) -> None:
    meta = read_meta(model_dir)
    meta["head"]["context_size"] = 4  # position_weights hold 3 positions
    write_meta(model_dir, meta)
    message = str(load_error(model_dir))
    assert "position_weights" in message and str(model_dir) in message


def test_head_context_size_is_bounded_even_with_matching_arrays(model_dir: Path) -> None:
    """The 2.5 MB model of the issue: a head of context 20000 would make the component allocate
    about 10 GiB on a long doc. Its arrays agree with its config, and it is still refused."""
    width = read_meta(model_dir)["head"]["width"]
    rewrite_array(model_dir, "head.position_weights", np.ones((20000, width), dtype=np.float32))
    meta = read_meta(model_dir)
    meta["head"]["context_size"] = 20000
    write_meta(model_dir, meta)
    run = run_python(LOAD, str(model_dir), timeout=60)
    assert run.returncode == 3 and "head.context_size = 20000" in run.stdout
    assert run.max_rss < GIB


def test_component_context_size_is_bounded(hs_model: HSModel) -> None:
    """context_size = 100000 took 3.6 GB and 5.7 s; it is now refused at once."""
    nlp = spacy.blank("en")
    for size in (100000, MAX_CONTEXT_SIZE + 1):
        with pytest.raises(ConfigError, match=rf"\[E330\] .*context_size={size}"):
            HSPredictor(nlp.vocab, model=hs_model, context_size=size)
        with pytest.raises(ConfigError, match=r"\[E330\]"):
            nlp.add_pipe("hs_predictor", config={"context_size": size})
    component = HSPredictor(nlp.vocab, model=hs_model, context_size=MAX_CONTEXT_SIZE)
    component.context_size = 100000
    with pytest.raises(ConfigError, match=r"\[E330\]"):
        component.set_model(hs_model)


# -- array contents ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "name", ["vectors", "inner_node_weights", "head.input_vectors", "head.output_weights"]
)
def test_non_finite_values_are_refused(model_dir: Path, name: str, value: float) -> None:
    array = np.load(model_dir / f"{name}.npy")
    array.flat[7] = value
    rewrite_array(model_dir, name, array)
    message = str(load_error(model_dir))
    assert "[E065]" in message and str(model_dir / f"{name}.npy") in message
    assert "1 NaN or infinite value(s), the first at flat index 7" in message
    data = HSModel.from_disk(FIXTURE).to_bytes()
    unpacked = srsly.msgpack_loads(data)
    blob = unpacked["arrays"][name]
    loaded = np.load(io.BytesIO(blob))
    loaded.flat[7] = value
    unpacked["arrays"][name] = _npy(loaded)
    unpacked["header"]["arrays"][name]["crc32"] = zlib.crc32(loaded.data)
    with pytest.raises(ModelFileError, match=rf"\[E065\] Model file <bytes>:{re.escape(name)}"):
        HSModel.from_bytes(srsly.msgpack_dumps(unpacked))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_negative_counts_are_refused(model_dir: Path) -> None:
    counts = np.load(model_dir / "counts.npy")
    counts[3] = -5
    rewrite_array(model_dir, "counts", counts)
    assert "counts.npy holds negatives" in str(load_error(model_dir))


# -- from_gensim ---------------------------------------------------------------------------------


def test_from_gensim_warns_that_negative_sampling_is_ignored() -> None:
    ns = train_lee(hs=1, negative=5, epochs=1)
    with pytest.warns(UserWarning, match=r"\[W020\].*negative=5.*syn1neg\) is ignored"):
        HSModel.from_gensim(ns)
    hs = train_lee(hs=1, negative=0, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HSModel.from_gensim(hs)


def test_from_gensim_when_down_sampling_removed_every_update() -> None:
    sentences = [["the", "cat"], ["the", "dog"]] * 5
    params = dict(min_count=1, hs=1, negative=0, workers=1, seed=1, vector_size=8, epochs=1)
    sampled = Word2Vec(sentences, **params)
    with pytest.raises(SpacyHSError, match=r"\[E067\]") as info:
        HSModel.from_gensim(sampled)
    message = str(info.value)
    assert "down-sampling" in message and "sample=0.001" in message and "sample=0" in message
    assert "never trained" not in message
    assert len(HSModel.from_gensim(Word2Vec(sentences, sample=0, **params))) == 3


def test_from_gensim_refuses_diverged_training(cbow_gensim: Word2Vec) -> None:
    diverged = copy.deepcopy(cbow_gensim)
    diverged.wv.vectors[3, 1] = np.nan
    with pytest.raises(SpacyHSError, match=r"\[E066\].*vectors.*diverged"):
        HSModel.from_gensim(diverged)


# -- word ids and contexts ------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [2**31, 2**32 + 5, 2**63, 2**64 + 5, -(2**31) - 1, -(2**32) + 5])
def test_word_ids_never_wrap(hs_model: HSModel, bad_id: int) -> None:
    """2**32 + 5 used to be read as id 5; -(2**32) + 5 too."""
    head = hs_model.head("cbow")
    checks = [
        lambda: hidden_from_matrix(hs_model, np.array([[bad_id]], dtype=object)),
        lambda: log_prob_from_matrix(hs_model, np.array([[0]]), np.array([bad_id], dtype=object)),
        lambda: head.log_prob(np.array([[0]]), [bad_id]),
    ]
    if -(2**63) <= bad_id < 2**63:  # fits numpy's int64
        checks += [
            lambda: hidden_from_matrix(hs_model, np.array([[0, bad_id]], dtype=np.int64)),
            lambda: log_prob_from_matrix(
                hs_model, np.array([[0]]), np.array([bad_id], dtype=np.int64)
            ),
        ]
    if bad_id >= 0:  # the list API takes no padding
        checks += [
            lambda: hs_model.predict_output_word([bad_id]),
            lambda: hs_model.log_prob("the", [bad_id]),
            lambda: hs_model.log_prob(bad_id, ["the"]),
            lambda: hs_model.predict_next([bad_id], head="cbow"),
        ]
    for check in checks:
        with pytest.raises(WordIdError, match=r"\[E068\] Word id -?\d+ is out of range") as info:
            check()
        assert isinstance(info.value, IndexError) and isinstance(info.value, SpacyHSError)


def test_in_range_ids_work_as_words(hs_model: HSModel) -> None:
    the = hs_model.key_to_index["the"]
    assert hs_model.predict_output_word([the]) == hs_model.predict_output_word(["the"])
    assert hs_model.word_ids([np.int64(the), "the", "zzz-unknown"]) == [the, the]
    matrix = np.array([[-1, the]], dtype=np.int64)  # negative entries are padding
    np.testing.assert_array_equal(
        hidden_from_matrix(hs_model, matrix)[0], hidden_from_matrix(hs_model, matrix[:, 1:])[0]
    )


@pytest.mark.parametrize("entry", [True, False, np.bool_(True), 1.0, None, b"the"])
def test_context_entries_must_be_words_or_ids(hs_model: HSModel, entry: Any) -> None:
    """[True] used to be read as word id 1."""
    with pytest.raises(WrongTypeError, match=r"\[E071\]") as info:
        hs_model.predict_output_word([entry])
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("dtype", [bool, np.float32, np.float64])
def test_id_arrays_must_hold_integers(hs_model: HSModel, dtype: type) -> None:
    with pytest.raises(WrongTypeError, match=r"\[E069\] context_ids must hold integer"):
        hidden_from_matrix(hs_model, np.ones((1, 2), dtype=dtype))
    with pytest.raises(WrongTypeError, match=r"\[E069\]"):
        log_prob_from_matrix(hs_model, np.zeros((1, 1), np.int32), np.ones(1, dtype=dtype))


def test_a_string_is_not_a_context(hs_model: HSModel) -> None:
    """predict_output_word("the president") used to read the string letter by letter."""
    calls = [
        lambda: hs_model.predict_output_word("the president"),
        lambda: hs_model.predict_next("the president", head="cbow"),
        lambda: hs_model.log_prob("the", "the president"),
        lambda: hs_model.log_prob_next("the", "the president", head="cbow"),
        lambda: hs_model.probabilities("the president"),
        lambda: hs_model.predict_output_word_batch(["the president"]),
    ]
    for call in calls:
        with pytest.raises(WrongTypeError, match=r"\[E070\] A context must be a sequence") as info:
            call()
        assert isinstance(info.value, TypeError)
    assert "['the', 'president']" in str(info.value)  # the fix, spelled out


# -- array shapes: checked against the model's dimensions before any array is read -------------


def test_a_head_array_larger_than_the_model_allows_is_never_read(model_dir: Path) -> None:
    """A bias of 2 * 10^9 floats (7.45 GiB) in a sparse file: its declared shape does not fit
    the head of a 12-dimension model, so loading refuses it before reading anything."""
    n = 2_000_000_000
    path = model_dir / "head.hidden_bias.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "<f4", "fortran_order": False, "shape": (n,)}
        )
        file.truncate(file.tell() + 4 * n)  # sparse: no disk used
    meta = read_meta(model_dir)
    meta["arrays"]["head.hidden_bias"] = {"shape": [n], "dtype": "<f4", "crc32": None}
    write_meta(model_dir, meta)
    run = run_python(LOAD, str(model_dir), timeout=60)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "arrays.head.hidden_bias.shape = [2000000000]" in run.stdout
    assert "at most [12] for this head and model (V = 524 words, d = 12" in run.stdout
    assert run.max_rss < GIB


@pytest.mark.parametrize(
    "keys, value, expected",
    [
        (["head", "width"], 13, "width that of the model's vectors, 12"),
        (["arrays", "head.position_weights", "shape"], [12, 36], "at most [3, 12]"),
        (["arrays", "head.extra"], {"shape": [10**9], "dtype": "<f4"}, "has no such array"),
        (["arrays", "path_nodes", "shape"], [10**9], "at most 67,072"),
    ],
)
def test_declared_shapes_must_fit_the_model(
    model_dir: Path, keys: list[str], value: Any, expected: str
) -> None:
    meta = read_meta(model_dir)
    parent = meta
    for key in keys[:-1]:
        parent = parent[key]
    parent[keys[-1]] = value
    if keys[1] == "path_nodes":
        meta["arrays"]["path_codes"]["shape"] = value
    write_meta(model_dir, meta)
    message = str(load_error(model_dir))
    assert expected in message and "meta.json" in message


def test_a_shape_of_2_to_the_63_is_refused_with_true_sizes(model_dir: Path) -> None:
    """int64 arithmetic wrapped around to a negative byte count ("more than the
    -36,893,488,147,419,093,216 bytes"); sizes are exact Python ints."""
    import re

    from spacy_hs.validation import n_elements, read_npy

    assert n_elements([2**63]) * 4 == 36_893_488_147_419_103_232
    assert n_elements([2**33, 2**31]) == 2**64
    for shape in [(2**63,), (2**33, 2**31)]:
        with pytest.raises(ModelFileError) as info:
            read_npy(_npy(np.zeros(3, dtype=np.int32)), shape, np.dtype("<i4"), "x.npy")
        assert not re.search(r"-[\d,]+ bytes", str(info.value)), str(info.value)
    meta = read_meta(model_dir)
    meta["arrays"]["path_nodes"]["shape"] = meta["arrays"]["path_codes"]["shape"] = [2**63]
    write_meta(model_dir, meta)
    message = str(load_error(model_dir))
    assert "arrays.path_nodes.shape = [9223372036854775808]" in message
    assert not re.search(r"-[\d,]+ bytes", message), message


def test_heads_that_do_not_bound_their_arrays_get_a_general_bound(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head class of another package may not say its shapes (max_array_shapes): its arrays
    are still bounded before they are read."""
    from spacy_hs.heads.directional import DirectionalHead

    monkeypatch.delattr(DirectionalHead, "max_array_shapes")
    meta = read_meta(model_dir)
    meta["arrays"]["head.hidden_bias"]["shape"] = [2_000_000_000]
    write_meta(model_dir, meta)
    message = str(load_error(model_dir))
    assert "[E400]" in message and "more than the 16,777,216 values" in message
