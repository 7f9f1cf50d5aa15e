"""A run killed with SIGKILL resumes without paying twice for any answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import math_requests, run

from dagster_project.lib.llm.journal import plan
from dagster_project.simulator.server import prompt_sha

REPO = Path(__file__).resolve().parents[2]
N, ANSWERED_BEFORE_KILL, CONCURRENCY = 30, 10, 4


def final_count(journal) -> int:
    table = journal.read_sql("r1", "math", "SELECT count(*) AS n FROM j WHERE is_final")
    return 0 if table is None else table.column("n")[0].as_py()


def test_sigkill_mid_run_then_resume(sim, make_cfg, journal) -> None:
    # The simulator answers ANSWERED_BEFORE_KILL requests, then holds every later one open,
    # so the kill lands while requests are in flight but none is answered-and-unjournaled.
    sim.configure(pause_after=ANSWERED_BEFORE_KILL)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("engine_child.py")), sim.base_url, str(journal.root),
         str(N), str(CONCURRENCY)],
        env=env, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:  # poll the journal directory until every answered request is durable
            stats = sim.stats()
            answered = stats["responses_200"]
            if (answered >= ANSWERED_BEFORE_KILL and stats["held"] == CONCURRENCY
                    and stats["in_flight"] == CONCURRENCY and final_count(journal) == answered):  # fmt: skip
                break
            assert child.poll() is None, "engine exited before it was killed"
            assert time.monotonic() < deadline, f"journal never caught up: {stats}"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    journaled = final_count(journal)
    assert journaled == answered >= ANSWERED_BEFORE_KILL
    sim.configure(pause_after=0)

    reqs = math_requests(N)
    to_send, reused = plan(make_cfg(), reqs, journal)
    assert len(reused) == journaled and len(to_send) == N - journaled
    summary = run(make_cfg(), to_send, journal, run_id="resumed")
    assert summary.by_status == {"ok": N - journaled}

    stats = sim.stats()
    ok_counts = stats["ok_per_prompt"]
    assert {prompt_sha(r.user_prompt()) for r in reqs} == set(ok_counts)
    assert [sha for sha, n in ok_counts.items() if n != 1] == []  # nobody answered 200 twice
    per_request = journal.read_sql(
        "r1", "math", "SELECT request_hash, count(*) FILTER (WHERE is_final) AS finals FROM j GROUP BY 1"
    ).to_pylist()
    assert len(per_request) == N and all(r["finals"] == 1 for r in per_request)
