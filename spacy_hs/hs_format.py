"""The HS model's file format: one writer, one reader and one decoding policy for a directory
(``to_disk``/``from_disk``) and for bytes (``to_bytes``/``from_bytes``).

A model is a header (meta.json: format, version, settings, meta, the trained head's config and
the shape, dtype and CRC-32 of each array), the words (words.json) and one ``.npy`` file per
array, never pickled. Bytes are the same three parts in one msgpack map. Everything is checked
before it is used (``spacy_hs.validation``): the header before any array is read, each array's
shape against the bounds the header and the head's class allow, then its checksum and values.
The output-directory policy (``check_output_dir``) lives here too: a model directory may be
replaced only if it holds nothing but the files this format defines.
"""

from __future__ import annotations

import gc
import io
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import srsly

from . import registry, validation
from .errors import Errors, MissingModelFileError, ModelFileError, OutputExistsError, describe
from .heads.protocol import Head
from .tree import HuffmanTree
from .util import available_memory, check_replaceable, recover_dir, staging_dir

if TYPE_CHECKING:
    from .hs_model import HSModel

FORMAT = "spacy-hs.hs-model"
FORMAT_VERSION = 1
META_FILE = "meta.json"
WORDS_FILE = "words.json"
# Arrays stored one .npy file each, with their dtypes.
ARRAYS = {
    "counts": np.int64,
    "vectors": np.float32,
    "inner_node_weights": np.float32,
    "path_offsets": np.int64,
    "path_nodes": np.int32,
    "path_codes": np.uint8,
}
# A trained head is stored as its config (header["head"], with its registered "architecture")
# and its arrays, as head.<name>.npy; restored through spacy_hs.registry.heads.
HEAD_PREFIX = "head."
HEAD_DTYPES = ("<f4", "<f2", "<i4", "<i8", "|u1")
# Values each array of a head may hold if its class does not bound them (max_array_shapes):
# 2^24 (at most 128 MiB), beyond the V * d of a small model, room for a hashed table.
HEAD_ARRAY_MAX_VALUES = 1 << 24

Model = TypeVar("Model", bound="HSModel")


def to_bytes(model: HSModel) -> bytes:
    """The model as a msgpack map of its header, words and arrays (``.npy`` bytes, no pickle)."""
    arrays = model_arrays(model)
    return srsly.msgpack_dumps(
        {
            "header": _header(model, arrays),
            "words": model.words,
            "arrays": {name: _npy_bytes(array) for name, array in arrays.items()},
        }
    )


def to_disk(model: HSModel, path: str | Path) -> None:
    """Write the model directory atomically: into a temporary sibling, then renamed.

    An existing spacy-hs model at ``path`` is replaced, if it holds nothing but model files
    (see ``check_output_dir``); any other existing non-empty directory or file is left alone
    and an error raised.
    """
    path = Path(path)
    owned = check_output_dir(path)
    arrays = model_arrays(model)
    with staging_dir(path, owned) as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        _write_json(tmp / WORDS_FILE, model.words)
        _write_json(tmp / META_FILE, _header(model, arrays))


def model_arrays(model: HSModel) -> dict[str, np.ndarray]:
    """The arrays ``model`` is stored as, by name (the file of each is <name>.npy)."""
    tree = model.tree
    arrays = {
        "counts": model.counts,
        "vectors": model.vectors,
        "inner_node_weights": model.inner_node_weights,
        "path_offsets": tree.path_offsets,
        "path_nodes": tree.path_nodes,
        "path_codes": tree.path_codes,
    }
    head = model.trained_head
    if head is not None:  # a trained head's arrays, by their names, prefixed
        arrays.update({HEAD_PREFIX + k: v for k, v in head.to_arrays().items()})
    return arrays


def _header(model: HSModel, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    head = model.trained_head
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "settings": model.settings,
        "meta": model.meta,
        **({"head": head.config} if head is not None else {}),
        "arrays": {
            name: {
                "shape": list(array.shape),
                "dtype": array.dtype.str,
                "crc32": zlib.crc32(np.ascontiguousarray(array).data),
            }
            for name, array in arrays.items()
        },
    }


def from_bytes(cls: type[Model], data: bytes) -> Model:
    """A ``cls`` (``HSModel``) from ``to_bytes`` output, checked as ``from_disk`` checks files."""
    gc_enabled = gc.isenabled()
    try:
        msg = srsly.msgpack_loads(data)
        header, words, blobs = msg["header"], msg["words"], msg["arrays"]
        if not isinstance(blobs, dict):
            raise TypeError(f"arrays is a {type(blobs).__name__}, not a map")
    except Exception as err:  # msgpack raises several unrelated types on bad input
        raise ModelFileError(Errors.E015.format(reason=describe(err))) from None
    finally:
        # srsly.msgpack_loads turns the garbage collector off while it decodes and does not
        # turn it back on when the data is bad.
        if gc_enabled and not gc.isenabled():
            gc.enable()
    specs = _check_header(header, "<bytes>")
    arrays = {}
    for name, (shape, dtype) in specs.items():
        blob = blobs.get(name, b"")
        if not isinstance(blob, bytes):
            reason = f"array {name} is a {type(blob).__name__}, not bytes"
            raise ModelFileError(Errors.E015.format(reason=reason))
        arrays[name] = validation.read_npy(blob, shape, dtype, f"<bytes>:{name}")
    return _decode(cls, header, words, arrays, "<bytes>")


def from_disk(cls: type[Model], path: str | Path) -> Model:
    """A ``cls`` (``HSModel``) from a model directory written by ``to_disk``.

    Everything is checked before it is used (``spacy_hs.validation``): only regular files
    are read, each no larger than meta.json allows; every setting and array spec in
    meta.json; each array's header before its data; no NaN or infinity. A bad file raises
    ModelFileError naming it (and the key of meta.json). If a replacement of the directory
    was interrupted (a killed ``to_disk`` or ``spacy-hs train``), the previous model is put
    back first, with a warning that says so.
    """
    path = Path(path)
    recover_dir(path)
    if not path.exists():
        raise MissingModelFileError(Errors.E010.format(path=path))
    meta_path = path / META_FILE
    if path.is_file() or not (meta_path.exists() or meta_path.is_symlink()):
        raise ModelFileError(Errors.E014.format(path=path, hint=_wrong_type_hint(path)))
    before = _identity(path)
    try:
        return _load_dir(cls, path)
    except ModelFileError:
        if _identity(path) != before:  # replaced (or moved) by another process meanwhile
            raise ModelFileError(Errors.E051.format(path=path)) from None
        raise


def _identity(path: Path) -> tuple[int, ...] | None:
    """What changes when a model directory is replaced: its inode, and meta.json's inode, size
    and modification time (None if either is gone)."""
    try:
        folder, meta = path.stat(), (path / META_FILE).stat()
    except OSError:
        return None
    return (folder.st_dev, folder.st_ino, meta.st_ino, meta.st_size, meta.st_mtime_ns)


def _load_dir(cls: type[Model], path: Path) -> Model:
    meta_path = path / META_FILE
    header = _read_json(meta_path, validation.META_MAX_BYTES, "meta.json may have")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(Errors.E014.format(path=path, hint=_wrong_type_hint(path, found)))
    specs = _check_header(header, meta_path)
    declared = sum(validation.n_elements(shape) * np.dtype(dtype).itemsize
                   for shape, dtype in specs.values())  # fmt: skip
    available = available_memory()
    if declared > available:  # before anything is allocated (a forged, sparse model)
        raise ModelFileError(Errors.E052.format(path=path, size=declared, available=available))
    n_words = specs["counts"][0][0]
    words = _read_json(
        path / WORDS_FILE,
        validation.words_limit(n_words),
        f"a vocabulary of {n_words:,} words (meta.json) may take",
    )
    arrays = {}
    for name, (shape, dtype) in specs.items():
        file = path / f"{name}.npy"
        arrays[name] = validation.read_npy(file, shape, dtype, file)
    return _decode(cls, header, words, arrays, path)


def _decode(
    cls: type[Model], header: dict, words: Any, arrays: dict[str, np.ndarray], where: str | Path
) -> Model:
    """The one decoding policy of bytes and directories: the words, each array against its
    spec (shape, dtype, CRC-32, finite values), the model, then its trained head."""
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ModelFileError(
            Errors.E013.format(path=where, reason="words is not a list of strings")
        )
    for name, dtype in {**ARRAYS, **_head_arrays(header)}.items():
        spec = header["arrays"].get(name)
        spec = spec if isinstance(spec, dict) else {}
        array = arrays[name]
        if list(array.shape) != spec.get("shape") or array.dtype != np.dtype(dtype):
            raise ModelFileError(
                Errors.E013.format(
                    path=where,
                    reason=f"{name} has shape {list(array.shape)} and dtype {array.dtype}, "
                    f"meta.json says {spec.get('shape')} and {np.dtype(dtype)}",
                )
            )
        checksum = spec.get("crc32")
        file = f"<bytes>:{name}" if where == "<bytes>" else Path(where) / f"{name}.npy"
        if checksum is not None and zlib.crc32(np.ascontiguousarray(array).data) != checksum:
            raise ModelFileError(Errors.E050.format(path=file))
        bad = validation.non_finite(array)
        if bad is not None:
            raise ModelFileError(Errors.E065.format(path=file, count=bad[0], index=bad[1]))
    if (arrays["counts"] < 0).any():
        raise ModelFileError(Errors.E013.format(path=where, reason="counts.npy holds negatives"))
    try:
        tree = HuffmanTree(arrays["path_offsets"], arrays["path_nodes"], arrays["path_codes"])
        model = cls(
            words,
            arrays["counts"],
            arrays["vectors"],
            tree,
            arrays["inner_node_weights"],
            settings=header.get("settings"),
            meta=header.get("meta"),
        )
    except (ValueError, TypeError) as err:  # TypeError: settings or meta of the wrong type
        raise ModelFileError(Errors.E013.format(path=where, reason=err)) from None
    if header.get("head") is not None:
        head_arrays = {name[len(HEAD_PREFIX) :]: arrays[name] for name in _head_arrays(header)}
        head = _restore_head(header["head"], head_arrays, model, where)
        size = head.context_size
        if not validation.is_context_size(size):  # whatever its config calls it
            expected = validation.CONTEXT_SIZE_RULE
            raise ModelFileError(
                Errors.E063.format(
                    path=_meta_file(where),
                    key="head context size",
                    value=size,
                    expected=expected,
                )
            )
        model.trained_head = head
    return model


def _restore_head(
    config: Any, arrays: dict[str, np.ndarray], model: HSModel, where: str | Path
) -> Head:
    """The head a header describes, built by the class registered under its architecture."""
    head_class = _head_class(config, where)
    try:
        return head_class.from_arrays(config, arrays, model)
    except (ValueError, TypeError) as err:
        kind = config.get("name", "next-word") if isinstance(config, dict) else "next-word"
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=err)) from None


def _head_class(config: Any, where: str | Path) -> Any:
    """The class registered under the architecture a head config names; ModelFileError E400."""
    architecture = config.get("architecture") if isinstance(config, dict) else None
    try:
        return registry.heads.get(str(architecture))
    except Exception:  # catalogue.RegistryError, or a broken entry point
        kind = config.get("name", "next-word") if isinstance(config, dict) else "next-word"
        reason = Errors.E405.format(found=architecture, expected=", ".join(_registered_heads()))
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason)) from None


def _check_head_specs(
    header: dict, specs: dict[str, validation.ArraySpec], where: str | Path
) -> None:
    """Compare the head arrays meta.json declares with what the head's config allows for
    this model's V words and d dimensions, before any array is read, so that a small model
    directory cannot make loading allocate more (e.g. a bias of 2 * 10^9 floats backed by a
    sparse file). A head class bounds its arrays with ``max_array_shapes(config, V, d)`` (the
    largest shape of each array); for one that does not, each array may hold at most
    ``HEAD_ARRAY_MAX_VALUES``, or what K * d * d position weights or (V + 1) rows of d + 1
    could."""
    config = header.get("head")
    if config is None:
        return
    head_class = _head_class(config, where)
    n_words, vector_size = specs["counts"][0][0], specs["vectors"][0][1]
    declared = {
        name[len(HEAD_PREFIX) :]: shape
        for name, (shape, _) in specs.items()
        if name.startswith(HEAD_PREFIX)
    }
    kind = config.get("name", "next-word")
    bounds_of = getattr(head_class, "max_array_shapes", None)
    if bounds_of is None:
        limit = max(
            HEAD_ARRAY_MAX_VALUES,
            (n_words + 1) * (vector_size + 1),
            validation.MAX_CONTEXT_SIZE * vector_size**2,
        )
        for name, shape in declared.items():
            if validation.n_elements(shape) > limit:
                reason = (
                    f"meta.json declares arrays.{HEAD_PREFIX}{name}.shape = {list(shape)}, more "
                    f"than the {limit:,} values a head of a model of V = {n_words} words and "
                    f"d = {vector_size} dimensions may have"
                )
                raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason))
        return
    try:
        bounds = bounds_of(config, n_words, vector_size)
    except (ValueError, TypeError) as err:
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=err)) from None
    for name, shape in declared.items():
        bound = bounds.get(name)
        if bound is not None and len(shape) == len(bound):
            if all(n <= most for n, most in zip(shape, bound)):
                continue
        fits = (
            f"it may be at most {list(bound)} for this head and model (V = {n_words} words, "
            f"d = {vector_size} dimensions)"
            if bound is not None
            else f"the head has no such array, only {', '.join(bounds)}"
        )
        reason = f"meta.json declares arrays.{HEAD_PREFIX}{name}.shape = {list(shape)}; {fits}"
        raise ModelFileError(Errors.E400.format(path=where, kind=kind, reason=reason))


def _registered_heads() -> list[str]:
    return sorted(registry.loadable(registry.heads))


def registered_head_names() -> list[str]:
    """The names (``cls.name``) of the heads registered in ``spacy_hs.registry.heads``: what a
    model trained with one of them can answer through (the generic ``spacy_hs.TreeHead.v1``
    has none of its own: its config names it)."""
    names = {getattr(registry.heads.get(a), "name", a) for a in _registered_heads()}
    return sorted(name for name in names if name)


def _head_arrays(header: Any) -> dict[str, Any]:
    """The head arrays (name -> dtype) a header announces; none if it has no head."""
    if not isinstance(header, dict) or header.get("head") is None:
        return {}
    specs = header.get("arrays") if isinstance(header.get("arrays"), dict) else {}
    found = {}
    for name, spec in specs.items():
        if isinstance(name, str) and name.startswith(HEAD_PREFIX):
            dtype = spec.get("dtype") if isinstance(spec, dict) else None
            found[name] = np.dtype(dtype) if dtype in HEAD_DTYPES else np.float32
    return found


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_json(path: Path, data: Any) -> None:
    """A JSON model file whose floats read back exactly (srsly's ujson keeps 10 digits)."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=plain)
    path.write_text(text + "\n", encoding="utf8")


def _json_loads(text: str) -> Any:
    """Strict JSON with exact floats (srsly's ujson reads 0.3 as 0.30000000000000004, so a
    saved setting would not load as itself); NaN and Infinity are refused, as ujson does."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _read_json(path: Path, limit: int, why: str) -> Any:
    """A JSON model file: a regular file of at most ``limit`` bytes (``why`` says whence)."""
    if not path.exists() and not path.is_symlink():
        raise MissingModelFileError(Errors.E010.format(path=path))
    data = validation.read_regular_file(path, limit, why)
    try:
        return _json_loads(data.decode("utf8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ModelFileError(Errors.E011.format(path=path, reason=describe(err))) from None


def _meta_file(where: str | Path) -> str | Path:
    """Where a model's header came from, for messages: its meta.json, or "<bytes>"."""
    if str(where) == "<bytes>" or Path(where).name == META_FILE:
        return where
    return Path(where) / META_FILE


def _check_header(header: Any, where: str | Path) -> dict[str, validation.ArraySpec]:
    """Check a header (meta.json) before any array is read; returns the (shape, dtype) of
    each array it announces. ModelFileError names ``where`` and the bad key."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(Errors.E015.format(reason="no spacy-hs header"))
    version = header.get("format_version")
    if not validation.is_word_id(version):  # "1" is not 1 (nor is true)
        raise ModelFileError(
            Errors.E062.format(
                path=where, value=version, type=type(version).__name__, expected=FORMAT_VERSION
            )
        )
    if version != FORMAT_VERSION:
        raise ModelFileError(
            Errors.E012.format(
                path=where, found=f"{FORMAT} v{version}", expected=f"{FORMAT} v{FORMAT_VERSION}"
            )
        )
    if not isinstance(header.get("arrays"), dict):
        raise ModelFileError(Errors.E013.format(path=where, reason="meta.json lists no arrays"))
    meta = header.get("meta")
    problem = (
        validation.settings_problem(header.get("settings", {}))
        or validation.head_config_problem(header.get("head"))
        or (None if meta is None or isinstance(meta, dict) else ("meta", meta, "a JSON object"))
    )
    specs: dict[str, validation.ArraySpec] = {}
    if problem is None:
        specs, problem = validation.array_specs(header, {**ARRAYS, **_head_arrays(header)})
    if problem is not None:
        key, value, expected = problem
        raise ModelFileError(
            Errors.E063.format(
                path=where, key=key, value=validation.shown(value), expected=expected
            )
        )
    _check_head_specs(header, specs, where)
    return specs


def _wrong_type_hint(path: Path, found_format: str | None = None) -> str:
    if path.is_file():
        return (
            "It is a file; if it is a gensim model, convert it in Python with "
            "HSModel.from_gensim(Word2Vec.load(path)).to_disk(out_dir), or train with "
            "`spacy-hs train`."
        )
    if (path / "config.cfg").exists():
        return (
            "It looks like a spaCy pipeline: load it with spacy.load(), or point to its "
            "hs_predictor/ subdirectory."
        )
    if found_format:
        return f"Its meta.json describes {found_format!r}."
    return "Point to a directory written by `spacy-hs train` or HSModel.to_disk."


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The header (meta.json) of the model directory at ``path``, or None if it is not one;
    read as ``from_disk`` reads it (a regular file, size-capped), but not checked."""
    return _existing_header(Path(path))


def _existing_header(path: Path) -> dict[str, Any] | None:
    """The header of the model directory at ``path``, or None if it is not one."""
    try:
        data = validation.read_regular_file(
            path / META_FILE, validation.META_MAX_BYTES, "meta.json may have"
        )
        header = _json_loads(data.decode("utf8"))
    except (OSError, ValueError, RecursionError, ModelFileError):
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def model_files(path: str | Path) -> set[str]:
    """The files of the model directory at ``path`` that its format defines (meta.json,
    words.json and the arrays its meta.json lists): what spacy-hs wrote there."""
    header = _existing_header(Path(path))
    if header is None:
        return set()
    arrays = header.get("arrays") if isinstance(header.get("arrays"), dict) else {}
    return {META_FILE, WORDS_FILE, *(f"{name}.npy" for name in arrays if isinstance(name, str))}


def check_output_dir(path: str | Path) -> set[str]:
    """Check that a model may be written to ``path`` before anything is computed for it: it
    must not exist, be an empty directory, or be a model directory that holds nothing but its
    model files (E016, E182). Returns those files, for ``staging_dir``."""
    path = Path(path)
    recover_dir(path)  # a replacement killed between its renames: the old model comes back
    if not path.exists() and not path.is_symlink():
        return set()
    if path.is_dir() and not any(path.iterdir()):
        return set()
    owned = model_files(path)
    if not owned:
        raise OutputExistsError(Errors.E016.format(path=path))
    check_replaceable(path, owned)
    return owned
