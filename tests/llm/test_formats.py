"""End to end: every server format, streaming mode and think-prefix strategy stores the same record."""

from __future__ import annotations

import json
import re

from conftest import ANSWER_KEY, math_requests, run

from dagster_project.lib.llm.journal import Journal
from dagster_project.lib.llm.parsing import sft_output
from dagster_project.lib.llm.tokens import count_tokens
from dagster_project.lib.llm.types import LLMRequest

RECORD_SQL = "SELECT prompt_id, status, reasoning, content FROM j WHERE is_final ORDER BY prompt_id"


def records(journal: Journal) -> list[dict]:
    return journal.read_sql("r1", "math", RECORD_SQL).to_pylist()


def test_formats_modes_and_strategies_store_identical_records(sim, make_cfg, tmp_path) -> None:
    reqs = math_requests(5)
    results = {}
    for fmt in ("reasoning_content", "reasoning", "inline"):
        sim.configure(reasoning_format=fmt)
        for stream in (True, False):
            for prefix in ("template", "prefill", "completions", "none"):
                journal = Journal(tmp_path / f"{fmt}-{stream}-{prefix}")
                assert run(make_cfg(stream=stream, think_prefix=prefix), reqs, journal).by_status == {"ok": 5}
                results[(fmt, stream, prefix)] = records(journal)
    reference = results[("reasoning_content", True, "template")]
    assert all(r["reasoning"] and r["content"] for r in reference)
    for key, value in results.items():
        assert value == reference, key
    for r in reference:
        out = sft_output(r["reasoning"], r["content"])
        assert out.startswith("<think>\n") and out.count("</think>") == 1 and "<think>" not in r["reasoning"]


def test_streaming_records_ttft_and_usage(sim, make_cfg, journal) -> None:
    sim.configure(latency_scale=1.0, ttft_s=0.05, tokens_per_s=20000, chunk_tokens=4)
    summary = run(make_cfg(), math_requests(3), journal)
    rows = journal.read_sql("r1", "math", "SELECT ttft_s, latency_s, usage_prompt_tokens, usage_completion_tokens, "
                            "usage_reasoning_tokens FROM j").to_pylist()  # fmt: skip
    for r in rows:
        assert 0.05 <= r["ttft_s"] < r["latency_s"]
        assert r["usage_completion_tokens"] > r["usage_reasoning_tokens"] > 0 and r["usage_prompt_tokens"] > 0
    assert summary.ttft_p50_s is not None and summary.latency_p50_s is not None


def test_simulator_answers_follow_the_key(sim, make_cfg, journal) -> None:
    sim.configure(p_correct=0.8, p_no_box=0.0)
    reqs = math_requests(40)
    run(make_cfg(concurrency=16), reqs, journal)
    correct = 0
    for r in journal.final_records("r1", "math").to_pylist():
        box = re.findall(r"\\boxed\{([^}]*)\}", r["content"])
        assert box, r["content"]
        correct += box[-1] == ANSWER_KEY[f"计算 {r['prompt_id'][1:]} 乘以 3 的结果。"]
    assert 24 <= correct <= 39  # ~80 % of 40, deterministic for the seed


def test_repeated_request_gets_the_same_answer_and_samples_differ(sim, make_cfg, tmp_path) -> None:
    prompt = "介绍一下长城的历史。"
    base = [LLMRequest.from_prompt("g", "math", prompt, sample_index=i) for i in (0, 1)]
    first, second = Journal(tmp_path / "a"), Journal(tmp_path / "b")
    run(make_cfg(), base, first)
    run(make_cfg(), base, second)
    a = journal_rows = first.final_records("r1", "math").sort_by("sample_index").to_pylist()
    b = second.final_records("r1", "math").sort_by("sample_index").to_pylist()
    assert [(r["reasoning"], r["content"]) for r in a] == [(r["reasoning"], r["content"]) for r in b]
    assert journal_rows[0]["reasoning"] != journal_rows[1]["reasoning"]
    assert "\\boxed" not in a[0]["content"]  # not in the answer key: plain prose


def test_judge_mode_correctness_and_quality(sim, make_cfg, journal) -> None:
    sim.configure(p_judge_messy=0.0, judge_noise=0.0)
    cfg = make_cfg(model="Qwen2.5-72B-Instruct", kind="judge", temperature=0.0)
    prompts = {
        "right": "【题目】1+1=?\n【参考答案】2\n【模型回答】所以答案是 \\boxed{2}",
        "wrong": "【题目】1+1=?\n【参考答案】2\n【模型回答】所以答案是 \\boxed{3}",
        "quality": "请评价下面的回答：……",
    }
    reqs = [LLMRequest.from_prompt(k, "math", v, purpose="judge", response_format={"type": "json_object"})
            for k, v in prompts.items()]  # fmt: skip
    assert run(cfg, reqs, journal, stage="judge").by_status == {"ok": 3}
    out = {r["prompt_id"]: json.loads(r["content"]) for r in journal.final_records("judge", "math").to_pylist()}
    assert (out["right"]["verdict"], out["right"]["score"]) == ("正确", 10)
    assert (out["wrong"]["verdict"], out["wrong"]["score"]) == ("错误", 0)
    assert set(out["quality"]) == {"reason", "harmlessness", "helpfulness", "correctness", "score"}
    assert all(0 <= out["quality"][k] <= 10 for k in ("harmlessness", "helpfulness", "correctness", "score"))
    purposes = journal.read_sql("judge", "math", "SELECT DISTINCT purpose FROM j").to_pylist()
    assert purposes == [{"purpose": "judge"}]


def test_judge_mode_messy_replies(sim, make_cfg, journal) -> None:
    sim.configure(p_judge_messy=1.0)
    cfg = make_cfg(model="qwen2.5-72b-instruct", kind="judge")
    reqs = [LLMRequest.from_prompt(f"j{i}", "math", f"请评价第{i}个回答。") for i in range(12)]
    run(cfg, reqs, journal, stage="judge")
    contents = [r["content"] for r in journal.final_records("judge", "math").to_pylist()]
    assert len(contents) == 12 and not any(c.lstrip().startswith("{") for c in contents)


def test_offline_token_counts() -> None:
    assert count_tokens(["<think>", "</think>"]) == [1, 1]  # special tokens of the R1 vocabulary
    a, b, empty = count_tokens(["嗯，我现在要解决这个问题。", "hello world", ""])
    assert a > 3 and b == 2 and empty == 0
