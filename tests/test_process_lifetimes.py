"""A generation step under Dagster's multiprocess executor (what `dagster asset materialize` runs):
SIGKILLed mid-run it leaves no process behind and loses no answer it had received, and a step
that finishes exits on its own."""

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest

from dagster_project import definitions
from dagster_project.lib.llm import wal
from dagster_project.lib.llm.journal import Journal
from dagster_project.lib.warehouse import connection_config
from dagster_project.resources import WarehouseResource
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
from tests.helpers import query, resources_for
from tests.process_tree import kill_all, marked_processes, new_marker, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")
KEY = "haijian-advanced-math"  # 8 selected prompts in the bundled samples
ANSWERED_BEFORE_KILL = 3  # at least: requests already past the simulator's pause check are answered too
EXIT_DEADLINE_S = 240  # a step that waits on a helper process never exits: this turns the hang into a failure


class Materialize:
    """`dagster asset materialize --select r1_completions --partition KEY`, a process per step, in its own session."""

    def __init__(self, env: dict) -> None:
        self.proc = subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "tests.multiprocess_defs", "--select", "r1_completions",
             "--partition", KEY], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def wait(self) -> int:
        try:
            rc = self.proc.wait(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"did not exit within {EXIT_DEADLINE_S}s:\n" + "".join(self.lines[-20:]))
        self._reader.join(timeout=30)
        return rc

    @property
    def output(self) -> str:
        return "".join(self.lines)


def prepare_warehouse(root: Path) -> WarehouseResource:
    """raw_prompts for KEY and the selection models, in-process."""
    warehouse = WarehouseResource(database=str(root / "warehouse" / "warehouse.duckdb"),
                                  connection_config=connection_config(), lock_timeout_seconds=120)
    with dg.instance_for_test() as instance:
        resources = resources_for(warehouse)
        assert dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key=KEY,
                              resources=resources, instance=instance).success
        selection = dg.AssetSelection.assets("prompt_selection").upstream() - dg.AssetSelection.assets("raw_prompts")
        assert dg.materialize(definitions.defs.assets, selection=selection, resources=resources,
                              instance=instance).success
    return warehouse


@pytest.mark.slow
def test_generation_step_killed_then_resumed_under_the_multiprocess_executor(tmp_path):
    warehouse = prepare_warehouse(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).dispose()  # create its storage once, as `dagster dev` does
    journal = Journal(tmp_path / "warehouse" / "journal")
    marker, env = new_marker()
    with start_simulator_process(SimulatorSettings(seed=5, latency_scale=0.0)) as sim:
        env.update(DAGSTER_HOME=str(home), DISTILL_WAREHOUSE__DIR=str(tmp_path / "warehouse"),
                   DISTILL_GENERATION__BASE_URL=sim.base_url, DISTILL_GENERATION__CONCURRENCY="2",
                   R1_API_KEY="sk-test-process-lifetimes")
        sim.configure(pause_after=ANSWERED_BEFORE_KILL)  # then every request is held open
        first = Materialize(env)
        try:
            def step_holding_answers():
                assert first.proc.poll() is None, first.output[-3000:]
                stats = sim.stats()
                segments = list(journal.wal_dir("r1").glob("*.wal"))
                finals = sum(r["is_final"] for s in segments for r in wal.read_records(s))
                return stats["held"] > 0 and finals == stats["responses_200"] >= ANSWERED_BEFORE_KILL and segments
            (segment,) = wait_until(step_holding_answers, EXIT_DEADLINE_S, "the step to journal its first answers")
            answered = sim.stats()["responses_200"]
            step_pid = int(segment.name.split("-")[1])  # the writer's process: the step process
            assert step_pid != first.proc.pid and {p["pid"] for p in marked_processes(marker)} >= {step_pid}
            os.kill(step_pid, signal.SIGKILL)
            first.wait()  # the run worker notices the dead step and exits
            wait_until(lambda: not marked_processes(marker), 30, "every process of the killed run to exit")
        finally:
            kill_all(marked_processes(marker))
        assert "Executing steps using multiprocess executor" in first.output and "STEP_SUCCESS" not in first.output

        sim.configure(pause_after=0)
        second = Materialize(env)
        assert second.wait() == 0, second.output[-3000:]
        assert "STEP_SUCCESS" in second.output and "Executing steps using multiprocess executor" in second.output
        assert f"{8 - answered} to send, {answered} reused from the journal" in second.output
        left = marked_processes(marker)
        kill_all(left)
        assert left == []
        ok = sim.stats()["ok_per_prompt"]
    assert len(ok) == 8 and set(ok.values()) == {1}  # the killed run's answers were not bought again
    assert query(warehouse, "SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM r1_completions "
                            "WHERE source_key = ?", [KEY]) == [(8, 8)]
    assert list(journal.wal_dir("r1").glob("*.wal")) == []
