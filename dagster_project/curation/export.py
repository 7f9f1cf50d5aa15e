"""Versioned, atomic dataset export: JSONL + Parquet per table, manifest.json, README.md card.

Layout::

    out_root/
      LATEST                  # name of the most recently written version
      <version>/
        <table>.jsonl         # UTF-8, ensure_ascii=False, keys in schema order
        <table>.parquet       # zstd
        plots/*.png
        README.md             # dataset card with Hugging Face front matter
        manifest.json         # version, created_at, per-file rows/bytes/sha256, caller extras

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
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import card as card_module
from .card import DatasetCard
from .secret_scan import find_secrets, redact, scan_table, secret_patterns  # noqa: F401  (re-exported)

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RESERVED_KEYS = {"version", "created_at", "tables", "files"}
_BATCH_ROWS = 1024
_ROW_GROUP = 16_384
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportResult:
    version: str
    path: Path
    manifest: dict[str, Any]


def default_version(now: datetime | None = None) -> str:
    """UTC timestamp ``YYYYMMDDTHHMMSSZ``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def write_jsonl(table: pa.Table, path: Path) -> tuple[int, str]:
    """Stream ``table`` to JSONL one record batch at a time; return (bytes, sha256)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as handle:
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            data = "".join(
                json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in batch.to_pylist()
            ).encode("utf-8")
            handle.write(data)
            digest.update(data)
            size += len(data)
    return size, digest.hexdigest()


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
    tables: Mapping[str, pa.Table],
    out_root: Path | str,
    *,
    version: str | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
    card: DatasetCard | Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write ``tables`` as a new export version under ``out_root`` and point ``LATEST`` at it.

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
    card_spec = DatasetCard.from_any(card)

    tmp = out_root / f".tmp-{version}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, table in tables.items():
            size, sha = write_jsonl(table, tmp / f"{name}.jsonl")
            files[f"{name}.jsonl"] = {"rows": table.num_rows, "bytes": size, "sha256": sha}
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd", row_group_size=_ROW_GROUP)
            size, sha = file_digest(tmp / f"{name}.parquet")
            files[f"{name}.parquet"] = {"rows": table.num_rows, "bytes": size, "sha256": sha}

        created_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        stats_name = _stats_table_name(tables, card_spec.stats_table)
        cats = card_module.categories(tables[stats_name], card_spec.category_by_repo) if stats_name else []
        plots = card_module.write_plots(tables[stats_name], cats, tmp) if stats_name and card_spec.plots else []
        readme = card_module.render(
            card_spec,
            tables=tables,
            files=files,
            plots=plots,
            version=version,
            created_at=created_at,
            manifest_extra=extra,
            stats_name=stats_name,
            cats=cats,
        )
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        for relative in [*plots, "README.md"]:
            size, sha = file_digest(tmp / relative)
            files[relative] = {"bytes": size, "sha256": sha}

        manifest = {
            "version": version,
            "created_at": created_at,
            "tables": {
                name: {
                    "rows": table.num_rows,
                    "columns": table.column_names,
                    "files": [f"{name}.jsonl", f"{name}.parquet"],
                }
                for name, table in tables.items()
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


def _stats_table_name(tables: Mapping[str, pa.Table], preferred: str | None) -> str | None:
    for name in (preferred, "raw", "sft", *tables):
        if name in tables:
            return name
    return None


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
