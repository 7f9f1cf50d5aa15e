"""Write-ahead segments: a dead writer's rows are recovered before anything reads the journal,
a live writer's never are, and a record torn by the kill is dropped cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import math_requests, run
from journal_child import CFG
from test_resume import REPO, start_child, wal_finals

from dagster_project.common.llm_stage import final_rows
from dagster_project.lib.llm.journal import plan, request_hash
from dagster_project.lib.query import run_query
from dagster_project.simulator.server import prompt_sha
from tests.process_tree import marked_processes, new_marker, wait_until

CHILD = Path(__file__).with_name("journal_child.py")
PARTITION, N = "math", 12


def start_writer(journal, env: dict, n: int = N, partition: str = PARTITION) -> subprocess.Popen:
    """A writer in a child process that has appended `n` rows and waits (close its stdin to end it)."""
    child = subprocess.Popen([sys.executable, str(CHILD), str(journal.root), partition, str(n)], cwd=REPO,
                             env={**env, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    assert child.stdout.readline().strip() == "appended"
    return child


def sigkill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL


def killed_writer(journal, n: int = N, partition: str = PARTITION) -> Path:
    """Run a writer in a child process, SIGKILL it once its rows are appended; its segment."""
    marker, env = new_marker()
    child = start_writer(journal, env, n, partition)
    try:
        sigkill(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdin.close()
        child.stdout.close()
    assert marked_processes(marker) == []
    (segment,) = journal.wal_dir("r1").glob("*.wal")
    assert journal.parts("r1") == []  # nothing folded: the rows exist only in the segment
    return segment


def wanted(n: int = N) -> pa.Table:
    reqs = math_requests(n, PARTITION)
    return pa.table({"request_hash": [request_hash(CFG, r) for r in reqs], "prompt_id": [r.prompt_id for r in reqs],
                     "sample_index": pa.array([0] * n, pa.int32()), "purpose": [""] * n})


READERS = {
    "plan": lambda journal: len(plan(CFG, math_requests(N, PARTITION), journal)[1]),
    "final_rows": lambda journal: final_rows(journal, "r1", PARTITION, wanted()).num_rows,
    "ledger_view": lambda journal: run_query("SELECT count(*) FROM r1_ledger WHERE is_final",
                                             journal.root / "absent.duckdb", journal.root).rows[0][0],
    "status_sql": lambda journal: journal.connect().sql(
        f"SELECT count(*) FROM {journal.relation_sql('r1')}").fetchall()[0][0],
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_dead_writers_segment_is_folded_before_any_read(journal, reader) -> None:
    segment = killed_writer(journal)
    assert READERS[reader](journal) == N  # every row the dead writer had appended
    assert not segment.exists()
    finals = journal.final_records("r1", PARTITION).to_pylist()
    assert len(finals) == N and all(r["content_tokens_len"] > 0 and r["prompt_tokens_len"] > 0 for r in finals)
    assert READERS[reader](journal) == N  # and folded once: reading again changes nothing


@pytest.mark.parametrize("damage", ["torn_last_record", "zeros_after_a_machine_crash", "garbage_line_inside"])
def test_damaged_records_are_dropped_cleanly(journal, damage, caplog) -> None:
    segment = killed_writer(journal)
    data = segment.read_bytes()
    lines = data.splitlines(keepends=True)
    if damage == "torn_last_record":  # killed in the middle of its last write()
        segment.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        expected = N - 1
    elif damage == "zeros_after_a_machine_crash":
        segment.write_bytes(data + b"\0" * 4096)
        expected = N
    else:
        segment.write_bytes(b"".join(lines[:5]) + b'{"request_hash": "x", "par\n' + b"".join(lines[5:]))
        expected = N
    with caplog.at_level(logging.WARNING, logger="dagster_project.lib.llm.wal"):
        to_send, reused = plan(CFG, math_requests(N, PARTITION), journal)
    assert (len(reused), len(to_send)) == (expected, N - expected)
    dropped = [r.getMessage() for r in caplog.records if "torn or damaged" in r.getMessage()]
    assert len(dropped) == (damage != "zeros_after_a_machine_crash")
    assert journal.final_records("r1", PARTITION).num_rows == expected and not segment.exists()


def test_two_live_writers_in_two_processes_never_fold_each_other(sim, make_cfg, journal) -> None:
    n, concurrency, answered = 8, 4, 3
    marker, env = new_marker()
    other = start_writer(journal, env, N, "b")  # a second live writer on the same stage
    sim.configure(pause_after=answered)  # then every request is held open: the engine run stays in flight
    engine = start_child(sim, journal, n, concurrency, env, "a")
    children = [other, engine]
    try:
        def settled():
            assert engine.poll() is None, "the engine run ended before the kill"
            stats = sim.stats()
            return (stats["in_flight"] == stats["held"] > 0
                    and wal_finals(journal, pattern=f"*-{engine.pid}-*.wal") == stats["responses_200"] >= answered)
        wait_until(settled, 60, "the engine run to hold its answered rows in its live segment")
        answered = sim.stats()["responses_200"]  # requests past the pause check when it began are answered too
        segments = {c.pid: next(journal.wal_dir("r1").glob(f"*-{c.pid}-*.wal")) for c in children}
        assert journal.recover("r1") == 0  # both owners are alive: nothing is taken from them
        assert journal.parts("r1") == [] and all(s.exists() for s in segments.values())
        assert plan(make_cfg(), math_requests(n, "a"), journal)[1] == []

        sigkill(engine)
        reused = plan(make_cfg(), math_requests(n, "a"), journal)[1]  # folds the dead run's segment only
        assert len(reused) == answered
        assert not segments[engine.pid].exists() and segments[other.pid].exists() and journal.parts("r1", "b") == []

        other.stdin.close()  # the live writer closes normally and folds its own rows
        assert other.wait(timeout=60) == 0
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
        other.stdout.close()
    assert marked_processes(marker) == []
    assert journal.final_records("r1", "b").num_rows == N and not segments[other.pid].exists()
    sim.configure(pause_after=0)
    to_send, _ = plan(make_cfg(), math_requests(n, "a"), journal)
    assert run(make_cfg(), to_send, journal).by_status == {"ok": n - answered}
    ok = sim.stats()["ok_per_prompt"]
    assert set(ok) == {prompt_sha(r.user_prompt()) for r in math_requests(n, "a")} and set(ok.values()) == {1}
    assert list(journal.wal_dir("r1").glob("*.wal")) == []
    finals = journal.read_sql("r1", None, "SELECT partition, count(*) AS n FROM j WHERE is_final GROUP BY 1 ORDER BY 1")
    assert finals.to_pylist() == [{"partition": "a", "n": n}, {"partition": "b", "n": N}]
