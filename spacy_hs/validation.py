"""Checks of everything an ``HSModel`` is built from: its files, its settings and arrays, and the
word ids and contexts that queries pass.

A model directory (or byte string) is checked before anything large is read, in this order:

1. each file is a regular file (not a FIFO, a device such as ``/dev/urandom`` or a directory:
   those would make loading block or read without end), no larger than a cap: an absolute one
   for ``meta.json``, and one derived from what ``meta.json`` declares for the other files;
2. every setting in ``meta.json`` has its type and range (``settings_problem``), and the array
   shapes it declares agree with each other (``array_specs``);
3. each ``.npy`` header is read and compared with ``meta.json`` before its data, and the file's
   size must be exactly what header and shape need, so memory never exceeds what the model
   declares (``read_npy``);
4. float arrays hold no NaN or infinity (``non_finite``).

Problems are reported as ``(key, value, expected)``, so that the caller names the file (a model
file) or the argument (a constructor) in its message.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from .errors import (
    Errors,
    MissingModelFileError,
    ModelFileError,
    WordIdError,
    WrongTypeError,
    describe,
)
from .util import file_kind

# The most context words a head, gensim's window or the component reads. Longer contexts only
# cost memory: the component builds (tokens, context_size) int32 matrices and the directional
# head gathers (batch, context_size, width) floats.
MAX_CONTEXT_SIZE = 256
CONTEXT_SIZE_RULE = f"an integer from 1 to {MAX_CONTEXT_SIZE}"
# The n-gram head's table, in values (float32 when loaded: 2 GiB).
MAX_TABLE_SIZE = 1 << 29
# meta.json holds settings, training history and array specs: small. 64 MiB is far beyond any
# real one and still readable at once.
META_MAX_BYTES = 64 << 20
# words.json: at most this many bytes per word on average (JSON-escaped), plus a little.
WORD_MAX_BYTES = 1024
JSON_MAX_BYTES = 1 << 30
# .npy headers written by numpy are a few hundred bytes; numpy itself refuses more than 10000.
NPY_HEADER_MAX_BYTES = 10000
_FINITE_CHUNK = 1 << 22  # elements per isfinite() call: bounds the temporary mask (4 MB)
_INT32_MIN = np.iinfo(np.int32).min
# No Huffman path is longer than this with int64 counts (see max_path_entries); with margin.
MAX_PATH_LENGTH = 128
LANG_CODE = re.compile(r"[A-Za-z][A-Za-z_]{0,15}")

Problem = tuple[str, Any, str]  # (key, value, what it must be)


# -- reading files ------------------------------------------------------------------------------


def open_regular_file(path: Path, limit: int, why: str) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file (a symlink to one is fine) of at most
    ``limit`` bytes; returns the open file and its size. ``why`` says where the limit comes
    from, for the error message. Never blocks: a FIFO is refused before it is opened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MissingModelFileError(Errors.E010.format(path=path)) from None
    except OSError as err:
        raise ModelFileError(Errors.E011.format(path=path, reason=describe(err))) from None
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        if path.is_symlink():
            kind += f" (the symbolic link points to {os.path.realpath(path)})"
        raise ModelFileError(Errors.E060.format(path=path, kind=kind))
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, opening it
        # does not wait for a writer; fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ModelFileError(Errors.E011.format(path=path, reason=describe(err))) from None
    file = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        file.close()
        raise ModelFileError(Errors.E060.format(path=path, kind=file_kind(info.st_mode)))
    if info.st_size > limit:
        file.close()
        raise ModelFileError(Errors.E061.format(path=path, size=info.st_size, limit=limit, why=why))
    return file, info.st_size


def read_regular_file(path: Path, limit: int, why: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular_file``)."""
    file, size = open_regular_file(path, limit, why)
    with file:
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since the stat
        raise ModelFileError(Errors.E061.format(path=path, size=len(data), limit=limit, why=why))
    return data


def words_limit(n_words: int) -> int:
    """The largest words.json a model of ``n_words`` words may have."""
    return min(JSON_MAX_BYTES, 4096 + WORD_MAX_BYTES * max(n_words, 0))


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: messages quote values, not whole files."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


# -- settings ---------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_context_size(value: Any) -> bool:
    """The context-size rule, the one check of every context a model reads (gensim's window,
    a head's context size, the component's context_size): ``CONTEXT_SIZE_RULE``."""
    return _is_int(value) and 1 <= value <= MAX_CONTEXT_SIZE


def _one_of(value: Any, choices: Iterable[Any]) -> bool:
    return any(type(value) is type(choice) and value == choice for choice in choices)


def settings_problem(settings: Any) -> Problem | None:
    """The first invalid entry of a model's settings, or None.

    Checked: ``sg`` and ``cbow_mean`` (0 or 1), ``window`` (1 to ``MAX_CONTEXT_SIZE``),
    ``vector_size`` (a positive integer), ``lang`` (a language code or null), ``normalizer``
    (null or valid normaliser settings) and ``word2vec`` (null or an object). Other keys are
    free-form records (e.g. preprocessing options) and are kept as they are.
    """
    if not isinstance(settings, Mapping):
        return "settings", settings, "a JSON object"
    for key in ("sg", "cbow_mean"):
        if key in settings and not _one_of(settings[key], (0, 1)):
            return f"settings.{key}", settings[key], "0 or 1"
    problem = _sizes_problem(settings, "settings", "window", "vector_size")
    if problem is not None:
        return problem
    lang = settings.get("lang")
    if lang is not None and not (isinstance(lang, str) and LANG_CODE.fullmatch(lang)):
        return "settings.lang", lang, "a language code such as 'en', or null"
    word2vec = settings.get("word2vec")
    if word2vec is not None and not isinstance(word2vec, Mapping):
        return "settings.word2vec", word2vec, "a JSON object or null"
    if settings.get("cache") is not None:
        from .cache import CacheSettings
        from .errors import ConfigError

        try:
            CacheSettings.from_value(settings["cache"])
        except ConfigError:
            expected = (
                '{"size": N, "weight": λ, "ramp": c, "delay": m} (1 <= N <= 2**20, 0 <= λ < 1) '
                "or null"
            )
            return "settings.cache", settings["cache"], expected
    return normalizer_problem(settings.get("normalizer"))


def normalizer_problem(normalizer: Any) -> Problem | None:
    """The first invalid entry of stored normaliser settings, or None. Each known field is
    checked against its annotation in ``NormalizerSettings`` (bool, or one of a Literal's
    values); unknown fields (from other versions) are ignored, as ``from_dict`` ignores them."""
    if normalizer is None:
        return None
    if not isinstance(normalizer, Mapping):
        return "settings.normalizer", normalizer, "a JSON object of normaliser settings, or null"
    from .corpus.normalize import NormalizerSettings

    hints = typing.get_type_hints(NormalizerSettings)
    for field in fields(NormalizerSettings):
        if field.name not in normalizer:
            continue
        value, annotation = normalizer[field.name], hints[field.name]
        if annotation is bool:
            if not isinstance(value, bool):
                return f"settings.normalizer.{field.name}", value, "true or false"
        elif typing.get_origin(annotation) is Literal:
            choices = typing.get_args(annotation)
            if not _one_of(value, choices):
                expected = " or ".join(repr(c) for c in choices)
                return f"settings.normalizer.{field.name}", value, expected
    return None


def head_config_problem(config: Any) -> Problem | None:
    """The first invalid entry of a stored head config (``header["head"]``), or None: it must
    be an object naming its ``architecture``; a ``context_size`` is 1 to ``MAX_CONTEXT_SIZE``
    and a ``width`` a positive integer. The head class checks the rest against its arrays."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        return "head", config, "a JSON object or null"
    if not isinstance(config.get("architecture"), str):
        return "head.architecture", config.get("architecture"), "a registered head name"
    return _sizes_problem(config, "head", "context_size", "width")


def _sizes_problem(
    config: Mapping[str, Any], section: str, context_key: str, width_key: str
) -> Problem | None:
    """A config's context size (``CONTEXT_SIZE_RULE``) and vector width (a positive integer),
    each 1 when absent: the first that is invalid, or None."""
    size = config.get(context_key, 1)
    if not is_context_size(size):
        return f"{section}.{context_key}", size, CONTEXT_SIZE_RULE
    width = config.get(width_key, 1)
    if not _is_int(width) or width < 1:
        return f"{section}.{width_key}", width, "a positive integer"
    return None


# -- array specs ------------------------------------------------------------------------------

ArraySpec = tuple[tuple[int, ...], np.dtype]


def array_specs(
    header: Mapping[str, Any], dtypes: Mapping[str, Any]
) -> tuple[dict[str, ArraySpec], Problem | None]:
    """The (shape, dtype) that ``header["arrays"]`` declares for each array of ``dtypes`` (name
    -> dtype), and the first problem: a missing or malformed spec, a dtype other than the
    expected one, or shapes that do not fit together (V words, d dimensions: counts (V,),
    vectors (V, d), inner_node_weights (V - 1, d), path_offsets (V + 1,), path_nodes and
    path_codes of one length). Head arrays are checked by their head, after loading."""
    specs: dict[str, ArraySpec] = {}
    declared = header.get("arrays")
    for name, dtype in dtypes.items():
        spec = declared.get(name) if isinstance(declared, Mapping) else None
        key = f"arrays.{name}"
        if not isinstance(spec, Mapping):
            return specs, (key, spec, "an object with the array's shape and dtype")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
            return specs, (f"{key}.shape", shape, "a list of non-negative integers")
        if spec.get("dtype") != np.dtype(dtype).str:
            return specs, (f"{key}.dtype", spec.get("dtype"), repr(np.dtype(dtype).str))
        checksum = spec.get("crc32")
        if checksum is not None and not _is_int(checksum):
            return specs, (f"{key}.crc32", checksum, "an integer or null")
        specs[name] = (tuple(int(n) for n in shape), np.dtype(dtype))
    return specs, _shapes_problem(specs, header.get("settings"))


def _shapes_problem(specs: Mapping[str, ArraySpec], settings: Any) -> Problem | None:
    if "counts" not in specs:
        return None
    counts, vectors = specs["counts"][0], specs.get("vectors", ((),))[0]
    if len(counts) != 1 or counts[0] < 2:
        return "arrays.counts.shape", list(counts), "[V] with V >= 2 words"
    n_words = counts[0]
    width = vectors[1] if len(vectors) == 2 else -1
    expected = {
        "vectors": (n_words, width),
        "inner_node_weights": (n_words - 1, width),
        "path_offsets": (n_words + 1,),
    }
    for name, shape in expected.items():
        if name in specs and (specs[name][0] != shape or width < 0):
            where = f"V = {n_words} words in counts" + (
                f", d = {width} from vectors" * (width >= 0)
            )
            return (
                f"arrays.{name}.shape",
                list(specs[name][0]),
                f"{_describe_shape(shape)} ({where})",
            )
    if "path_nodes" in specs and "path_codes" in specs:
        if len(specs["path_nodes"][0]) != 1 or specs["path_nodes"][0] != specs["path_codes"][0]:
            return "arrays.path_codes.shape", list(specs["path_codes"][0]), "that of path_nodes"
        limit = max_path_entries(n_words)
        if specs["path_nodes"][0][0] > limit:
            expected = (
                f"[n] with n at most {limit:,}: {n_words:,} words, each at most "
                f"{min(n_words - 1, MAX_PATH_LENGTH)} nodes deep"
            )
            return "arrays.path_nodes.shape", list(specs["path_nodes"][0]), expected
    if isinstance(settings, Mapping) and settings.get("vector_size", width) != width:
        return "settings.vector_size", settings.get("vector_size"), f"{width}, the vectors' width"
    return None


def max_path_entries(n_words: int) -> int:
    """The most path entries (``path_nodes``) a Huffman tree of ``n_words`` words can have.

    A word at depth k of a Huffman tree occurs at least F(k) times (Fibonacci), so with int64
    counts no path is longer than 91 nodes; a full binary tree has none longer than V - 1."""
    return n_words * min(n_words - 1, MAX_PATH_LENGTH)


def _describe_shape(shape: tuple[int, ...]) -> str:
    return str(list(shape)).replace("-1", "d")


# -- .npy data --------------------------------------------------------------------------------


def read_npy(
    source: Path | bytes, shape: tuple[int, ...], dtype: np.dtype, where: str | Path
) -> np.ndarray:
    """An array from an .npy file (or its bytes) that must have ``shape`` and ``dtype``.

    The header is read and checked first, and the size must be exactly what header and shape
    need, so nothing beyond the declared array is ever allocated. Raises ModelFileError:
    E011 (truncated or unreadable), E072 (shape or dtype differ from meta.json), E060/E061 (not a
    regular file, or too large)."""
    nbytes = n_elements(shape) * dtype.itemsize
    limit = nbytes + NPY_HEADER_MAX_BYTES + 16
    if isinstance(source, (bytes, bytearray, memoryview)):
        file: BinaryIO = io.BytesIO(source)
        size = len(source)
        if size > limit:
            raise ModelFileError(
                Errors.E061.format(path=where, size=size, limit=limit, why=_npy_why(shape, dtype))
            )
    else:
        file, size = open_regular_file(source, limit, _npy_why(shape, dtype))
    with file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            found_shape, fortran_order, found_dtype = read_header(
                file, max_header_size=NPY_HEADER_MAX_BYTES
            )
        except Exception as err:  # numpy raises ValueError, EOFError, OSError... for bad bytes
            raise ModelFileError(Errors.E011.format(path=where, reason=describe(err))) from None
        if found_dtype.hasobject:
            reason = "it holds Python objects, which only pickle could load (allow_pickle=False)"
            raise ModelFileError(Errors.E011.format(path=where, reason=reason))
        if tuple(found_shape) != tuple(shape) or found_dtype != dtype:
            raise ModelFileError(
                Errors.E072.format(
                    path=where,
                    found=list(found_shape),
                    found_dtype=found_dtype,
                    shape=list(shape),
                    dtype=dtype,
                )
            )
        needed = file.tell() + nbytes
        if size != needed:
            reason = f"it is {size:,} bytes, its header and shape need {needed:,}"
            if size > needed:
                reason += " (data after the array)"
            raise ModelFileError(Errors.E011.format(path=where, reason=reason))
        try:
            file.seek(0)
            return np.lib.format.read_array(file, allow_pickle=False)
        except Exception as err:
            raise ModelFileError(Errors.E011.format(path=where, reason=describe(err))) from None


def n_elements(shape: Iterable[int]) -> int:
    """The number of values of an array of ``shape``, exact (a Python int: ``np.prod`` in
    int64 would wrap around for shapes of 2^63 values or more, and print negative sizes)."""
    return math.prod(int(n) for n in shape)


def _npy_why(shape: tuple[int, ...], dtype: np.dtype) -> str:
    return f"an .npy file of shape {list(shape)} and dtype {dtype} needs (meta.json)"


def non_finite(array: np.ndarray) -> tuple[int, int] | None:
    """(count, first flat index) of the NaN and infinite values of a float array, or None."""
    if array.dtype.kind not in "fc":
        return None
    flat = array.reshape(-1)
    count, first = 0, -1
    for start in range(0, len(flat), _FINITE_CHUNK):
        chunk = flat[start : start + _FINITE_CHUNK]
        if np.isfinite(chunk).all():
            continue
        bad = np.flatnonzero(~np.isfinite(chunk))
        if first < 0:
            first = start + int(bad[0])
        count += len(bad)
    return (count, first) if count else None


# -- word ids and contexts ----------------------------------------------------------------------


def word_id_array(ids: Any, n_words: int, name: str = "word ids") -> np.ndarray:
    """``ids`` as a C-contiguous int32 array, checked: integers (not bools or floats), none at
    or past ``n_words``, and none so negative that int32 would wrap it. Negative ids stay
    negative: the id-level API reads them as padding (or NaN)."""
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(array.shape, dtype=np.int32)
    kind = array.dtype.kind
    if kind == "O" and all(_is_int(v) for v in array.reshape(-1).tolist()):
        values = array.reshape(-1).tolist()  # integers beyond int64
        high, low = max(values), min(values)
    elif kind in "iu":
        high, low = array.max(), array.min()
    else:
        raise WrongTypeError(Errors.E069.format(name=name, what=f"dtype {array.dtype}"))
    if high >= n_words:
        raise WordIdError(Errors.E068.format(value=int(high), n=n_words))
    if low < _INT32_MIN:
        raise WordIdError(Errors.E068.format(value=int(low), n=n_words))
    return np.ascontiguousarray(array, dtype=np.int32)


def check_word_id(value: Any, n_words: int) -> int:
    """One word id, as an int; WordIdError if it is not in [0, n_words)."""
    if not 0 <= value < n_words:
        raise WordIdError(Errors.E068.format(value=value, n=n_words))
    return int(value)


def is_word_id(value: Any) -> bool:
    """An integer word id (a bool is not one)."""
    return _is_int(value)


def check_context(context: Any) -> None:
    """A context is a sequence of words or ids, not one string (whose characters would be read
    as words)."""
    if isinstance(context, (str, bytes)):
        text = context.decode("utf8", "replace") if isinstance(context, bytes) else context
        raise WrongTypeError(Errors.E070.format(context=context, example=text.split()))


def bad_context_entry(value: Any) -> WrongTypeError:
    """The error for a context entry that is neither a word nor an id."""
    return WrongTypeError(Errors.E071.format(type=type(value).__name__, value=value))
