"""A run killed with SIGKILL resumes without paying twice for any answer it had received."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import math_requests, run

from dagster_project.lib.llm import wal
from dagster_project.lib.llm.journal import plan
from dagster_project.simulator.server import prompt_sha
from tests.process_tree import marked_processes, new_marker, wait_until

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("engine_child.py")
N, ANSWERED_BEFORE_KILL, CONCURRENCY = 30, 10, 4


def start_child(sim, journal, n: int, concurrency: int, env: dict, partition: str = "math",
                start: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), sim.base_url, str(journal.root), str(n), str(concurrency),
                             partition, str(start)], env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO)  # fmt: skip


def wal_finals(journal, stage: str = "r1", pattern: str = "*.wal") -> int:
    """Final attempts in the write-ahead segments (what a live writer has received but not folded)."""
    return sum(r["is_final"] for path in journal.wal_dir(stage).glob(pattern) for r in wal.read_records(path))


def final_count(journal) -> int:
    table = journal.read_sql("r1", "math", "SELECT count(*) AS n FROM j WHERE is_final")
    return 0 if table is None else table.column("n")[0].as_py()


def test_sigkill_mid_run_then_resume(sim, make_cfg, journal) -> None:
    # The simulator answers ANSWERED_BEFORE_KILL requests, then holds every later one open,
    # so the kill lands while requests are in flight and every answer is already received.
    sim.configure(pause_after=ANSWERED_BEFORE_KILL)
    marker, env = new_marker()
    child = start_child(sim, journal, N, CONCURRENCY, env)
    try:
        def settled():
            stats = sim.stats()
            assert child.poll() is None, "engine exited before it was killed"
            return stats["held"] == CONCURRENCY and wal_finals(journal) == stats["responses_200"] and stats
        stats = wait_until(settled, 30, "every answered request to reach the write-ahead segment")
        assert final_count(journal) == 0  # nothing folded yet, and a live writer's segment is never taken
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    answered = stats["responses_200"]
    assert answered >= ANSWERED_BEFORE_KILL
    assert marked_processes(marker) == []  # the killed run left no process behind
    sim.configure(pause_after=0)

    reqs = math_requests(N)
    to_send, reused = plan(make_cfg(), reqs, journal)  # folds the dead writer's segment first
    assert len(reused) == answered and len(to_send) == N - answered
    assert list(journal.wal_dir("r1").glob("*.wal")) == []
    summary = run(make_cfg(), to_send, journal, run_id="resumed")
    assert summary.by_status == {"ok": N - answered}

    ok_counts = sim.stats()["ok_per_prompt"]
    assert {prompt_sha(r.user_prompt()) for r in reqs} == set(ok_counts)
    assert [sha for sha, n in ok_counts.items() if n != 1] == []  # nobody answered 200 twice
    per_request = journal.read_sql(
        "r1", "math", "SELECT request_hash, count(*) FILTER (WHERE is_final) AS finals, "
        "min(content_tokens_len) AS tokens FROM j GROUP BY 1"
    ).to_pylist()
    assert len(per_request) == N and all(r["finals"] == 1 for r in per_request)
    assert all(r["tokens"] > 0 for r in per_request)  # counted when the recovered segment was folded
