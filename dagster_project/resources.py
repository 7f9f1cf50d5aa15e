"""Dagster resources derived from the configuration: the warehouse and the two LLM endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from dagster_project.common.derived import derived_resource
from dagster_project.config import DistillConfig, config
from dagster_project.lib.llm.types import EndpointConfig
from dagster_project.lib.warehouse import connection_config, open_warehouse

# Concurrency pools (limits in dagster_project/dagster.yaml). `duckdb` is held by the steps that
# are one warehouse write from start to end (the SQL models); every other step takes the
# warehouse lock only for its short reads and writes.
DUCKDB_POOL = "duckdb"
R1_POOL = "r1_endpoint"
JUDGE_POOL = "judge_endpoint"
VERIFY_POOL = "verifier"


class WarehouseResource(DuckDBResource):
    """DuckDB resource that takes the cross-process warehouse lock around every connection."""

    lock_timeout_seconds: float = Field(default=900.0, description="Seconds to wait for the warehouse lock.")

    @contextmanager
    def get_connection(self, purpose: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
        cfg = self.connection_config or connection_config()
        with open_warehouse(Path(self.database), timeout_s=self.lock_timeout_seconds,
                            purpose=purpose, config=cfg) as con:
            yield con


def warehouse_resource(cfg: DistillConfig | None = None) -> WarehouseResource:
    cfg = cfg or config()
    return WarehouseResource(
        database=str(cfg.database_path),
        connection_config=connection_config(cfg.warehouse.memory_limit, cfg.warehouse.threads),
        lock_timeout_seconds=cfg.warehouse.lock_timeout_seconds,
    )


_ENDPOINT_DOC = ("An OpenAI-compatible endpoint (defaults: the `[{section}]` section of distill.toml). The API key is "
                 "read from the environment variable named by `api_key_env` when requests are sent; it never "
                 "enters run config, logs or metadata.")

R1Endpoint = derived_resource("R1Endpoint", EndpointConfig, config().generation,
                              _ENDPOINT_DOC.format(section="generation"), exclude=["kind"])
JudgeEndpoint = derived_resource("JudgeEndpoint", EndpointConfig, config().judge,
                                 _ENDPOINT_DOC.format(section="judge"), exclude=["kind"])
