"""Several endpoints for one stage: spread by free slots, one replica dying mid-run, one refusing its key."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from conftest import BASELINE, math_requests, rows, run

from dagster_project.lib.llm.journal import request_hash
from dagster_project.lib.llm.types import EndpointConfig, safe_base_url
from dagster_project.simulator.server import start_simulator_process


@pytest.fixture
def replicas():
    """Three simulator processes (self-hosted replicas of one model)."""
    procs = [start_simulator_process(BASELINE.updated(latency_scale=1.0, ttft_s=0.05, tokens_per_s=0)) for _ in range(3)]
    try:
        yield procs
    finally:
        for p in procs:
            p.close()


def multi_cfg(replicas, **overrides) -> EndpointConfig:
    base = dict(model="deepseek-r1", api_key_env="DISTILL_TEST_API_KEY", concurrency=6, min_concurrency=2,
                max_attempts=6, backoff_base_seconds=0.02, backoff_max_seconds=0.1, request_timeout_seconds=10.0,
                endpoints=[{"base_url": p.base_url} for p in replicas])  # fmt: skip
    return EndpointConfig(**{**base, **overrides})


def test_requests_spread_over_replicas_and_the_hash_ignores_which(replicas, journal) -> None:
    cfg = multi_cfg(replicas)
    reqs = math_requests(60)
    summary = run(cfg, reqs, journal)
    assert summary.by_status == {"ok": 60}
    served = [p.stats()["responses_200"] for p in replicas]
    assert sum(served) == 60 and min(served) >= 10, served
    urls = Counter(r["base_url"] for r in rows(journal, "SELECT base_url FROM j"))
    assert urls == {safe_base_url(p.base_url): n for p, n in zip(replicas, served)}
    single = EndpointConfig(base_url=replicas[2].base_url, model="deepseek-r1")
    assert all(request_hash(single, r) == request_hash(cfg, r) for r in reqs)


def test_a_replica_killed_mid_run_the_others_finish_and_nothing_is_bought_twice(replicas, journal) -> None:
    doomed, *others = replicas
    doomed.configure(pause_after=5)  # answers five, then holds every later request open until it dies
    cfg = multi_cfg(replicas)
    reqs = math_requests(90)

    import threading

    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("summary", run(cfg, reqs, journal)))
    worker.start()
    deadline = time.monotonic() + 30
    while doomed.stats()["held"] == 0:
        assert time.monotonic() < deadline, "the replica never held a request"
        time.sleep(0.02)
    answered_by_doomed = doomed.stats()["ok_per_prompt"]  # paused: it answers no more
    doomed.proc.kill()
    worker.join(60)
    assert not worker.is_alive()
    summary = result["summary"]
    assert summary.by_status == {"ok": 90}
    ok = Counter(answered_by_doomed)
    for p in others:
        ok.update(p.stats()["ok_per_prompt"])
    assert len(ok) == 90 and set(ok.values()) == {1}  # every prompt answered once, across replicas
    finals = rows(journal, "SELECT base_url, count(*) AS n FROM j WHERE is_final GROUP BY 1")
    assert sum(r["n"] for r in finals) == 90
    dead = next(e for e in summary.endpoints if e["base_url"] == safe_base_url(doomed.base_url))
    assert dead["answered"] == len(answered_by_doomed) and dead["errors"]


def test_a_replica_refusing_its_key_is_dropped_and_the_others_carry_on(replicas, journal, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_TEST_API_KEY", "sk-good-key-0001")
    for p in replicas[1:]:
        p.configure(api_key="sk-good-key-0001")
    replicas[0].configure(api_key="sk-another-key-0002")
    summary = run(multi_cfg(replicas), math_requests(40), journal)
    assert summary.by_status == {"ok": 40} and summary.stopped_reason is None
    refused = next(e for e in summary.endpoints if e["base_url"] == safe_base_url(replicas[0].base_url))
    assert refused["disabled"] and "401" in refused["disabled"] and refused["answered"] == 0
    assert replicas[0].stats()["total_requests"] <= 6  # what was in flight when the first 401 came back


def test_when_every_replica_refuses_its_key_the_run_ends_at_once(replicas, journal, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_TEST_API_KEY", "sk-refused-key-0003")
    for p in replicas:
        p.configure(api_key="sk-another-key-0004")
    t0 = time.monotonic()
    summary = run(multi_cfg(replicas), math_requests(200), journal)  # most requests wait for a slot meanwhile
    assert time.monotonic() - t0 < 10 and "refused the credentials" in summary.stopped_reason
    assert summary.not_sent > 150 and len(rows(journal, "SELECT attempt FROM j")) == summary.attempts
    assert all(e["disabled"] for e in summary.endpoints)
