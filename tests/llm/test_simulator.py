"""The simulator's own surface: in-thread start, control routes, determinism of faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from conftest import math_requests, run

from dagster_project.lib.llm.types import EndpointConfig
from dagster_project.simulator.server import SimulatorSettings, SimulatorThread


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


def test_the_official_openai_sdk_reads_the_simulator(sim) -> None:
    """Anything built on the openai SDK can be pointed at the simulator (streaming or not)."""
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=sim.base_url, api_key="sk-simulated-not-a-real-key", max_retries=0)
    messages = [{"role": "user", "content": "计算 4 乘以 3 的结果。"}]
    reply = client.chat.completions.create(model="deepseek-r1", messages=messages, max_tokens=2048)
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "stop" and message.content
    assert (message.model_extra or {}).get("reasoning_content")
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    stream = client.chat.completions.create(model="deepseek-r1", messages=messages, max_tokens=2048, stream=True,
                                            stream_options={"include_usage": True})
    reasoning, content, finish, usage = [], [], None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            content.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert finish == "stop" and "".join(reasoning) and "".join(content)
    assert usage is not None and usage.completion_tokens > 0
