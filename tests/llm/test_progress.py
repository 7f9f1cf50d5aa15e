"""Progress snapshots, the one-line formatter and the async entry point."""

from __future__ import annotations

import asyncio

from conftest import math_requests

from dagster_project.lib.llm import engine
from dagster_project.lib.llm.engine import (
    ProgressSnapshot,
    format_progress,
    run_requests,
)
from dagster_project.lib.llm.journal import JournalWriter


def test_format_progress_line() -> None:
    snap = ProgressSnapshot(done=50, total=200, ok=48, failed=2, in_flight=30, concurrency_limit=150,
                            requests_per_s=12.5, eta_s=12.0, prompt_tokens=1000, completion_tokens=90000,
                            cost=1.23456, elapsed_s=4.0)  # fmt: skip
    line = format_progress(snap)
    assert line.startswith("[#####               ] 50/200  25.0%")
    assert "ok=48 failed=2 in_flight=30/150 12.5 req/s eta=0m12s" in line and "cost=1.2346" in line
    assert "eta=?" in format_progress(ProgressSnapshot(**{**snap.__dict__, "total": None, "eta_s": None}))


def test_progress_callback_is_throttled_and_final(sim, make_cfg, journal, monkeypatch) -> None:
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.2)
    sim.configure(latency_scale=1.0, ttft_s=0.1, tokens_per_s=0)
    snaps: list[ProgressSnapshot] = []

    async def main() -> None:
        with JournalWriter(journal, "r1") as writer:
            await run_requests(iter(math_requests(16)), make_cfg(concurrency=4), writer, run_id="p",
                               progress=snaps.append)  # fmt: skip

    asyncio.run(main())
    assert snaps[-1].done == 16 and snaps[-1].ok == 16 and snaps[-1].total is None  # lazy iterator: no total
    assert 2 <= len(snaps) <= 12  # ~0.4 s of work, one snapshot per 0.2 s plus the final one
    assert all(s.in_flight <= 4 for s in snaps)
