"""What every table asset reports in the UI, and the data version Dagster compares for staleness."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import dagster as dg

from dagster_project.lib.warehouse import TableInfo


def table_metadata(name: str, info: TableInfo, partitioned: bool = False,
                   descriptions: Mapping[str, str] | None = None) -> dict:
    count_key = "dagster/partition_row_count" if partitioned else "dagster/row_count"
    described = descriptions or {}
    return {
        count_key: info.row_count,
        "dagster/table_name": f"warehouse.main.{name}",
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(c, t, description=described.get(c)) for c, t in info.columns]),
        "preview": dg.MetadataValue.md(info.preview_md),
    }


def table_result(name: str, info: TableInfo, partitioned: bool = False, **metadata: Any) -> dg.MaterializeResult:
    """The materialization of a table asset: its metadata and its content as the data version, so
    rebuilding a table with the same rows leaves everything downstream up to date."""
    from dagster_project.common.contracts import column_descriptions
    from dagster_project.config import config

    return dg.MaterializeResult(
        metadata={**table_metadata(name, info, partitioned, column_descriptions(name)), **rounded(metadata),
                  "config_hash": config().hash()},
        data_version=dg.DataVersion(info.version),
    )


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded for display (recursively in dicts and lists)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, Mapping):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def source_version(*modules: str) -> str:
    """A code version from the source of the modules that decide an asset's content."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name}")
        with open(spec.origin, "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()[:12]
