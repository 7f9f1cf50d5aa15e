"""The simulator's own surface: in-thread start, control routes, determinism of faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from conftest import math_requests, run
from dagster_project.llm.simulator import SimulatorSettings, SimulatorThread
from dagster_project.llm.types import EndpointConfig


def test_in_thread_simulator_serves_the_engine(journal) -> None:
    with SimulatorThread(SimulatorSettings(latency_scale=0, reasoning_format="reasoning")) as sim:
        assert sim.base_url and sim.base_url.startswith("http://127.0.0.1:")
        cfg = EndpointConfig(base_url=sim.base_url, model="deepseek-r1", api_key_env="UNSET_KEY_FOR_SIM", concurrency=4)
        summary = run(cfg, math_requests(5), journal)
        assert summary.by_status == {"ok": 5} and summary.simulated
        assert sim.stats()["responses_200"] == 5
        with urllib.request.urlopen(sim.base_url + "/models") as resp:
            assert resp.headers["X-Distill-Simulated"] == "1"
            assert {m["id"] for m in json.load(resp)["data"]} >= {"deepseek-r1"}


def test_control_routes(sim) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        sim.configure(no_such_setting=1)
    assert info.value.code == 400
    assert sim.configure(p_429=0.25)["p_429"] == 0.25
    assert sim.reset() == {"reset": True} and sim.stats()["total_requests"] == 0


def test_faults_depend_on_attempt_so_retries_can_succeed(sim, make_cfg, journal) -> None:
    sim.configure(p_500=0.5)
    summary = run(make_cfg(max_attempts=8), math_requests(30), journal)
    assert summary.by_status == {"ok": 30}
    assert 5 < summary.retries < 90  # about one retry per request at p=0.5
    assert sim.stats()["faults"]["500"] == summary.retries
