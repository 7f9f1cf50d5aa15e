"""Metadata every table asset reports in the UI."""

from __future__ import annotations

import dagster as dg

from dagster_project.lib.warehouse import TableInfo


def table_metadata(name: str, info: TableInfo, partitioned: bool = False) -> dict:
    count_key = "dagster/partition_row_count" if partitioned else "dagster/row_count"
    return {
        count_key: info.row_count,
        "dagster/table_name": f"warehouse.main.{name}",
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in info.columns]),
        "preview": dg.MetadataValue.md(info.preview_md),
    }
