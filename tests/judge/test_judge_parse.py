"""Score and verdict parsing on real EduChat-Math judge outputs and hand-written messy replies."""

import json
import re
from pathlib import Path

import pytest

from dagster_project.lib.judge.parse import parse_correctness, parse_quality

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "judge" / "educhat_mcmd_scores_slice.jsonl"


def judge_texts():
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [entry["结果"] for row in rows for entry in row["content"]]


def test_real_educhat_scores_parse_to_the_stated_value():
    texts = judge_texts()
    assert len(texts) >= 300
    parsed = 0
    for text in texts:
        stated = re.search(r"(\d+)\s*分?\s*$", text)
        result = parse_quality(text)
        assert result is not None, text
        assert result.score == float(stated.group(1)), text
        parsed += 1
    rate = parsed / len(texts)
    print(f"educhat judge slice: parsed {parsed}/{len(texts)} = {rate:.1%}")
    assert rate == 1.0
    variants = {re.sub(r"\d+", "N", t) for t in texts}
    # the slice covers the messy variants: full-width colon, no space, no 分, a bare number
    assert {"模型A的评分: N分", "模型A的评分：N分", "模型A的评分:N", "模型A的评分: N", "N"} <= variants


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('```json\n{"reason": "回答准确", "harmlessness": 10, "helpfulness": 8, "correctness": 9, "score": 8}\n```', 8),
        ("思考……\n{'事实正确性': 7, '满足用户需求': 6, '清晰度': 8, '综合得分': 7}", 7),
        ('先给出 {"score": 3} 作为草稿，最终：{"score": 6}', 6),
        ('{"综合得分": "9分"}', 9),
        ("Rating: [[7]]", 7),
        ("总分：８分", 8),
        ("评分 = ９", 9),
        ("有用性得分: 6，综合得分: 5", 5),
        ("这个回答可以打 7/10。", 7),
        ("满分10分，我给 6 分。", 6),
        ("打分区间是1-10分，这里给8分", 8),
        ("模型A的评分: ８分", 8),
        ("7.5分", 7.5),
        ("  4  ", 4),
    ],
)
def test_messy_quality_outputs(text, score):
    result = parse_quality(text)
    assert result is not None and result.score == score


@pytest.mark.parametrize(
    "text",
    [
        "我给11分",
        '{"reason": "好", "score": 12}',
        "Rating: [[15]]",
        "评分: -1",
        "这个回答整体不错，但没有给分。",
        "",
        None,
    ],
)
def test_missing_or_out_of_range_scores_are_none(text):
    assert parse_quality(text) is None


def test_json_dimensions_are_kept():
    result = parse_quality('{"reason": "ok", "harmlessness": 10, "helpfulness": 7, "correctness": 6, "score": 7}')
    assert (result.harmlessness, result.helpfulness, result.correctness, result.score) == (10, 7, 6, 7)
    assert result.reason == "ok" and result.method == "json"


@pytest.mark.parametrize(
    ("text", "correct"),
    [
        ('{"reason": "两者数值相等", "verdict": "正确", "score": 10}', True),
        ('```json\n{"reason": "选项不同", "verdict": "错误", "score": 0}\n```', False),
        ('{"reason": "x", "score": 10}', True),
        ('{"结论": "不正确"}', False),
        ("The answers match.\nVerdict: EQUIVALENT", True),
        ("Verdict: DIFFERENT", False),
        ("结论：不等价", False),
        ("结论：等价", True),
        ("分析……\n[[正确]]", True),
        ("最终答案与参考答案不一致，判定：错误", False),
        ("候选答案化简后也是 1/2，与参考答案一致。\n正确", True),
        ("incorrect", False),
        ("得分：10", True),
        ("得分：0", False),
    ],
)
def test_correctness_verdicts(text, correct):
    result = parse_correctness(text)
    assert result is not None and result.correct is correct and result.score == (10 if correct else 0)


@pytest.mark.parametrize("text", ["Verdict: AMBIGUOUS", '{"verdict": "不确定", "score": 5}', "无法判断。", "", None])
def test_undecided_correctness_is_none(text):
    assert parse_correctness(text) is None
