"""Dagster resources built from `distill.toml`."""

from __future__ import annotations

from .settings import database_path, section
from .warehouse import WarehouseResource, connection_config

DUCKDB_POOL = "duckdb"


def warehouse_resource() -> WarehouseResource:
    cfg = section("warehouse")
    return WarehouseResource(
        database=str(database_path()),
        connection_config=connection_config(cfg.get("memory_limit", "4GB"), int(cfg.get("threads", 2))),
        lock_timeout_seconds=float(cfg.get("lock_timeout_seconds", 900)),
    )
