"""Adaptive concurrency: unit behaviour, and what the simulator observes."""

from __future__ import annotations

import asyncio

from conftest import math_requests, run

from dagster_project.lib.llm.limits import AdaptiveLimiter, TokenBucket


def test_aimd_halves_once_per_epoch_and_recovers() -> None:
    async def scenario() -> None:
        lim = AdaptiveLimiter(max_limit=64, min_limit=4)
        epochs = [await lim.acquire() for _ in range(64)]
        assert lim.in_flight == 64 and lim.limit == 64
        # 64 simultaneous 429s from the same epoch cut the cap once
        cuts = [lim.on_throttled(e) for e in epochs]
        assert cuts.count(True) == 1 and lim.limit == 32
        for _ in range(64):
            lim.release()
        e = await lim.acquire()
        lim.release()
        assert lim.on_throttled(e) and lim.limit == 16
        for _ in range(10):
            lim.on_throttled(lim.epoch)
        assert lim.limit == 4 == lim.lowest_limit  # never below min
        successes = 0
        while lim.limit < 64:
            lim.on_success()
            successes += 1
        assert lim.limit == 64 and 500 < successes < 2000  # additive, not instant

    asyncio.run(scenario())


def test_limiter_blocks_at_the_cap() -> None:
    async def scenario() -> None:
        lim = AdaptiveLimiter(max_limit=2)
        await lim.acquire()
        await lim.acquire()
        waiter = asyncio.ensure_future(lim.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()
        lim.release()
        await asyncio.wait_for(waiter, 1)
        assert lim.in_flight == 2

    asyncio.run(scenario())


def test_token_bucket_paces() -> None:
    async def scenario() -> float:
        bucket = TokenBucket(per_minute=600)  # 10/s, burst 600
        bucket.tokens = 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await bucket.take(3)
        return loop.time() - t0

    assert 0.25 <= asyncio.run(scenario()) < 1.0


def test_engine_backs_off_against_a_capacity_limited_server(sim, make_cfg, journal) -> None:
    # the server accepts 6 concurrent requests and answers 429 beyond that
    sim.configure(max_concurrency=6, latency_scale=1.0, ttft_s=0.05, tokens_per_s=0, retry_after_s=0.05)
    reqs = math_requests(120)
    fixed = run(make_cfg(concurrency=24, min_concurrency=24, max_attempts=50), reqs, journal, run_id="fixed")
    fixed_429 = sim.stats()["faults"].get("capacity_429", 0)
    sim.reset()
    adaptive = run(make_cfg(concurrency=24, min_concurrency=2, max_attempts=50), math_requests(120, "m2"), journal)
    stats = sim.stats()
    assert fixed.by_status == adaptive.by_status == {"ok": 120}
    assert adaptive.http_429 == stats["faults"]["capacity_429"] > 0
    assert adaptive.lowest_concurrency_limit <= 12
    assert adaptive.http_429 * 3 < fixed_429, (adaptive.http_429, fixed_429)
