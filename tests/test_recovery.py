"""A run killed with SIGKILL heals itself: the next `distill run` ends the dead run, frees its pool slots
and completes, with no manual step."""

import os
import shutil
import signal
import subprocess
import time

import dagster as dg
import pytest

from dagster_project.simulator.answer_key import answer_key
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
from tests.pipeline_fixture import DISTILL, REPO_ROOT

SOURCE = "gavinluo-applied-math"


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_generation_run_does_not_block_the_next_one(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    with start_simulator_process(SimulatorSettings(latency_scale=0.0, pause_after=5), answer_key()) as sim:
        env = {**os.environ, "DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse"),
               "DISTILL_GENERATION__BASE_URL": sim.base_url, "DISTILL_JUDGE__BASE_URL": sim.base_url}
        first = subprocess.Popen([DISTILL, "run", "--source", SOURCE], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # The simulator holds requests after 5 answers: the generation step is mid-flight, holding its pool slot.
            _wait(lambda: sim.stats()["held"] > 0, 180, "generation to be in flight")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            stuck = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            assert len(stuck) == 1  # what a killed run leaves behind
            stuck_id = stuck[0].run_id
        sim.configure(pause_after=0)

        second = subprocess.run([DISTILL, "run", "--source", SOURCE], cwd=REPO_ROOT, env=env, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            dead = instance.get_run_by_id(stuck_id)
            assert dead.status == dg.DagsterRunStatus.FAILURE
            assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            # the killed run's backfill was canceled, so no daemon resumes it later
            statuses = sorted(b.status.value for b in instance.get_backfills())
        assert statuses == ["CANCELED", "COMPLETED_SUCCESS"]
