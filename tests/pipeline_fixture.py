"""One full pipeline run against the simulator, shared by the end-to-end and CLI tests."""

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_project import definitions
from dagster_project.cli.pipeline import PipelineResult, answer_key, run_pipeline
from dagster_project.config import reload_config
from dagster_project.lib.warehouse import connection_config
from dagster_project.resources import JudgeEndpoint, R1Endpoint, WarehouseResource
from dagster_project.simulator.server import (
    SimulatorProcess,
    SimulatorSettings,
    start_simulator_process,
)

FAKE_KEY = "sk-test-SECRET-4f1c9e2d7a"


@dataclass
class PipelineRun:
    root: Path
    warehouse: WarehouseResource
    resources: dict
    simulator: SimulatorProcess
    result: PipelineResult
    home: Path

    def run_again(self, instance: dg.DagsterInstance) -> PipelineResult:
        return run_pipeline(definitions.defs, instance, resources=self.resources, log_level="WARNING")


def start_run(root: Path) -> PipelineRun:
    """Point the settings at `root`, start the simulator, and run every stage once."""
    os.environ["DISTILL_WAREHOUSE__DIR"] = str(root / "warehouse")
    os.environ["R1_API_KEY"] = FAKE_KEY
    reload_config()
    sim = start_simulator_process(SimulatorSettings(seed=3, latency_scale=0.0), answer_key())
    warehouse = WarehouseResource(database=str(root / "warehouse" / "warehouse.duckdb"),
                                  connection_config=connection_config(), lock_timeout_seconds=120)
    resources = {
        "warehouse": warehouse,
        "r1": R1Endpoint(base_url=sim.base_url),
        "judge": JudgeEndpoint(base_url=sim.base_url),
    }
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_pipeline(definitions.defs, instance, resources=resources, log_level="INFO")
    return PipelineRun(root, warehouse, resources, sim, result, home)
