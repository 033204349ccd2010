"""HSModel files: round trips give identical predictions, and every bad file is refused with an
error that names it. No pickle anywhere."""

from __future__ import annotations

import inspect
import io
import os
import pickle
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
from gensim.models import Word2Vec

from spacy_hs import HSModel, hs_format
from spacy_hs.errors import MissingModelFileError, ModelFileError

ARRAY_FILES = [f"{name}.npy" for name in hs_format.ARRAYS]
JSON_FILES = ["meta.json", "words.json"]
CONTEXTS = [["the", "government"], ["police", "said"], ["minister"], ["zzz-unknown", "fire"]]


def assert_same_model(a: HSModel, b: HSModel) -> None:
    assert a.words == b.words
    assert a.settings == b.settings
    assert a.meta == b.meta
    arrays_a, arrays_b = hs_format.model_arrays(a), hs_format.model_arrays(b)
    for name in hs_format.ARRAYS:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name])
    np.testing.assert_array_equal(a.tree.children, b.tree.children)
    for context in CONTEXTS:
        assert a.predict_output_word(context, topn=20) == b.predict_output_word(context, topn=20)
        np.testing.assert_array_equal(a.probabilities(context), b.probabilities(context))
    assert a.log_prob("minister", ["the"]) == b.log_prob("minister", ["the"])


@pytest.fixture(scope="module")
def model(cbow_gensim: Word2Vec) -> HSModel:
    return HSModel.from_gensim(
        cbow_gensim,
        settings={"lang": "en", "normalizer": {"lowercase": True}},
    )


@pytest.fixture
def model_dir(model: HSModel, tmp_path: Path) -> Path:
    path = tmp_path / "model"
    model.meta = {"loss_history": [3.5, 2.25], "corpus": {"sentences": 300}}
    model.to_disk(path)
    return path


def raises_naming(path: Path | str, error: type = ModelFileError) -> pytest.RaisesContext:
    """Expect ``error`` with ``path`` in its message."""
    return pytest.raises(error, match=re.escape(str(path)))


# -- round trips ----------------------------------------------------------------------


def test_disk_round_trip(model: HSModel, model_dir: Path) -> None:
    loaded = HSModel.from_disk(model_dir)
    assert_same_model(model, loaded)
    assert loaded.settings["normalizer"] == {"lowercase": True}
    assert loaded.meta["loss_history"] == [3.5, 2.25]
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(ARRAY_FILES + JSON_FILES)


def test_saved_floats_load_as_themselves(model: HSModel, tmp_path: Path) -> None:
    """srsly's ujson reads 0.3 as 0.30000000000000004: a saved cache weight loaded as another
    number, and a loaded model scored an ulp away from the one saved."""
    model.settings["cache"] = {"size": 100, "weight": 0.3, "ramp": 0.1}
    model.meta["floats"] = [0.3, 0.1, 1 / 3, 1e-300]
    try:
        model.to_disk(tmp_path / "model")
    finally:
        del model.settings["cache"], model.meta["floats"]
    loaded = HSModel.from_disk(tmp_path / "model")
    assert loaded.settings["cache"] == {"size": 100, "weight": 0.3, "ramp": 0.1}
    assert loaded.meta["floats"] == [0.3, 0.1, 1 / 3, 1e-300]


def test_nan_and_deep_nesting_in_meta_are_refused(model_dir: Path) -> None:
    file = model_dir / "meta.json"
    for text in ('{"format": NaN}', "[" * 100_000 + "]" * 100_000):
        file.write_text(text, encoding="utf8")
        with raises_naming(file):
            HSModel.from_disk(model_dir)


def test_bytes_round_trip(model: HSModel) -> None:
    data = model.to_bytes()
    loaded = HSModel.from_bytes(data)
    assert_same_model(model, loaded)
    assert loaded.to_bytes() == data


def test_sg_model_round_trip(sg_gensim: Word2Vec, tmp_path: Path) -> None:
    model = HSModel.from_gensim(sg_gensim)
    model.to_disk(tmp_path / "sg")
    assert_same_model(model, HSModel.from_disk(tmp_path / "sg"))
    assert HSModel.from_disk(tmp_path / "sg").settings["sg"] == 1


# -- missing, truncated and corrupted files -------------------------------------------


def test_a_model_replaced_while_it_loads_is_not_called_corrupted(
    model: HSModel, model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Another process renaming a new model into place while this one loads gave E050
    ("corrupted, restore it from a backup"). The replacement is made at the moment the first
    array is read, by a real rename."""
    other = HSModel(model.words, model.counts, model.vectors * 2, model.tree,
                    model.inner_node_weights)  # fmt: skip
    other.meta = {"replaced": True}
    other.to_disk(tmp_path / "new")
    read_npy, swapped = hs_format.validation.read_npy, []

    def read_while_replaced(*args, **kwargs):
        if not swapped:
            model_dir.rename(tmp_path / "old")
            (tmp_path / "new").rename(model_dir)
            swapped.append(True)
        return read_npy(*args, **kwargs)

    monkeypatch.setattr(hs_format.validation, "read_npy", read_while_replaced)
    with pytest.raises(ModelFileError, match=r"E051.*changed while it was being loaded") as err:
        HSModel.from_disk(model_dir)
    assert "E050" not in str(err.value) and "backup" not in str(err.value) and swapped
    monkeypatch.undo()
    assert HSModel.from_disk(model_dir).meta == {"replaced": True}  # loading again works


def test_arrays_larger_than_memory_are_refused_before_reading(model_dir: Path) -> None:
    """A forged model (sparse files of 772 MB apparent size) made the loader allocate 2.1 GB
    before E036: the declared sizes are now checked against memory before any array is read."""
    from spacy_hs.util import available_memory

    meta = srsly.read_json(model_dir / "meta.json")
    width = available_memory() // (4 * meta["arrays"]["vectors"]["shape"][0]) + 1
    for name in ("vectors", "inner_node_weights"):
        shape = meta["arrays"][name]["shape"]
        shape[1] = width
        with open(model_dir / f"{name}.npy", "r+b") as file:  # sparse, of the declared size
            file.truncate(shape[0] * shape[1] * 4 + 128)
    meta["settings"]["vector_size"] = width
    srsly.write_json(model_dir / "meta.json", meta)
    with pytest.raises(ModelFileError, match=r"E052.*more than the .* bytes of memory"):
        HSModel.from_disk(model_dir)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with raises_naming(missing, MissingModelFileError) as info:
        HSModel.from_disk(missing)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("name", ARRAY_FILES + ["words.json"])
def test_missing_file(model_dir: Path, name: str) -> None:
    (model_dir / name).unlink()
    with raises_naming(model_dir / name, MissingModelFileError):
        HSModel.from_disk(model_dir)


def test_missing_meta_json(model_dir: Path) -> None:
    (model_dir / "meta.json").unlink()
    with pytest.raises(ModelFileError, match=r"no meta\.json") as info:
        HSModel.from_disk(model_dir)
    assert str(model_dir) in str(info.value)


@pytest.mark.parametrize("name", ARRAY_FILES)
@pytest.mark.parametrize("keep", [0.5, 0.02, 0.0])
def test_truncated_npy(model_dir: Path, name: str, keep: float) -> None:
    file = model_dir / name
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])
    with raises_naming(file):
        HSModel.from_disk(model_dir)


@pytest.mark.parametrize("name", ARRAY_FILES)
def test_corrupted_npy_data(model_dir: Path, name: str) -> None:
    """A flipped byte in the array data is caught by the checksum in meta.json."""
    file = model_dir / name
    data = bytearray(file.read_bytes())
    data[-3] ^= 0x5A
    file.write_bytes(bytes(data))
    with raises_naming(file) as info:
        HSModel.from_disk(model_dir)
    assert "corrupted" in str(info.value)


@pytest.mark.parametrize("name", ARRAY_FILES)
def test_corrupted_npy_header(model_dir: Path, name: str) -> None:
    file = model_dir / name
    data = bytearray(file.read_bytes())
    data[1:6] = b"XXXXX"  # the magic string
    file.write_bytes(bytes(data))
    with raises_naming(file):
        HSModel.from_disk(model_dir)


@pytest.mark.parametrize("name", ARRAY_FILES)
def test_npy_of_wrong_shape_or_dtype(model_dir: Path, name: str) -> None:
    file = model_dir / name
    np.save(file, np.zeros(7, dtype=np.float64), allow_pickle=False)
    with pytest.raises(ModelFileError, match="inconsistent") as info:
        HSModel.from_disk(model_dir)
    assert name.removesuffix(".npy") in str(info.value)


@pytest.mark.parametrize("name", JSON_FILES)
def test_corrupt_json(model_dir: Path, name: str) -> None:
    file = model_dir / name
    file.write_bytes(file.read_bytes()[:-20])
    with raises_naming(file):
        HSModel.from_disk(model_dir)


def test_corrupt_json_bad_encoding(model_dir: Path) -> None:
    file = model_dir / "words.json"
    file.write_bytes(b'["\xff\xfe"]')
    with raises_naming(file):
        HSModel.from_disk(model_dir)


def test_words_json_of_wrong_content(model_dir: Path) -> None:
    words = srsly.read_json(model_dir / "words.json")
    srsly.write_json(model_dir / "words.json", {"words": words})
    with pytest.raises(ModelFileError, match="words is not a list of strings"):
        HSModel.from_disk(model_dir)
    srsly.write_json(model_dir / "words.json", words[:-1])
    with pytest.raises(ModelFileError, match="inconsistent"):
        HSModel.from_disk(model_dir)
    srsly.write_json(model_dir / "words.json", [words[0]] + words[:-1])
    with pytest.raises(ModelFileError, match="duplicate"):
        HSModel.from_disk(model_dir)


@pytest.mark.parametrize(
    "change",
    [
        lambda meta: meta.update(arrays=None),
        lambda meta: meta["arrays"].update(counts=5),
        lambda meta: meta.update(settings=[1, 2]),
        lambda meta: meta.update(meta="not a dict"),
    ],
)
def test_meta_json_of_wrong_content(model_dir: Path, change) -> None:
    meta = srsly.read_json(model_dir / "meta.json")
    change(meta)
    srsly.write_json(model_dir / "meta.json", meta)
    with raises_naming(model_dir):
        HSModel.from_disk(model_dir)


def test_wrong_format_version(model_dir: Path) -> None:
    meta = srsly.read_json(model_dir / "meta.json")
    meta["format_version"] = 99
    srsly.write_json(model_dir / "meta.json", meta)
    with raises_naming(model_dir / "meta.json") as info:
        HSModel.from_disk(model_dir)
    assert "v99" in str(info.value) and "v1" in str(info.value)


def test_wrong_format_name(model_dir: Path) -> None:
    meta = srsly.read_json(model_dir / "meta.json")
    meta["format"] = "something-else"
    srsly.write_json(model_dir / "meta.json", meta)
    with raises_naming(model_dir) as info:
        HSModel.from_disk(model_dir)
    assert "something-else" in str(info.value)


def test_gensim_model_file(cbow_gensim: Word2Vec, tmp_path: Path) -> None:
    path = tmp_path / "w2v.model"
    cbow_gensim.save(str(path))
    with raises_naming(path) as info:
        HSModel.from_disk(path)
    assert "HSModel.from_gensim" in str(info.value)


def test_spacy_pipeline_directory(tmp_path: Path) -> None:
    path = tmp_path / "pipeline"
    spacy.blank("en").to_disk(path)
    with raises_naming(path) as info:
        HSModel.from_disk(path)
    assert "spaCy pipeline" in str(info.value)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: b"",
        lambda data: b"not msgpack at all",
        lambda data: data[: len(data) // 2],
        lambda data: srsly.msgpack_dumps(42),
        lambda data: srsly.msgpack_dumps({"header": 1, "words": 2, "arrays": 3}),
        lambda data: srsly.msgpack_dumps({"header": {}, "words": [], "arrays": {}}),
        lambda data: srsly.msgpack_dumps({**srsly.msgpack_loads(data), "arrays": [1]}),
        lambda data: srsly.msgpack_dumps({**srsly.msgpack_loads(data), "arrays": {"counts": 7}}),
        lambda data: "a string, not bytes",
    ],
)
def test_corrupted_bytes(model: HSModel, corrupt) -> None:
    with pytest.raises(ModelFileError, match="bytes"):
        HSModel.from_bytes(corrupt(model.to_bytes()))


@pytest.mark.parametrize("data", [b"\xc1", b"\x92\x01", b"not msgpack at all"])
def test_bad_bytes_leave_the_garbage_collector_on(model: HSModel, data: bytes) -> None:
    """srsly.msgpack_loads disables the collector while it decodes, and leaves it off when it
    raises: a failed from_bytes turned gc off for the rest of the process."""
    import gc

    assert gc.isenabled()
    with pytest.raises(ModelFileError, match="bytes"):
        HSModel.from_bytes(data)
    assert gc.isenabled()
    gc.disable()  # and a caller who turned it off keeps it off
    try:
        with pytest.raises(ModelFileError):
            HSModel.from_bytes(data)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_corrupted_bytes_in_array_data(model: HSModel) -> None:
    message = srsly.msgpack_loads(model.to_bytes())
    vectors = bytearray(message["arrays"]["vectors"])
    vectors[-5] ^= 0x01
    message["arrays"]["vectors"] = bytes(vectors)
    with pytest.raises(ModelFileError, match="<bytes>:vectors is corrupted"):
        HSModel.from_bytes(srsly.msgpack_dumps(message))


def test_bytes_of_another_format_version(model: HSModel) -> None:
    message = srsly.msgpack_loads(model.to_bytes())
    message["header"]["format_version"] = 2
    with pytest.raises(ModelFileError, match="v2"):
        HSModel.from_bytes(srsly.msgpack_dumps(message))


# -- no pickle --------------------------------------------------------------------------


def test_object_array_is_refused(model_dir: Path) -> None:
    """An .npy of Python objects would need pickle to load; it is refused, not unpickled."""
    file = model_dir / "counts.npy"
    np.save(file, np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    with raises_naming(file) as info:
        HSModel.from_disk(model_dir)
    assert "allow_pickle" in str(info.value)


@pytest.mark.parametrize("kind", ["pickle", "npz"])
def test_other_containers_are_refused(model_dir: Path, kind: str) -> None:
    file = model_dir / "vectors.npy"
    vectors = np.load(file, allow_pickle=False)
    if kind == "pickle":
        file.write_bytes(pickle.dumps(vectors))
    else:
        buffer = io.BytesIO()
        np.savez(buffer, vectors=vectors)
        file.write_bytes(buffer.getvalue())
    with raises_naming(file):
        HSModel.from_disk(model_dir)


def test_written_files_are_plain_npy_and_json(model_dir: Path) -> None:
    for name in ARRAY_FILES:
        with (model_dir / name).open("rb") as f:
            if np.lib.format.read_magic(f) == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
        assert not dtype.hasobject
    for name in JSON_FILES:
        srsly.read_json(model_dir / name)
    source = inspect.getsource(hs_format)
    assert "allow_pickle=True" not in source and "import pickle" not in source


# -- writing: atomic, never over user data --------------------------------------------


def test_refuses_to_overwrite_other_directories(model: HSModel, tmp_path: Path) -> None:
    user_dir = tmp_path / "my_documents"
    user_dir.mkdir()
    (user_dir / "thesis.txt").write_text("years of work", encoding="utf8")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        model.to_disk(user_dir)
    assert (user_dir / "thesis.txt").read_text(encoding="utf8") == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_documents"]
    user_file = tmp_path / "notes.txt"
    user_file.write_text("keep me", encoding="utf8")
    with pytest.raises(FileExistsError):
        model.to_disk(user_file)
    assert user_file.read_text(encoding="utf8") == "keep me"


def test_writes_into_an_empty_directory(model: HSModel, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    model.to_disk(tmp_path / "empty")
    assert_same_model(model, HSModel.from_disk(tmp_path / "empty"))


def test_replaces_an_existing_model(
    model: HSModel, sg_gensim: Word2Vec, model_dir: Path, tmp_path: Path
) -> None:
    other = HSModel.from_gensim(sg_gensim)
    other.to_disk(model_dir)
    assert_same_model(other, HSModel.from_disk(model_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers


def test_failed_write_leaves_old_model_and_no_debris(
    model: HSModel, model_dir: Path, tmp_path: Path
) -> None:
    """The arrays are written, then meta.json fails (a value JSON cannot hold): the existing
    model is untouched and the temporary directory is gone."""
    broken = HSModel(
        model.words,
        model.counts,
        model.vectors * 2,
        model.tree,
        model.inner_node_weights,
        meta={"not json": {1, 2}},
    )
    with pytest.raises(TypeError):
        broken.to_disk(model_dir)
    assert_same_model(model, HSModel.from_disk(model_dir))
    with pytest.raises(TypeError):
        broken.to_disk(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_model_directory_follows_umask(model: HSModel, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    model.to_disk(tmp_path / "shared")
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o777 & ~umask
