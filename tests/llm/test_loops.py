"""Runaway generations: the detector on real and crafted texts, and the engine cutting, journaling and re-asking."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import math_requests, rows, run

from dagster_project.lib.llm.journal import Journal, plan
from dagster_project.lib.llm.repetition import RepetitionWatch, find_loop
from dagster_project.lib.llm.types import REASK_SAMPLE_OFFSET
from tests.real_texts import bundled_paths
from tests.real_texts import texts as real_texts

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = dict(window_chars=12000, min_repeats=6, min_chars=1200)  # distill.toml's


def test_real_long_texts_are_never_taken_for_loops() -> None:
    texts = real_texts(bundled_paths(), min_chars=300)
    assert len(texts) > 100 and max(map(len, texts)) > 2000
    flagged = [t[:80] for t in texts if find_loop(t, **DEFAULTS) is not None]
    assert flagged == []


@pytest.mark.parametrize("text", [
    "".join(f"{i}. 第{i}步：把第{i}项代入公式，得到 {i * i}。\n" for i in range(1, 400)),  # a long numbered list
    "| 序号 | 名称 | 数量 |\n|---|---|---|\n" + "".join(f"| {i} | 物品{i % 7} | {i * 3} |\n" for i in range(300)),
    "".join(f"3 × {i} = {3 * i}\n" for i in range(1, 500)),  # a multiplication table
    "所以 $$1+1+1+1+1+1+1+1+1+1 = 10$$。" * 5 + "综上，答案是 10。",  # a formula repeated a few times
    "-" * 200 + "\n正文\n" + "=" * 200,  # separators
    "```python\n" + "print('hello')\n" * 60 + "```",  # short code repeated: under min_chars
])
def test_legitimate_repetitive_structures_are_not_loops(text) -> None:
    assert find_loop(text, **DEFAULTS) is None


LONG_UNIT = "".join(f"第{i}句：首先，我们设x为未知数，根据题意列出方程；然后解这个方程，得到x的值。" for i in range(12))


@pytest.mark.parametrize("unit", ["等等，我是不是算错了？", "让我再检查一遍刚才的推导过程，看看有没有哪里出错。\n\n", "嗯",
                                  LONG_UNIT])
def test_exact_loops_of_any_size_are_found(unit) -> None:
    text = "嗯，我现在要解决这个问题。" + unit * (6000 // len(unit) + 8)
    loop = find_loop(text, **DEFAULTS)
    assert loop is not None and loop.period == len(unit) and loop.span >= max(6 * len(unit), 1200)


def test_the_watch_checks_as_text_streams_in() -> None:
    unit = "我需要重新审视这个问题的条件，确保没有遗漏任何信息。"
    text = "好的，我们先分析题目。" * 20 + unit * 500
    watch, fed = RepetitionWatch(**DEFAULTS), 0
    while watch.loop is None and fed < len(text):
        watch.feed(text[fed : fed + 24])
        fed += 24
    assert watch.loop is not None and watch.loop.period == len(unit)
    assert fed < 220 + 1200 + 2 * 256  # found within one check interval of the loop being long enough


def test_a_loop_is_cut_journaled_and_asked_again_once(sim, make_cfg, journal) -> None:
    # every attempt loops: the sample is cut, asked again as another sample, which loops too; no third ask
    sim.configure(p_loop=1.0, latency_scale=1.0, ttft_s=0.0, tokens_per_s=20000, chunk_tokens=8)
    cfg = make_cfg(max_tokens=8192, price_output_per_mtok=16.0)
    summary = run(cfg, math_requests(2), journal)
    assert summary.loops == 4 and summary.reasks == 2 and summary.by_status == {"repetition": 4}
    got = rows(journal, "SELECT prompt_id, sample_index, attempt, is_final, status, error_type, length(reasoning) AS n, "
                        "reasoning_tokens_len AS tokens, usage_completion_tokens, cost FROM j ORDER BY 1, 2")
    assert [(r["prompt_id"], r["sample_index"]) for r in got] == [
        ("q0", 0), ("q0", REASK_SAMPLE_OFFSET), ("q1", 0), ("q1", REASK_SAMPLE_OFFSET)]
    for r in got:
        assert (r["attempt"], r["is_final"], r["status"], r["error_type"]) == (1, True, "repetition", "repetition")
        assert r["usage_completion_tokens"] is None  # the stream was left before the usage chunk
        assert 0 < r["tokens"] < 8192 * 0.5 and r["cost"] > 0  # what arrived, counted offline
    stats = sim.stats()
    assert stats["client_aborts"] == 4 and stats["completion_tokens_sent"] < 4 * 8192 * 0.5


def test_a_loop_is_not_bought_again_on_resume_and_its_reask_is_not_lost(sim, make_cfg, journal) -> None:
    from dagster_project.common.llm_stage import plan_with_reasks

    reqs = math_requests(6)
    sim.configure(p_loop=1.0)
    first = run(make_cfg(loop_reask=False), reqs, journal)  # a run that looped and stopped before re-asking
    assert first.by_status == {"repetition": 6} and first.reasks == 0
    sim.configure(p_loop=0.0)
    cfg = make_cfg()
    plain_to_send, _ = plan(cfg, reqs, journal)
    assert len(plain_to_send) == 6  # the journal's own rule would buy the looping samples again ...
    to_send, reused, reasks = plan_with_reasks(cfg, reqs, journal, "r1", "math")
    assert len(reused) == 6 and [r.sample_index for r in to_send] == [REASK_SAMPLE_OFFSET] * 6  # ... this does not
    assert run(cfg, to_send, journal).by_status == {"ok": 6}
    to_send, _, reasks = plan_with_reasks(cfg, reqs, journal, "r1", "math")
    assert to_send == [] and len(reasks) == 6
    assert sim.stats()["total_requests"] == 12  # six looping samples, six re-asks, nothing twice


def test_loop_detection_can_be_turned_off(sim, make_cfg, journal) -> None:
    sim.configure(p_loop=1.0)
    summary = run(make_cfg(loop_detection=False, max_tokens=2048), math_requests(2), journal)
    assert summary.by_status == {"truncated": 2} and summary.loops == 0
    assert isinstance(Journal, type)


def test_the_generation_stage_keeps_the_looping_sample_and_its_reask(loaded_warehouse, instance, monkeypatch) -> None:
    """Through Dagster: the looping sample and its re-ask are both rows of r1_completions; a second run buys nothing."""
    import dagster as dg

    from dagster_project import definitions
    from dagster_project.config import reload_config
    from dagster_project.resources import R1Endpoint
    from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
    from tests.helpers import query, resources_for

    monkeypatch.setenv("DISTILL_WAREHOUSE__DIR", str(Path(loaded_warehouse.database).parent))
    reload_config()
    key = "gavinluo-applied-math"
    try:
        with start_simulator_process(SimulatorSettings(latency_scale=0.0, p_loop=0.3, seed=5)) as sim:
            resources = {**resources_for(loaded_warehouse), "r1": R1Endpoint(base_url=sim.base_url, max_tokens=4096)}
            for _ in range(2):
                result = dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key=key,
                                        resources=resources, instance=instance)
                assert result.success
            stats = sim.stats()
        rows_ = query(loaded_warehouse, "SELECT prompt_id, sample_index, status FROM r1_completions "
                                        "WHERE source_key = ? ORDER BY 1, 2", [key])  # fmt: skip
        looped = {p for p, i, s in rows_ if i == 0 and s == "repetition"}
        reasked = {p for p, i, _ in rows_ if i == REASK_SAMPLE_OFFSET}
        assert looped and looped == reasked  # every looping sample was asked again once, as another sample
        assert stats["total_requests"] == len(rows_)  # the second run sent nothing
    finally:
        monkeypatch.undo()
        reload_config()
