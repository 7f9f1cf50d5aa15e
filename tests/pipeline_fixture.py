"""One full pipeline run against the simulator, shared by the end-to-end and CLI tests.

It is what a user does: `distill run` in a real subprocess (one asset backfill over every
source), with the endpoints pointed at a simulator process on loopback and its own warehouse
and DAGSTER_HOME.
"""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.warehouse import connection_config
from dagster_project.resources import WarehouseResource
from dagster_project.simulator.answer_key import answer_key
from dagster_project.simulator.server import SimulatorProcess, SimulatorSettings, start_simulator_process

FAKE_KEY = "sk-test-SECRET-4f1c9e2d7a"
REPO_ROOT = Path(__file__).resolve().parents[1]
DISTILL = str(Path(sys.executable).parent / "distill")


@dataclass
class PipelineRun:
    root: Path
    warehouse: WarehouseResource
    simulator: SimulatorProcess
    home: Path
    output: str
    seconds: float

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DISTILL_WAREHOUSE__DIR": str(self.root / "warehouse"), "DAGSTER_HOME": str(self.home),
                "DISTILL_GENERATION__BASE_URL": self.simulator.base_url,
                "DISTILL_JUDGE__BASE_URL": self.simulator.base_url, "R1_API_KEY": FAKE_KEY, **extra}

    def distill(self, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([DISTILL, *args], capture_output=True, text=True, env=self.env(**env),
                              timeout=timeout, cwd=REPO_ROOT)


def start_run(root: Path) -> PipelineRun:
    """Start the simulator and run the whole pipeline once with the CLI."""
    sim = start_simulator_process(SimulatorSettings(seed=3, latency_scale=0.0), answer_key())
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    warehouse = WarehouseResource(database=str(root / "warehouse" / "warehouse.duckdb"),
                                  connection_config=connection_config(), lock_timeout_seconds=120)
    run = PipelineRun(root, warehouse, sim, home, "", 0.0)
    started = time.perf_counter()
    out = run.distill("run")
    run.output, run.seconds = out.stdout + out.stderr, time.perf_counter() - started
    if out.returncode != 0:
        sim.close()
        raise AssertionError(f"distill run failed ({out.returncode}):\n{run.output[-4000:]}")
    return run
