"""Read a source file's native records, one at a time, without ever dropping a bad one.

Each reader yields `(line, record, error)`: `line` is the 1-based line (JSONL, CSV) or
record number (JSON array, Parquet); exactly one of `record` / `error` is set.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

Item = tuple[int, dict[str, Any] | None, str | None]


def _decode(raw: bytes, encoding: str) -> tuple[str | None, str | None]:
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        return None, f"not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start}"


def _as_record(value: Any) -> tuple[dict | None, str | None]:
    if isinstance(value, dict):
        return value, None
    return None, f"expected a JSON object, got {type(value).__name__}"


def read_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            text, err = _decode(raw, encoding)
            if err:
                yield line_no, None, err
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line_no, None, f"malformed JSON: {exc.msg} (column {exc.colno})"
                continue
            rec, err = _as_record(value)
            yield line_no, rec, err


def read_json(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    """A JSON array of objects; a file that is really JSON Lines is read as such."""
    raw = path.read_bytes()
    if raw.lstrip()[:1] != b"[":
        yield from read_jsonl(path, encoding)
        return
    text, err = _decode(raw, encoding)
    if err:
        yield 1, None, err
        return
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, None, f"malformed JSON array: {exc.msg} (line {exc.lineno}, column {exc.colno}); no record of this file could be read"
        return
    for i, value in enumerate(values, start=1):
        rec, err = _as_record(value)
        yield i, rec, err


def read_parquet(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            n += 1
            yield n, rec, None


def read_csv(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    raw = path.read_bytes()
    text, err = _decode(raw, encoding)
    if err:
        yield 1, None, err
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for rec in reader:
        yield reader.line_num, dict(rec), None


READERS = {"jsonl": read_jsonl, "json": read_json, "parquet": read_parquet, "csv": read_csv}


def read_records(path: Path, fmt: str, encoding: str = "utf-8") -> Iterator[Item]:
    return READERS[fmt](path, encoding)
