"""Fixtures: one simulator subprocess shared by all tests, reset to a fast, fault-free baseline per test."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from dagster_project.lib.llm.engine import Budget, RunSummary, run_requests_sync
from dagster_project.lib.llm.journal import Journal, JournalWriter
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest
from dagster_project.simulator.server import (
    SimulatorProcess,
    SimulatorSettings,
    start_simulator_process,
)

BASELINE = SimulatorSettings(
    seed=7,
    latency_scale=0.0,
    reasoning_chars=(200, 600),
    answer_chars=(60, 160),
    retry_after_s=0.2,
    stall_s=3.0,
)

ANSWER_KEY = {f"计算 {i} 乘以 3 的结果。": str(3 * i) for i in range(40)}


@pytest.fixture(scope="session")
def sim_process() -> Iterator[SimulatorProcess]:
    with start_simulator_process(BASELINE, ANSWER_KEY) as handle:
        yield handle


@pytest.fixture
def sim(sim_process: SimulatorProcess) -> SimulatorProcess:
    sim_process.configure(**BASELINE.to_dict())
    sim_process.reset()
    return sim_process


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal")


@pytest.fixture
def make_cfg(sim: SimulatorProcess):
    def make(**overrides: Any) -> EndpointConfig:
        base: dict[str, Any] = dict(
            base_url=sim.base_url,
            model="deepseek-r1",
            api_key_env="DISTILL_TEST_API_KEY",
            concurrency=8,
            min_concurrency=2,
            max_attempts=4,
            backoff_base_seconds=0.02,
            backoff_max_seconds=0.1,
            request_timeout_seconds=10.0,
        )
        base.update(overrides)
        return EndpointConfig(**base)

    return make


def math_requests(n: int, partition: str = "math", start: int = 0) -> list[LLMRequest]:
    suffix = "请一步步推理，并把最终答案放到 \\boxed{}。"
    return [
        LLMRequest.from_prompt(f"q{i}", partition, f"计算 {i} 乘以 3 的结果。{suffix}") for i in range(start, start + n)
    ]


def run(cfg: EndpointConfig, requests: list[LLMRequest], journal: Journal, stage: str = "r1",
        budget: Budget | None = None, run_id: str = "test") -> RunSummary:  # fmt: skip
    with JournalWriter(journal, stage, flush_every=16, flush_seconds=0.5) as writer:
        return run_requests_sync(requests, cfg, writer, run_id=run_id, budget=budget)


def rows(journal: Journal, sql: str, stage: str = "r1", partition: str | None = None) -> list[dict[str, Any]]:
    table = journal.read_sql(stage, partition, sql)
    return [] if table is None else table.to_pylist()


@pytest.fixture(autouse=True)
def _quiet_server_logs() -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def _loaded_warehouse_file(tmp_path_factory) -> Path:
    """A warehouse with every source loaded and prompts selected, built once per session."""
    import dagster as dg

    from dagster_project.lib.warehouse import connection_config
    from dagster_project.resources import WarehouseResource
    from tests.helpers import load_all_sources

    path = tmp_path_factory.mktemp("loaded-warehouse") / "warehouse.duckdb"
    warehouse = WarehouseResource(database=str(path), connection_config=connection_config(), lock_timeout_seconds=60)
    with dg.instance_for_test() as instance:
        load_all_sources(warehouse, instance)
    return path


@pytest.fixture
def loaded_warehouse(_loaded_warehouse_file, tmp_path):
    """A copy of the loaded warehouse in `tmp_path/warehouse` (point DISTILL_WAREHOUSE__DIR there)."""
    from dagster_project.lib.warehouse import connection_config
    from dagster_project.resources import WarehouseResource

    target = tmp_path / "warehouse" / "warehouse.duckdb"
    target.parent.mkdir()
    shutil.copy(_loaded_warehouse_file, target)
    return WarehouseResource(database=str(target), connection_config=connection_config(), lock_timeout_seconds=60)
