"""Stop means stop: SIGINT/SIGTERM end a paid run within its grace, journal what arrived, say what was not sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import math_requests

from dagster_project.lib.llm.journal import Journal, plan
from dagster_project.lib.llm.types import EndpointConfig

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONCURRENCY = 8  # stop_child.py's


def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_child(args: list[str], env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{HERE}", **(env or {})}
    return subprocess.Popen([sys.executable, *args], env=env, cwd=HERE, stdout=subprocess.PIPE, text=True)


def interrupt_when_busy(sim, child: subprocess.Popen, answered: int, sig: int = signal.SIGINT,
                        held: bool = False) -> dict:
    """Wait until `answered` responses went out and requests are in flight (with `held`: at least one
    of them held by the simulator, so it cannot finish), signal the child, return the simulator's
    counts at that moment."""
    try:
        at = wait_for(lambda: (s := sim.stats())["responses_200"] >= answered and s["in_flight"] > 0
                      and (s["held"] > 0 or not held) and s, "a busy run")  # fmt: skip
        assert child.poll() is None, "the run ended before it was interrupted"
        child.send_signal(sig)
        return at
    except BaseException:
        child.kill()
        child.wait()
        raise


@pytest.mark.parametrize("mode", ["main", "helper"])
def test_sigint_stops_scheduling_lets_in_flight_finish_and_counts(sim, journal, mode) -> None:
    sim.configure(latency_scale=1.0, ttft_s=0.4, tokens_per_s=0)
    n = 200
    child = start_child([str(HERE / "stop_child.py"), sim.base_url, str(journal.root), str(n), "5", mode])
    at = interrupt_when_busy(sim, child, answered=16)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 3, out
    report = json.loads(out.strip().splitlines()[-1])
    stats = sim.stats()
    # after the signal, nothing beyond what was in flight (at most the concurrency, 8: the simulator's
    # counts were read a moment before the signal); that finished inside the grace
    assert stats["total_requests"] - at["total_requests"] <= CONCURRENCY and stats["in_flight"] == 0
    assert report["sent"] == stats["total_requests"]
    finals = journal.read_sql("r1", "math", "SELECT count(*) AS n FROM j WHERE is_final").column("n")[0].as_py()
    assert report["journaled"] == finals == stats["responses_200"] == report["sent"]
    assert report["not_sent"] == n - report["sent"] > 0 and report["signal"] == "SIGINT"
    assert f"{report['sent']} sent, {finals} journaled, {n - report['sent']} not sent" in report["interrupted"]


def test_sigterm_after_the_grace_cancels_and_a_resume_sends_those_again(sim, journal) -> None:
    sim.configure(latency_scale=1.0, ttft_s=0.2, tokens_per_s=0)
    child = start_child([str(HERE / "stop_child.py"), sim.base_url, str(journal.root), "100", "0.3", "main"])
    sim.configure(pause_after=8)  # answers eight, then holds every later request: they cannot finish in the grace
    interrupt_when_busy(sim, child, answered=8, sig=signal.SIGTERM, held=True)
    t0 = time.monotonic()
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 3 and time.monotonic() - t0 < 5, out
    cut = journal.read_sql("r1", "math", "SELECT count(*) AS n FROM j WHERE error_type = 'interrupted' "
                                         "AND NOT is_final").column("n")[0].as_py()  # fmt: skip
    report = json.loads(out.strip().splitlines()[-1])
    assert report["sent"] - report["journaled"] == cut
    assert report["signal"] == "SIGTERM" and cut > 0
    sim.configure(pause_after=0)
    cfg = EndpointConfig(base_url=sim.base_url, model="deepseek-r1")
    to_send, reused = plan(cfg, math_requests(100), Journal(journal.root))
    assert len(reused) == report["journaled"] and len(to_send) == 100 - report["journaled"]


@pytest.mark.slow
def test_sigint_ends_a_dagster_run_not_successfully(sim, loaded_warehouse, tmp_path) -> None:
    """A real Dagster run of `r1_completions` in its own process: SIGINT mid-run, the run is not SUCCESS."""
    from tests.helpers import query

    warehouse = loaded_warehouse
    key = "gavinluo-applied-math"
    selected = query(warehouse, "SELECT count(*) FROM prompt_selection WHERE source_key = ? AND decision = 'selected'",
                     [key])[0][0]  # fmt: skip
    home = tmp_path / "dagster_home"
    home.mkdir()
    sim.configure(latency_scale=1.0, ttft_s=0.5, tokens_per_s=0)
    env = {"DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(Path(warehouse.database).parent),
           "DISTILL_GENERATION__BASE_URL": sim.base_url, "DISTILL_GENERATION__CONCURRENCY": "2",
           "DISTILL_GENERATION__SHUTDOWN_GRACE_SECONDS": "3"}  # fmt: skip
    child = start_child([str(HERE / "stop_dagster_child.py"), key], env)
    at = interrupt_when_busy(sim, child, answered=4)
    out, _ = child.communicate(timeout=60)
    stats = sim.stats()
    assert stats["total_requests"] - at["total_requests"] <= 2 and stats["responses_200"] < selected  # concurrency 2
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    import dagster as dg

    with dg.DagsterInstance.local_temp(str(home)) as child_instance:  # the instance the child used
        run = child_instance.get_run_by_id(run_id)
        assert run is not None and run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
        failures = [e for e in child_instance.all_logs(run_id) if e.dagster_event and e.dagster_event.is_step_failure]
    assert failures and "interrupted by SIGINT" in failures[0].dagster_event.step_failure_data.error.to_string()
