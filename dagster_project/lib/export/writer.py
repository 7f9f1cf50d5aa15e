"""Versioned, atomic dataset export: JSONL + Parquet per table, manifest.json, README.md card.

Layout::

    out_root/
      LATEST                  # name of the most recently written version
      <version>/
        <table>.jsonl         # UTF-8, ensure_ascii=False, keys in schema order
        <table>.parquet       # zstd
        plots/*.png
        README.md             # dataset card (huggingface_hub DatasetCard: YAML header + Markdown)
        LICENSE.md            # only when the card's license is "other": the terms of each source
        manifest.json         # version, created_at, per-file rows/bytes/sha256, caller extras

Each table is streamed one record batch at a time into its JSONL file and Parquet writer, so a
table given as a ``RecordBatchReader`` (or a callable opening one) is never held whole: at most one
Parquet row group of it is buffered, plus the few columns the card's statistics read.

Everything is written into ``out_root/.tmp-<version>-<uuid>`` and renamed to ``<version>`` with
``os.replace`` at the end, so readers never see a half-written version. An existing version is
refused unless ``overwrite=True`` (then it is swapped out and deleted after the rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.lib.export import card as card_module
from dagster_project.lib.export import plots as plots_module
from dagster_project.lib.export.card import CardSpec
from dagster_project.lib.processes import process_alive
from dagster_project.lib.secrets import (  # noqa: F401  (re-exported)
    find_secrets,
    redact,
    scan_table,
    secret_patterns,
)

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RESERVED_KEYS = {"version", "created_at", "tables", "files"}
_BATCH_ROWS = 1024
_ROW_GROUP = 16_384
_CHUNK = 1 << 20


TableSource = Union[pa.Table, pa.RecordBatchReader, Callable[[], pa.RecordBatchReader]]
"""An in-memory table, a reader, or a callable opening a reader (opened only when its turn comes)."""


@dataclass(frozen=True)
class ExportResult:
    version: str
    path: Path
    manifest: dict[str, Any]


def default_version(now: datetime | None = None) -> str:
    """UTC timestamp ``YYYYMMDDTHHMMSSZ``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def write_jsonl(table: TableSource, path: Path) -> tuple[int, str]:
    """Stream ``table`` to JSONL one record batch at a time; return (bytes, sha256)."""
    with _open_reader(table) as reader, path.open("wb") as handle:
        out = _JsonlWriter(handle)
        for batch in reader:
            out.write(batch)
    return out.size, out.digest.hexdigest()


def _open_reader(source: TableSource) -> pa.RecordBatchReader:
    if isinstance(source, pa.Table):
        return pa.RecordBatchReader.from_batches(source.schema, source.to_batches(max_chunksize=_BATCH_ROWS))
    if isinstance(source, pa.RecordBatchReader):
        return source
    if callable(source):
        return source()
    raise TypeError(f"cannot export {type(source).__name__}: pass a pyarrow Table or RecordBatchReader")


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


class _JsonlWriter:
    """One line per row (``ensure_ascii=False``, keys in schema order), hashed as it is written."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, batch: pa.RecordBatch) -> None:
        for piece in _slices(batch, _BATCH_ROWS):  # bound the Python objects alive at once
            data = "".join(
                json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in piece.to_pylist()
            ).encode("utf-8")
            self.handle.write(data)
            self.digest.update(data)
            self.size += len(data)


class _RowGroupWriter:
    """Buffers batches into full ``_ROW_GROUP``-row groups, so the file matches ``pq.write_table``."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema) -> None:
        self.writer = writer
        self.schema = schema
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.written = False

    def write(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows >= _ROW_GROUP:
            self._flush(self.pending_rows // _ROW_GROUP * _ROW_GROUP)

    def close(self) -> None:
        if self.pending_rows or not self.written:  # an empty table still gets its one empty row group
            self._flush(self.pending_rows)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self.pending, self.schema)
        self.writer.write_table(table.slice(0, rows), row_group_size=_ROW_GROUP)
        rest = table.slice(rows)
        self.pending, self.pending_rows, self.written = rest.to_batches(), rest.num_rows, True


def _write_table(
    source: TableSource, out_dir: Path, name: str, stats_columns: Sequence[str] | None
) -> tuple[int, pa.Schema, tuple[int, str], pa.Table | None]:
    """Stream one table to ``<name>.jsonl`` and ``<name>.parquet``.

    Returns (rows, schema, (jsonl bytes, jsonl sha256), stats) where ``stats`` holds only the
    present ``stats_columns`` (None when ``stats_columns`` is None).
    """
    with _open_reader(source) as reader, (out_dir / f"{name}.jsonl").open("wb") as handle:
        schema = reader.schema
        keep = None if stats_columns is None else [c for c in schema.names if c in stats_columns]
        jsonl = _JsonlWriter(handle)
        kept: list[pa.RecordBatch] = []
        rows = 0
        with pq.ParquetWriter(out_dir / f"{name}.parquet", schema, compression="zstd") as writer:
            parquet = _RowGroupWriter(writer, schema)
            for batch in reader:
                jsonl.write(batch)
                parquet.write(batch)
                if keep is not None:
                    # Copy the few columns: a batch imported from DuckDB shares one owner across its
                    # buffers, so a zero-copy select would keep every whole batch alive.
                    kept.append(pa.concat_batches([batch.select(keep)]))
                rows += batch.num_rows
            parquet.close()
    stats = None if keep is None else pa.Table.from_batches(kept, pa.schema([schema.field(c) for c in keep]))
    return rows, schema, (jsonl.size, jsonl.digest.hexdigest()), stats


def file_digest(path: Path) -> tuple[int, str]:
    """(bytes, sha256) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def write_export(
    tables: Mapping[str, TableSource],
    out_root: Path | str,
    *,
    version: str | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
    card: CardSpec | Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write ``tables`` as a new export version under ``out_root`` and point ``LATEST`` at it.

    Each value is a ``pa.Table``, a ``pa.RecordBatchReader`` or a callable returning one; callables
    are opened one at a time, in order, and the reader is closed before the next table starts.

    ``manifest_extra`` is merged into manifest.json (config hash, package versions, source
    commit, ``simulated`` flag...); its keys may not shadow version/created_at/tables/files. When
    ``manifest_extra["simulated"]`` is true the card carries a SIMULATED DATA banner.
    """
    if not tables:
        raise ValueError("nothing to export")
    extra = dict(manifest_extra or {})
    clash = _RESERVED_KEYS & extra.keys()
    if clash:
        raise ValueError(f"manifest_extra may not set {sorted(clash)}")
    for name in tables:
        if not _VERSION_RE.match(name):
            raise ValueError(f"bad table name {name!r}")
    now = datetime.now(timezone.utc)
    version = version or default_version(now)
    if not _VERSION_RE.match(version):
        raise ValueError(f"bad version {version!r}: use letters, digits, '.', '_' or '-'")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / version
    if final.exists() and not overwrite:
        raise FileExistsError(f"export version {version} already exists at {final}")
    card_spec = CardSpec.from_any(card)

    remove_abandoned(out_root)
    tmp = out_root / f".tmp-{version}-{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files: dict[str, dict[str, Any]] = {}
        written: dict[str, tuple[int, pa.Schema]] = {}
        stats_name = _stats_table_name(tables, card_spec.stats_table)
        stats = None
        for name, source in tables.items():
            rows, schema, (size, sha), kept = _write_table(
                source, tmp, name, card_module.STATS_COLUMNS if name == stats_name else None
            )
            if name == stats_name:
                stats = kept
            written[name] = (rows, schema)
            files[f"{name}.jsonl"] = {"rows": rows, "bytes": size, "sha256": sha}
            size, sha = file_digest(tmp / f"{name}.parquet")
            files[f"{name}.parquet"] = {"rows": rows, "bytes": size, "sha256": sha}

        created_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        cats = card_module.categories(stats, card_spec.categories()) if stats_name else []
        plots = plots_module.write_plots(stats, cats, tmp) if stats_name and card_spec.plots else []
        card_files = card_module.render(
            card_spec,
            rows={name: rows for name, (rows, _) in written.items()},
            stats=stats,
            files=files,
            plots=plots,
            version=version,
            created_at=created_at,
            manifest_extra=extra,
            stats_name=stats_name,
            cats=cats,
        )
        for name, text in card_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        for relative in [*(p.path for p in plots), *card_files]:
            size, sha = file_digest(tmp / relative)
            files[relative] = {"bytes": size, "sha256": sha}

        manifest = {
            "version": version,
            "created_at": created_at,
            "tables": {
                name: {
                    "rows": rows,
                    "columns": schema.names,
                    "files": [f"{name}.jsonl", f"{name}.parquet"],
                }
                for name, (rows, schema) in written.items()
            },
            "files": files,
            **extra,
        }
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
        )
        _publish(tmp, final, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_latest(out_root, version)
    return ExportResult(version=version, path=final, manifest=json.loads((final / "manifest.json").read_text("utf-8")))


def _stats_table_name(tables: Mapping[str, TableSource], preferred: str | None) -> str | None:
    for name in (preferred, "raw", "sft", *tables):
        if name in tables:
            return name
    return None


def remove_abandoned(out_root: Path) -> list[Path]:
    """Remove the `.tmp-*` folders of exports whose writing process died (killed mid-write); a
    folder whose writer is alive is left alone."""
    removed = []
    for path in out_root.glob(".tmp-*"):
        match = _TMP_RE.match(path.name)
        if match and process_alive(int(match.group("pid"))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


_TMP_RE = re.compile(r"^\.tmp-.+-(?P<pid>\d+)-[0-9a-f]{32}$")


def _publish(tmp: Path, final: Path, overwrite: bool) -> None:
    if not final.exists():
        os.replace(tmp, final)
        return
    if not overwrite:
        raise FileExistsError(f"export version {final.name} already exists at {final}")
    retired = final.with_name(f".old-{final.name}-{uuid.uuid4().hex}")
    os.replace(final, retired)
    os.replace(tmp, final)
    shutil.rmtree(retired, ignore_errors=True)


def _write_latest(out_root: Path, version: str) -> None:
    tmp = out_root / f".LATEST-{uuid.uuid4().hex}"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, out_root / "LATEST")


def read_latest(out_root: Path | str) -> str | None:
    """The version named in ``out_root/LATEST``, or None."""
    path = Path(out_root) / "LATEST"
    return path.read_text("utf-8").strip() if path.exists() else None
