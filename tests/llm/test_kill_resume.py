"""SIGKILL at random moments at high throughput: only what was in flight is bought again, nothing is left running.

The engine runs in a child process at CONCURRENCY requests in flight against the simulator
subprocess (1 s per response, so about CONCURRENCY responses per second). Each kill lands at a
random moment at which the engine keeps (nearly) all its slots busy; just before it, the
simulator reports what it has in flight. A response it completes after that snapshot cannot
have reached the killed client; any other response it completed was received, and must not be
bought again. (A client starved of CPU on a loaded machine stops reading its sockets and sending
new requests, so the server sees fewer in flight: responses then wait unread in the kernel,
still in flight for the engine. The kill waits for a moment the engine is keeping up.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess

from conftest import math_requests
from test_resume import start_child

from dagster_project.lib.llm.journal import request_hash
from dagster_project.lib.llm.types import EndpointConfig
from tests.process_tree import kill_all, marked_processes, new_marker, wait_until

N, CONCURRENCY, KILLS = 3000, 250, 3
KEEPING_UP = 0.9  # share of CONCURRENCY the simulator must see in flight at the kill
KILL_AFTER_S = (2.0, 3.5)  # after the child's first request: the first answers arrive after 1 s
# Responses completed just before the snapshot may still have been in the killed client's socket
# or event loop (received by the kernel, not yet by the engine): this much of what was in flight.
CLIENT_LAG_SHARE = 0.05


def test_random_sigkills_at_high_throughput_rebuy_only_in_flight(sim, journal) -> None:
    sim.configure(ttft_s=1.0, tokens_per_s=0.0, latency_scale=1.0)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    marker, env = new_marker()
    kills = []
    for _ in range(KILLS):
        before = sim.stats()["total_requests"]
        child = start_child(sim, journal, N, CONCURRENCY, env)
        try:
            wait_until(lambda: sim.stats()["total_requests"] > before or child.poll() is not None, 60, "the first request")
            _run_until(child, rng.uniform(*KILL_AFTER_S) - 1.0)
            window = sim.stats()
            _run_until(child, 1.0)
            snapshot = wait_until(lambda: _keeping_up(sim.stats()), 30, f"the engine to keep up (seed {seed})", 0.001)
            assert child.poll() is None, f"the run finished before the kill (seed {seed})"
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        wait_until(lambda: sim.stats()["in_flight"] == 0, 30, "the simulator to drop the killed requests")
        after = sim.stats()
        left = marked_processes(marker)
        kill_all(left)
        assert left == [], f"processes outlived the killed run: {left}"
        kills.append({
            "in_flight": snapshot["in_flight"],
            "completed_after": after["responses_200"] - snapshot["responses_200"],
            "per_s_before_kill": snapshot["responses_200"] - window["responses_200"],
        })
    final = start_child(sim, journal, N, CONCURRENCY, env)
    assert final.wait(timeout=300) == 0
    assert marked_processes(marker) == []

    stats = sim.stats()
    rebought = sum(n - 1 for n in stats["ok_per_prompt"].values())
    in_flight = sum(k["in_flight"] for k in kills)
    completed_after = sum(k["completed_after"] for k in kills)
    lag = sum(CLIENT_LAG_SHARE * k["in_flight"] for k in kills)
    detail = f"seed {seed}, kills {kills}, re-bought {rebought}"
    assert len(stats["ok_per_prompt"]) == N, detail
    assert rebought <= in_flight, detail
    assert rebought <= completed_after + lag, detail  # what the killed runs had received was journaled

    cfg = EndpointConfig(base_url=sim.base_url, model="deepseek-r1")
    wanted = {request_hash(cfg, r) for r in math_requests(N)}
    finals = journal.read_sql("r1", "math", "SELECT request_hash, count(*) AS n FROM j "
                                            "WHERE is_final AND status = 'ok' GROUP BY 1").to_pylist()
    assert {r["request_hash"] for r in finals} == wanted and {r["n"] for r in finals} == {1}
    assert list(journal.wal_dir("r1").glob("*.wal")) == []


def _keeping_up(stats: dict) -> dict | None:
    return stats if stats["in_flight"] >= KEEPING_UP * CONCURRENCY else None


def _run_until(child: subprocess.Popen, seconds: float) -> None:
    """Let the child run for `seconds` (the kill's random moment), returning early if it exits."""
    try:
        child.wait(timeout=max(0.0, seconds))
    except subprocess.TimeoutExpired:
        pass
