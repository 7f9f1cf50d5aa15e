"""The spending guard at full concurrency: a cost cap is a cap, a request cap is exact."""

from __future__ import annotations

from pathlib import Path

from conftest import math_requests, rows, run

from dagster_project.lib.llm.budget import Budget, worst_case_cost


def test_cost_cap_at_concurrency_300_overshoots_by_at_most_one_request(sim, make_cfg, journal) -> None:
    sim.configure(latency_scale=1.0, ttft_s=0.05, tokens_per_s=0)
    cfg = make_cfg(concurrency=300, max_tokens=4096, price_input_per_mtok=4.0, price_output_per_mtok=16.0)
    reqs = math_requests(1000)
    worst = max(worst_case_cost(cfg, r) for r in reqs)
    cap = 1.5
    summary = run(cfg, reqs, journal, budget=Budget(max_cost=cap))
    spent = sum(r["cost"] for r in rows(journal, "SELECT cost FROM j"))
    assert abs(spent - summary.cost) < 1e-9
    assert cap <= spent <= cap + worst, (spent, worst)
    assert summary.stopped_by_budget and "cost cap" in summary.stopped_reason
    assert summary.not_sent == 1000 - summary.sent > 0 and summary.sent == sim.stats()["total_requests"]
    assert summary.sent > 100  # reservations are replaced by real costs: the cap is not a crawl


def test_a_tiny_cost_cap_sends_one_request(sim, make_cfg, journal) -> None:
    cfg = make_cfg(concurrency=300, price_output_per_mtok=16.0)
    summary = run(cfg, math_requests(300), journal, budget=Budget(max_cost=0.0001))
    assert summary.sent == 1 == sim.stats()["total_requests"] and summary.not_sent == 299
    assert summary.cost <= 0.0001 + worst_case_cost(cfg, math_requests(1)[0])


def test_request_cap_is_exact_at_concurrency_300(sim, make_cfg, journal) -> None:
    sim.configure(latency_scale=1.0, ttft_s=0.05, tokens_per_s=0)
    summary = run(make_cfg(concurrency=300), math_requests(500), journal, budget=Budget(max_requests=37))
    assert summary.sent == 37 == sim.stats()["total_requests"] == summary.by_status["ok"]
    assert summary.not_sent == 463 and summary.stopped_by_budget and "request cap" in summary.stopped_reason


def test_the_stage_says_how_many_requests_the_cost_cap_left_unsent(loaded_warehouse, instance, monkeypatch) -> None:
    import dagster as dg

    from dagster_project import definitions
    from dagster_project.config import reload_config
    from dagster_project.resources import R1Endpoint
    from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
    from tests.helpers import query, resources_for

    monkeypatch.setenv("DISTILL_WAREHOUSE__DIR", str(Path(loaded_warehouse.database).parent))
    reload_config()
    try:
        key = "gavinluo-applied-math"
        selected = query(loaded_warehouse, "SELECT count(*) FROM prompt_selection WHERE source_key = ? "
                                           "AND decision = 'selected'", [key])[0][0]  # fmt: skip
        with start_simulator_process(SimulatorSettings(latency_scale=0.0)) as sim:
            resources = {**resources_for(loaded_warehouse), "r1": R1Endpoint(base_url=sim.base_url)}  # 300 in flight
            result = dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key=key,
                                    resources=resources, instance=instance, raise_on_error=False,
                                    run_config={"ops": {"r1_completions": {"config": {"max_cost_per_run": 0.0001}}}})
            assert sim.stats()["total_requests"] == 1
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.event_specific_data.error.message
        assert "spending cap reached (cost cap:" in message and f"{selected - 1} requests not sent" in message
    finally:
        monkeypatch.undo()
        reload_config()
