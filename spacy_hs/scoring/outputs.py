"""Writing score records: JSON Lines, or Parquet for a name ending in ``.parquet``.

JSON Lines are written by `spacy_hs.scoring.records.json_line`, one record per line. Parquet
needs pyarrow (the ``parquet`` extra); its columns are those of the records, with ``id`` as a
string (a JSON id that is not a string is written as its JSON text, e.g. ``"5"``), and rows are
written in groups of ``ROW_GROUP`` so that memory stays flat. Text that cannot be UTF-8 (lone
surrogates from JSON escapes) is written with ``?`` in their place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ConfigError, Errors
from ..util import open_new
from .records import json_line

PARQUET_SUFFIX = ".parquet"
ROW_GROUP = 10_000


class RecordWriter(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIX)


def check_parquet(path: Path) -> None:
    """ConfigError E908 if ``path`` is to be Parquet and pyarrow is missing."""
    if is_parquet(path):
        _pyarrow(path)


def open_records(target: Path, temporary: Path) -> RecordWriter:
    """A writer of records into ``temporary``, in the format ``target``'s name asks for."""
    if is_parquet(target):
        return ParquetWriter(target, temporary)
    return JsonLinesWriter(temporary)


def open_text(path: Path) -> IO[str]:
    """A new UTF-8 text file for writing (it must not exist)."""
    return open_new(path, "w", encoding="utf-8", errors="replace", newline="\n", buffering=1 << 20)


class JsonLinesWriter:
    def __init__(self, path: Path):
        self._file = open_text(path)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json_line(record))

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """Records to a Parquet file; the columns are the first record's keys."""

    def __init__(self, target: Path, path: Path):
        self._pa, self._pq = _pyarrow(target)
        self._path = path
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None

    def write(self, record: dict[str, Any]) -> None:
        identifier = record["id"]
        if not isinstance(identifier, str):
            record = {**record, "id": json.dumps(identifier, ensure_ascii=False)}
        self._rows.append(record)
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def close(self) -> None:
        if self._rows or self._writer is None:
            self._flush()
        self._writer.close()

    def _flush(self) -> None:
        pa = self._pa
        if self._writer is None:
            keys = list(self._rows[0]) if self._rows else ["id", "tokens", "perplexity"]
            schema = pa.schema([(key, _COLUMN_TYPES[key](pa)) for key in keys])
            self._writer = self._pq.ParquetWriter(str(self._path), schema)
        table = self._pa.Table.from_pylist(self._rows, schema=self._writer.schema)
        self._writer.write_table(table)
        self._rows = []


_COLUMN_TYPES: dict[str, Any] = {
    "id": lambda pa: pa.string(),
    "text": lambda pa: pa.string(),
    "tokens": lambda pa: pa.int64(),
    "perplexity": lambda pa: pa.float64(),
    "surprisal": lambda pa: pa.float64(),
    "unknown": lambda pa: pa.int64(),
    "token_text": lambda pa: pa.list_(pa.string()),
    "token_surprisal": lambda pa: pa.list_(pa.float64()),
    "bucket": lambda pa: pa.string(),
}


def _pyarrow(path: Path) -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as err:
        raise ConfigError(Errors.E908.format(path=path, reason=err)) from None
    return pyarrow, pyarrow.parquet
