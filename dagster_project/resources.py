"""Dagster resources built from `distill.toml`: the warehouse and the two LLM endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from dagster_project.config import database_path, section
from dagster_project.lib.llm.engine import Budget
from dagster_project.lib.llm.types import EndpointConfig
from dagster_project.lib.warehouse import connection_config, open_warehouse

DUCKDB_POOL = "duckdb"
R1_POOL = "r1_endpoint"
JUDGE_POOL = "judge_endpoint"
VERIFY_POOL = "verifier"


class WarehouseResource(DuckDBResource):
    """DuckDB resource that takes the warehouse lock around every connection."""

    lock_timeout_seconds: float = Field(default=900.0, description="Seconds to wait for the warehouse lock.")

    @contextmanager
    def get_connection(self, purpose: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
        config = self.connection_config or connection_config()
        with open_warehouse(Path(self.database), timeout_s=self.lock_timeout_seconds,
                            purpose=purpose, config=config) as con:
            yield con


def warehouse_resource() -> WarehouseResource:
    cfg = section("warehouse")
    return WarehouseResource(
        database=str(database_path()),
        connection_config=connection_config(cfg.get("memory_limit", "2GB"), int(cfg.get("threads", 2))),
        lock_timeout_seconds=float(cfg.get("lock_timeout_seconds", 900)),
    )


class LLMEndpoint(dg.ConfigurableResource):
    """An OpenAI-compatible endpoint. The API key is read from the environment variable named
    by `api_key_env` when requests are sent; it never enters run config, logs or metadata."""

    kind: str = Field(description="r1 (reasoning traces) or judge")
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://api.example.com/v1")
    model: str
    api_key_env: str = Field(description="Name of the environment variable holding the API key")
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    stream: bool = True
    think_prefix: str = Field(default="template", description="template | prefill | completions | none")
    concurrency: int = 300
    min_concurrency: int = 4
    rpm_limit: int = 0
    tpm_limit: int = 0
    request_timeout_seconds: float = 3600.0
    max_attempts: int = 6
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    currency: str = "USD"
    samples_per_prompt: int = Field(default=1, description="n samples per prompt (rejection sampling)")
    max_requests_per_run: int = Field(default=0, description="spending guard: 0 = no cap")
    max_cost_per_run: float = Field(default=0.0, description="spending guard: 0 = no cap")
    structured_output: bool = Field(default=False, description="judge: send a JSON schema response_format")
    reasoning_excerpt_tokens: int = Field(default=1024, description="judge: reasoning budget per prompt")
    judge_audit_fraction: float = Field(default=0.05, description="judge: share of verifier-decided rows also judged")

    def endpoint_config(self) -> EndpointConfig:
        return EndpointConfig(
            base_url=self.base_url, model=self.model, api_key_env=self.api_key_env,
            temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens, stream=self.stream,
            think_prefix=self.think_prefix, concurrency=self.concurrency, min_concurrency=self.min_concurrency,
            rpm_limit=self.rpm_limit, tpm_limit=self.tpm_limit, request_timeout_s=self.request_timeout_seconds,
            max_attempts=self.max_attempts, price_input_per_mtok=self.price_input_per_mtok,
            price_output_per_mtok=self.price_output_per_mtok, currency=self.currency, kind=self.kind,
        )

    def budget(self) -> Budget | None:
        if not self.max_requests_per_run and not self.max_cost_per_run:
            return None
        return Budget(max_requests=self.max_requests_per_run or None, max_cost=self.max_cost_per_run or None)


def endpoint_resource(section_name: str, kind: str, **overrides) -> LLMEndpoint:
    """The endpoint described by a section of distill.toml (`overrides` win)."""
    cfg = {**section(section_name), **overrides}
    fields = set(LLMEndpoint.model_fields)
    return LLMEndpoint(kind=kind, **{k: v for k, v in cfg.items() if k in fields})
