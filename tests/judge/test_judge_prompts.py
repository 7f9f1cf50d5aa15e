"""Judge prompt building: templates, markers, safe filling, token budgets, schemas."""

from pathlib import Path

import pytest

from dagster_project.lib.judge.prompts import (
    CORRECTNESS_SCHEMA,
    OMISSION_MARKER,
    PROMPTS_DIR,
    QUALITY_SCHEMA,
    REFERENCE_MARKER,
    correctness_messages,
    count_tokens,
    excerpt,
    excerpt_cuts,
    fill,
    quality_messages,
    reasoning_excerpt,
    response_format,
)
from dagster_project.lib.llm.tokens import get_tokenizer

ROOT = Path(__file__).resolve().parents[2]
LONG_REASONING = "".join(
    f"第{i}步：设 $x_{{{i}}} = \\frac{{{i}}}{{{i + 1}}}$，代入方程检验，发现结果不满足条件，需要重新考虑。\n" for i in range(3000)
)


def user_text(messages):
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_templates_live_in_assets_prompts():
    assert PROMPTS_DIR == ROOT / "assets" / "prompts"
    assert get_tokenizer().token_to_id("</think>") == 128799  # the R1 (V3) vocabulary


def test_correctness_prompt_has_the_reference_marker_and_inputs():
    text = user_text(correctness_messages("求 x 的值。", "$\\frac{1}{2}$", "所以 \\boxed{0.5}", "先算……"))
    assert REFERENCE_MARKER in text
    assert text.index(REFERENCE_MARKER) < text.index("$\\frac{1}{2}$")
    assert "求 x 的值。" in text and "\\boxed{0.5}" in text and "先算……" in text
    assert "{question}" not in text and "{reference}" not in text


def test_quality_prompt_has_no_reference_marker():
    text = user_text(quality_messages("如何煮米饭？", "先淘米……", "用户想知道……"))
    assert REFERENCE_MARKER not in text
    assert "无害性" in text and "有用性" in text and "正确性" in text
    assert "如何煮米饭？" in text and "先淘米……" in text


def test_braces_and_placeholder_lookalikes_survive():
    answer = "集合为 $\\{x \\mid x>1\\}$，\\boxed{\\frac{1}{2}}，字典 {'a': 1}，字面量 {question} 与 {0}"
    text = user_text(correctness_messages("题 {answer}", "{reference}", answer, None))
    assert answer in text
    assert "题 {answer}" in text and "【参考答案】\n{reference}" in text
    assert fill("{question}|{unknown}|{}", question="Q{reasoning}") == "Q{reasoning}|{unknown}|{}"


def test_reasoning_excerpt_fits_the_budget_and_keeps_head_and_tail():
    assert count_tokens(LONG_REASONING) > 30000
    cut = reasoning_excerpt(LONG_REASONING, max_tokens=1024)
    assert count_tokens(cut) <= 1024
    assert count_tokens(cut) > 900
    assert OMISSION_MARKER in cut
    head, tail = cut.split(OMISSION_MARKER)
    assert LONG_REASONING.startswith(head) and LONG_REASONING.endswith(tail)
    assert head.startswith("第0步") and tail.rstrip().endswith("需要重新考虑。")


def whole_text_cuts(text: str, max_tokens: int):
    """Cut points from an encoding of the whole text (what the windows must reproduce)."""
    enc = get_tokenizer().encode(text, add_special_tokens=False)
    if len(enc) <= max_tokens:
        return None
    room = max_tokens - count_tokens(OMISSION_MARKER) - 4
    head_n, tail_n = room // 2, room - room // 2
    return enc.offsets[head_n - 1][1], enc.offsets[len(enc) - tail_n][0]


def test_windowed_cuts_match_cuts_from_the_whole_text():
    english = " ".join(f"Step {i}: substitute x_{i} = {i}/{i + 1} and check the constraint again." for i in range(400))
    texts = [
        LONG_REASONING,
        LONG_REASONING[:1500],  # near the budget
        LONG_REASONING[:2600],
        english,  # ~4 characters per token: the first windows are too short and grow
        english[:4000],
        "数" * 900 + english[:3000] + "解" * 900,
        "很短的推理。",
        "",
        None,
    ]
    for budget in (64, 256, 1024):
        got = excerpt_cuts(texts, budget)
        assert got == [whole_text_cuts(t or "", budget) for t in texts], budget
    assert sum(c is None for c in excerpt_cuts(texts, 1024)) >= 3  # short texts are never cut


def test_short_texts_are_untouched():
    assert reasoning_excerpt("很短的推理。") == "很短的推理。"
    assert excerpt(None, 10) == ""


def test_messages_never_carry_the_whole_chain_of_thought():
    long_answer = "答案部分很长。" * 5000
    messages = correctness_messages("题目", "42", long_answer, LONG_REASONING)
    total = sum(count_tokens(m["content"]) for m in messages)
    assert total < 1024 + 3000 + 1000
    quality = quality_messages("题目", long_answer, LONG_REASONING, reasoning_tokens=256, answer_tokens=512)
    assert sum(count_tokens(m["content"]) for m in quality) < 256 + 512 + 800


def test_templates_can_be_overridden(tmp_path):
    (tmp_path / "correctness_judge.zh.txt").write_text("Q={question} R=【参考答案】{reference} A={answer}", encoding="utf-8")
    messages = correctness_messages("q", "r", "a", "t", prompts_dir=tmp_path)
    assert messages[1]["content"] == "Q=q R=【参考答案】r A=a"
    assert messages[0]["content"]  # the default system prompt is still used


def test_schemas_and_response_format():
    fmt = response_format("correctness")
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] is CORRECTNESS_SCHEMA
    assert CORRECTNESS_SCHEMA["properties"]["verdict"]["enum"] == ["正确", "错误"]
    assert list(QUALITY_SCHEMA["properties"])[0] == "reason"  # reason first: think, then score
    assert response_format("quality")["json_schema"]["schema"] is QUALITY_SCHEMA
    with pytest.raises(ValueError):
        response_format("style")
