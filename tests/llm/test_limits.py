"""Flow control: the rule on its own (in virtual time, against model providers), then against the simulator."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random

import pytest
from conftest import math_requests, run

from dagster_project.lib.llm.limits import FlowControl, TokenBucket, parse_duration, request_pause


def model_run(server: str, n: int = 6000, concurrency: int = 300, latency: float = 2.0, ttft: float = 0.5,
              cap: int = 150, rps: float = 75.0, p_429: float = 0.02, retry_after: float = 1.0,
              tolerance: float = 0.025, seed: int = 1) -> dict:  # fmt: skip
    """Drive FlowControl as the engine does, against a model provider, in virtual time.

    server: "noisy" (p_429 of first attempts answered 429 whatever the load), "capped" (429 beyond
    `cap` in flight) or "rpm" (a token bucket of `rps` per second, one second deep).
    """
    rng, flow = random.Random(seed), FlowControl(concurrency, 4, tolerance)
    events: list = []
    seq = itertools.count()
    waiting: list[tuple[int, int]] = []
    fresh = iter(range(n))
    state = {"serving": 0, "tokens": rps, "updated": 0.0, "attempts": 0, "throttled": 0, "done": 0, "now": 0.0}

    def at(t, fn, *args):
        heapq.heappush(events, (t, next(seq), fn, args))

    def answer(now, attempt):
        if server == "capped" and state["serving"] >= cap:
            return False
        if server == "rpm":
            state["tokens"] = min(rps, state["tokens"] + (now - state["updated"]) * rps)
            state["updated"] = now
            if state["tokens"] < 1:
                return False
            state["tokens"] -= 1
        return not (server == "noisy" and attempt == 1 and rng.random() < p_429)

    def admit(now):
        if flow.ramping(now):
            at(now + 0.01, admit)
        while flow.free(now) > 0:
            if waiting:
                req, attempt = waiting.pop(0)
            else:
                req = next(fresh, None)
                if req is None:
                    return
                attempt = 1
            epoch = flow.admit()
            state["attempts"] += 1
            if answer(now, attempt):
                state["serving"] += 1
                at(now + ttft, lambda t, e=epoch: flow.record(e, False, demand()))
                at(now + latency, finished)
            else:
                at(now + 0.001, throttled, req, attempt, epoch)

    def demand():
        return bool(waiting) or state["done"] + len(waiting) + flow.in_flight < n

    def finished(now):
        state["serving"] -= 1
        state["done"] += 1
        flow.release()
        admit(now)

    def throttled(now, req, attempt, epoch):
        state["throttled"] += 1
        flow.record(epoch, True, demand())
        flow.hold()
        at(now + max(retry_after, rng.uniform(0, min(10.0, 0.5 * 2 ** (attempt - 1)))), retry, req, attempt)

    def retry(now, req, attempt):
        flow.release(held=True)
        waiting.append((req, attempt + 1))
        admit(now)

    at(0.0, admit)
    now = 0.0
    while events and state["done"] < n:
        now, _, fn, args = heapq.heappop(events)
        fn(now, *args)
    ideal = {"capped": cap / latency, "rpm": rps}.get(server, concurrency / latency)
    return {"ratio": n / now / ideal, "share_429": state["throttled"] / state["attempts"], "flow": flow}


def test_sporadic_429s_below_the_tolerance_cost_no_concurrency() -> None:
    for seed in range(3):
        r = model_run("noisy", p_429=0.02, seed=seed)
        blind = model_run("noisy", p_429=0.02, seed=seed, tolerance=0.5)  # never lowers the limit
        assert r["flow"].lowest_limit >= 280 and r["ratio"] > 0.95 * blind["ratio"], (r, blind)


def test_a_capped_provider_is_run_near_its_cap_with_few_429s() -> None:
    for cap in (150, 280, 40):
        r = model_run("capped", cap=cap, n=20000)
        assert r["ratio"] > 0.95 and r["share_429"] < 0.05, (cap, r)
        assert cap - 5 <= r["flow"].limit <= cap + 10, (cap, r["flow"].limit)


def test_a_rate_limited_provider_is_run_near_its_rate() -> None:
    r = model_run("rpm", rps=75.0, n=20000)
    assert r["ratio"] > 0.95 and r["share_429"] < 0.05, r


def test_noise_above_the_tolerance_is_learned_not_obeyed() -> None:
    # 6 % of first attempts answered 429 whatever the load: cutting does not help, so the
    # controller raises its noise estimate instead of sinking to the floor
    r = model_run("noisy", p_429=0.06, n=20000)
    assert r["flow"].noise > 0.04 and r["flow"].limit >= 250 and r["ratio"] > 0.9, (r["flow"].noise, r)


def test_one_round_trip_of_429s_at_most_halves_the_limit() -> None:
    flow = FlowControl(max_limit=100, min_limit=2)
    epochs = [flow.admit() for _ in range(100)]
    for e in epochs:  # 100 simultaneous 429s, all to requests sent at the old limit
        flow.record(e, True, demand=True)
    assert flow.limit == 50
    later = flow.admit()
    flow.record(later, True, demand=True)  # one sent after the first report: a new round trip
    for _ in range(60):
        flow.record(later, True, demand=True)
    assert flow.limit == 25 and flow.lowest_limit == 25


def test_slots_open_over_the_ramp() -> None:
    flow = FlowControl(max_limit=100, min_limit=4)
    assert flow.free(now=10.0) == 4  # the first call starts the ramp
    assert flow.free(now=10.0 + FlowControl.RAMP_S / 2) == 50
    assert flow.free(now=10.0 + FlowControl.RAMP_S) == 100 and not flow.ramping(10.0 + FlowControl.RAMP_S)


def test_growth_needs_demand_and_holds_keep_slots() -> None:
    flow = FlowControl(max_limit=10, min_limit=1)
    flow.free(now=0.0)
    e = flow.admit()
    flow.record(e, True, demand=True)
    assert flow.limit == 9
    for _ in range(1000):
        flow.record(flow.epoch, False, demand=False)
    assert flow.limit == 9  # nobody waiting: no reason to grow
    for _ in range(1000):
        flow.record(flow.epoch, False, demand=True)
    assert flow.limit == 10
    flow.hold()
    assert (flow.in_flight, flow.active, flow.free(now=100.0)) == (1, 0, 9)
    flow.release(held=True)
    assert (flow.in_flight, flow.held) == (0, 0)


def test_token_bucket_paces() -> None:
    async def scenario() -> float:
        bucket = TokenBucket(per_minute=600)  # 10/s, burst 600
        bucket.tokens = 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await bucket.take(3)
        return loop.time() - t0

    assert 0.25 <= asyncio.run(scenario()) < 1.0


@pytest.mark.parametrize(("value", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5),
                                                ("0.5", 0.5), ("soon", None), ("", None)])  # fmt: skip
def test_rate_limit_durations(value, seconds) -> None:
    assert parse_duration(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_rate_limit_headers_ask_for_a_pause_only_when_nothing_is_left() -> None:
    headers = {"x-ratelimit-limit-requests": "600", "x-ratelimit-reset-requests": "30s"}
    assert request_pause({**headers, "x-ratelimit-remaining-requests": "3"}) is None
    assert request_pause({**headers, "x-ratelimit-remaining-requests": "0"}) == pytest.approx(0.1)
    assert request_pause({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}) == 2.0
    assert request_pause({}) is None


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
