"""A run killed with SIGKILL heals itself: the next `distill run` ends the dead run, frees its pool slots
and completes, with no manual step."""

import os
import shutil
import signal
import subprocess

import dagster as dg
import pytest

from dagster_project.simulator.answer_key import answer_key
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
from tests.pipeline_fixture import DISTILL, REPO_ROOT
from tests.process_tree import wait_until

SOURCE = "gavinluo-applied-math"


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
            wait_until(lambda: sim.stats()["held"] > 0, 180, "generation to be in flight", poll_s=0.2)
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


@pytest.mark.slow
def test_ctrl_c_stops_the_whole_backfill_not_only_the_running_step(tmp_path):
    """Ctrl-C in `distill run`: the run that works ends (within the grace), no later run starts, the
    backfill is canceled and the command exits 130."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    sources = [SOURCE, "meta-math-gsm8k-zh"]
    with start_simulator_process(SimulatorSettings(latency_scale=0.0, pause_after=5), answer_key()) as sim:
        env = {**os.environ, "DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse"),
               "DISTILL_GENERATION__BASE_URL": sim.base_url, "DISTILL_JUDGE__BASE_URL": sim.base_url,
               "DISTILL_GENERATION__SHUTDOWN_GRACE_SECONDS": "1"}
        cli = subprocess.Popen([DISTILL, "run", *[a for s in sources for a in ("--source", s)]], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
        try:
            wait_until(lambda: sim.stats()["held"] > 0, 180, "generation to be in flight", poll_s=0.2)
            os.killpg(cli.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
            output, _ = cli.communicate(timeout=120)
        finally:
            if cli.poll() is None:
                os.killpg(cli.pid, signal.SIGKILL)
                cli.wait()
        assert cli.returncode == 130, output[-3000:]
        assert "interrupted" in output
        sent = sim.stats()["total_requests"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [backfill] = instance.get_backfills()
        assert backfill.status.value == "CANCELED"
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        assert all(r.is_finished for r in runs)
        generation = [r for r in runs if dg.AssetKey("r1_completions") in (r.asset_selection or set())]
        # only the run that was working when Ctrl-C came: the second source was never started
        started = [r for r in generation if instance.get_run_record_by_id(r.run_id).start_time is not None]
        assert len(started) == 1 and started[0].status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
        assert all(r.status == dg.DagsterRunStatus.CANCELED for r in generation if r not in started)  # queued ones
    assert sent <= 30  # the first source's 30 prompts; nothing was sent for the second source
