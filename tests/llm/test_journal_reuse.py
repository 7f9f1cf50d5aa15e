"""Journal layout, ledger queries and the reuse rules of `plan`."""

from __future__ import annotations

import os
import re

import pytest
from conftest import math_requests, run

from dagster_project.lib.llm.engine import Budget
from dagster_project.lib.llm.journal import (
    JOURNAL_SCHEMA,
    JournalWriter,
    is_reusable,
    plan,
    request_hash,
    safe_name,
)
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest
from tests.process_tree import wait_until


def test_request_hash_ignores_max_tokens_only() -> None:
    cfg = EndpointConfig(base_url="http://127.0.0.1:1/v1", model="deepseek-r1")
    req = LLMRequest.from_prompt("a", "p", "你好")
    h = request_hash(cfg, req)
    same = [
        EndpointConfig(base_url="http://127.0.0.1:1/v1", model="deepseek-r1", max_tokens=100),
        EndpointConfig(base_url="http://127.0.0.1:2/v1", model="deepseek-r1", concurrency=3, stream=False),
    ]
    assert all(request_hash(c, req) == h for c in same)
    assert request_hash(cfg, LLMRequest.from_prompt("other-id", "other-part", "你好")) == h
    different = [
        request_hash(EndpointConfig(base_url=cfg.base_url, model="deepseek-r1-0528"), req),
        request_hash(EndpointConfig(base_url=cfg.base_url, model="deepseek-r1", temperature=0.7), req),
        request_hash(EndpointConfig(base_url=cfg.base_url, model="deepseek-r1", top_p=0.9), req),
        request_hash(EndpointConfig(base_url=cfg.base_url, model="deepseek-r1", think_prefix="prefill"), req),
        request_hash(EndpointConfig(base_url=cfg.base_url, model="deepseek-r1", extra_body={"top_k": 20}), req),
        request_hash(cfg, LLMRequest.from_prompt("a", "p", "你好！")),
        request_hash(cfg, LLMRequest.from_prompt("a", "p", "你好", sample_index=1)),
        request_hash(cfg, LLMRequest.from_prompt("a", "p", "你好", response_format={"type": "json_object"})),
    ]
    assert h not in different and len(set(different)) == len(different)


def test_reuse_rule_table() -> None:
    for status in ("ok", "content_filter", "empty_reasoning"):
        assert is_reusable(status, 1000, 10) and is_reusable(status, 1000, 100000)
    assert is_reusable("truncated", 1000, 1000) and is_reusable("truncated", 1000, 500)
    assert not is_reusable("truncated", 1000, 1001)
    assert not is_reusable("error", 1000, 1000)


def test_ok_is_reused_whatever_max_tokens(sim, make_cfg, journal) -> None:
    reqs = math_requests(5)
    assert run(make_cfg(), reqs, journal).by_status == {"ok": 5}
    for max_tokens in (64, 32768, 200000):
        to_send, reused = plan(make_cfg(max_tokens=max_tokens), reqs, journal)
        assert (len(to_send), len(reused)) == (0, 5)


def test_truncated_is_resent_only_when_max_tokens_grows(sim, make_cfg, journal) -> None:
    reqs = math_requests(4)
    assert run(make_cfg(max_tokens=40), reqs, journal).by_status == {"truncated": 4}
    assert plan(make_cfg(max_tokens=40), reqs, journal)[0] == []
    assert plan(make_cfg(max_tokens=20), reqs, journal)[0] == []
    to_send, reused = plan(make_cfg(max_tokens=4096), reqs, journal)
    assert to_send == reqs and reused == []
    assert run(make_cfg(max_tokens=4096), to_send, journal).by_status == {"ok": 4}
    assert plan(make_cfg(max_tokens=4096), reqs, journal)[0] == []
    latest = {r["status"] for r in journal.final_records("r1", "math").to_pylist()}
    assert latest == {"ok"}


def test_new_sampling_params_or_prompts_are_new_requests(sim, make_cfg, journal) -> None:
    reqs = math_requests(3)
    run(make_cfg(), reqs, journal)
    assert len(plan(make_cfg(temperature=0.7), reqs, journal)[0]) == 3
    assert len(plan(make_cfg(model="deepseek-r1-0528"), reqs, journal)[0]) == 3
    edited = [reqs[0], reqs[1], LLMRequest.from_prompt("q2", "math", reqs[2].user_prompt() + " ")]
    to_send, reused = plan(make_cfg(), edited, journal)
    assert to_send == [edited[2]] and reused == edited[:2]


def test_errors_are_retried_next_run(sim, make_cfg, journal) -> None:
    sim.configure(p_400=1.0)
    reqs = math_requests(2)
    run(make_cfg(), reqs, journal)
    assert plan(make_cfg(), reqs, journal)[0] == reqs
    sim.configure(p_400=0.0)
    run(make_cfg(), reqs, journal)
    assert plan(make_cfg(), reqs, journal)[0] == []


def test_duplicate_requests_are_planned_once(journal) -> None:
    cfg = EndpointConfig(base_url="http://127.0.0.1:1/v1", model="m")
    req = LLMRequest.from_prompt("a", "p", "x")
    assert plan(cfg, [req, req], journal) == ([req], [])


def test_ledger_one_row_per_attempt_and_sums(sim, make_cfg, journal) -> None:
    sim.configure(p_500=1.0, fault_max_attempt=1)
    cfg = make_cfg(price_input_per_mtok=4.0, price_output_per_mtok=16.0, currency="CNY")
    summary = run(cfg, math_requests(6), journal, run_id="ledger-run")
    con = journal.connect()
    rel = journal.relation_sql("r1")
    total, finals, attempts, cost, paid = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE is_final), max(attempt), sum(cost), "
        f"sum(usage_completion_tokens) FROM {rel}"
    ).fetchone()
    assert (total, finals, attempts) == (12, 6, 2)
    assert cost == pytest.approx(summary.cost) and cost > 0
    assert paid == summary.completion_tokens
    by_status = dict(con.execute(f"SELECT status, count(*) FROM {rel} GROUP BY 1").fetchall())
    assert by_status == {"retryable_error": 6, "ok": 6}
    row = con.sql(f"SELECT * FROM {rel} WHERE is_final LIMIT 1").to_arrow_table().to_pylist()[0]
    assert row["run_id"] == "ledger-run" and row["currency"] == "CNY" and row["simulated"] is True
    assert row["base_url"] == cfg.base_url and row["model"] == "deepseek-r1"
    assert row["prompt_tokens_len"] > 0 and row["reasoning_tokens_len"] > 0 and row["content_tokens_len"] > 0
    assert row["reasoning"] and row["content"]
    errors = con.execute(f"SELECT reasoning, content, cost FROM {rel} WHERE NOT is_final").fetchall()
    assert errors == [(None, None, 0.0)] * 6


def test_files_are_atomic_parts(sim, make_cfg, journal) -> None:
    run(make_cfg(), math_requests(40), journal)
    names = [n for n in os.listdir(journal.partition_dir("r1", "math")) if not n.startswith(".")]
    assert names and all(n.startswith("part-") and n.endswith(".parquet") for n in names)
    assert os.listdir(journal.wal_dir("r1")) == []  # a closed writer leaves no segment behind
    assert journal.final_records("r1", "math").schema.equals(JOURNAL_SCHEMA)
    assert journal.final_records("r1", "absent").num_rows == 0


def test_writer_folds_on_a_timer(journal) -> None:
    writer = JournalWriter(journal, "judge", flush_every=1000, flush_seconds=0.2, count_tokens=False)
    try:
        writer.append({"request_hash": "h", "partition": "p", "is_final": True, "status": "ok", "started_at": 1.0})
        wait_until(lambda: journal.parts("judge", "p"), 10, "the background fold")
        assert journal.final_records("judge", "p").num_rows == 1
    finally:
        writer.close()


def test_names_map_to_safe_bounded_directories(journal) -> None:
    plain = ["r1", "judge", "haijian-advanced-math", "m-a-p-coig-cqia", "a.b_c-1"]
    assert [safe_name(n) for n in plain] == plain  # existing journals keep their layout
    odd = ["../x", "a/b", "*", ".hidden", "", "_wal", "Math", "math ", "数学", "x" * 300, "y" * 65,
           "exam/kaoyan", "a\\b", "con:1", "tab\there", "ünïcödé" * 50]
    mapped = [safe_name(n) for n in odd + plain]
    assert len(set(mapped)) == len(mapped)  # no two names share a directory, case-insensitively too
    assert len({m.lower() for m in mapped}) == len(mapped)
    for name, m in zip(odd, mapped):
        assert re.fullmatch(r"[a-z0-9][a-z0-9._~-]{0,63}", m), (name, m)
        assert journal.partition_dir("r1", name).parent == journal.stage_dir("r1")
    assert safe_name("x" * 300).startswith("x" * 40 + "~") and safe_name("数学").startswith("name~")


def test_a_300_character_partition_journals_and_resumes(sim, make_cfg, journal) -> None:
    key = ("source-" + "很长的名字/with slashes*" * 20)[:300]
    assert len(key) == 300
    reqs = math_requests(6, partition=key)
    assert run(make_cfg(), reqs, journal).by_status == {"ok": 6}
    finals = journal.final_records("r1", key).to_pylist()
    assert len(finals) == 6 and {r["partition"] for r in finals} == {key}
    assert len(journal.partition_dir("r1", key).name) <= 64
    assert plan(make_cfg(), reqs, journal) == ([], reqs)
    assert journal.final_records("r1", "source-").num_rows == 0  # a prefix is another partition


def test_budget_stops_scheduling_and_next_run_resumes(sim, make_cfg, journal) -> None:
    reqs = math_requests(12)
    summary = run(make_cfg(concurrency=2), reqs, journal, budget=Budget(max_requests=5))
    assert summary.stopped_by_budget and summary.requests == 5
    to_send, reused = plan(make_cfg(), reqs, journal)
    assert (len(to_send), len(reused)) == (7, 5)
    summary = run(make_cfg(), to_send, journal)
    assert not summary.stopped_by_budget and summary.requests == 7


def test_cost_budget(sim, make_cfg, journal) -> None:
    cfg = make_cfg(concurrency=1, price_output_per_mtok=1_000_000.0)  # every response costs > 1
    summary = run(cfg, math_requests(10), journal, budget=Budget(max_cost=1.0))
    assert summary.stopped_by_budget and summary.requests == 1
