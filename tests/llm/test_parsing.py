"""Response normalization across backend formats, streaming and classification."""

from __future__ import annotations

import json

import pytest

from dagster_project.lib.llm.limits import backoff_delay, parse_retry_after
from dagster_project.lib.llm.parsing import (
    StreamAccumulator,
    parse_response,
    sft_output,
)
from dagster_project.lib.llm.transport import raw_r1_prompt, scrub

REASONING = "嗯，我现在要解决这个问题。\n先算 2+2。\n\n等于 4。"
ANSWER = "所以答案是 $\\boxed{4}$。"
USAGE = {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39, "completion_tokens_details": {"reasoning_tokens": 20}}


def body(message: dict, finish: str = "stop") -> dict:
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": USAGE}


FORMATS = {
    "reasoning_content": {"role": "assistant", "reasoning_content": "\n" + REASONING + "\n", "content": "\n\n" + ANSWER},
    "reasoning": {"role": "assistant", "reasoning": REASONING, "content": ANSWER + "\n"},
    "inline_no_open_tag": {"role": "assistant", "content": REASONING + "\n</think>\n\n" + ANSWER},
    "inline_with_open_tag": {"role": "assistant", "content": "<think>\n" + REASONING + "\n</think>\n\n" + ANSWER},
}


def stream_chunks(message: dict, piece: int = 5) -> list[dict]:
    """Split a message into OpenAI-style deltas, the way a server would stream it."""
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for key in ("reasoning_content", "reasoning", "content"):
        text = message.get(key) or ""
        for i in range(0, len(text), piece):
            chunks.append({"choices": [{"index": 0, "delta": {key: text[i : i + piece]}, "finish_reason": None}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": USAGE})
    return chunks


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_parses_to_the_same_record(fmt: str) -> None:
    parsed = parse_response(body(FORMATS[fmt]))
    assert parsed.status == "ok"
    assert (parsed.reasoning, parsed.content) == (REASONING, ANSWER)
    assert parsed.usage.completion_tokens == 30 and parsed.usage.reasoning_tokens == 20


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_streaming_deltas_match_non_streaming(fmt: str) -> None:
    acc = StreamAccumulator("r1")
    for chunk in stream_chunks(FORMATS[fmt]):
        acc.add(json.loads(json.dumps(chunk)))
    assert acc.result() == parse_response(body(FORMATS[fmt]))


def test_completions_text_is_inline() -> None:
    parsed = parse_response({"choices": [{"text": REASONING + "</think>" + ANSWER, "finish_reason": "stop"}]})
    assert (parsed.status, parsed.reasoning, parsed.content) == ("ok", REASONING, ANSWER)


def test_sft_output_normalization() -> None:
    out = sft_output(REASONING, ANSWER)
    assert out == "<think>\n" + REASONING + "\n</think>\n\n" + ANSWER
    assert out.startswith("<think>\n") and out.count("</think>") == 1
    messy = sft_output("<think>\n\n" + REASONING + "\n</think>", "\n" + ANSWER + "</think>")
    assert messy == out


@pytest.mark.parametrize(
    ("message", "finish", "status"),
    [
        ({"content": REASONING}, "stop", "truncated"),  # inline, no </think>
        ({"reasoning_content": REASONING, "content": None}, "stop", "truncated"),  # vLLM: never closed
        ({"reasoning_content": REASONING, "content": ANSWER}, "length", "truncated"),
        ({"content": "\n</think>\n\n" + ANSWER}, "stop", "empty_reasoning"),
        ({"reasoning_content": "  ", "content": ANSWER}, "stop", "empty_reasoning"),
        ({"reasoning_content": REASONING[:5], "content": ""}, "content_filter", "content_filter"),
        ({"reasoning_content": REASONING[:5], "content": None}, "insufficient_system_resource", "retryable_error"),
    ],
)
def test_classification(message: dict, finish: str, status: str) -> None:
    assert parse_response(body(message, finish)).status == status


def test_judge_kind_needs_no_think_block() -> None:
    parsed = parse_response(body({"content": '{"score": 8}'}), kind="judge")
    assert (parsed.status, parsed.reasoning, parsed.content) == ("ok", "", '{"score": 8}')
    assert parse_response(body({"content": ""}), kind="judge").status == "error"


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after({"retry-after": date}, now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_is_capped_jittered_and_respects_retry_after() -> None:
    delays = [backoff_delay(10, 1.0, 5.0) for _ in range(200)]
    assert all(0 <= d <= 5.0 for d in delays) and len(set(delays)) > 150
    assert all(backoff_delay(1, 1.0, 5.0, retry_after=2.5) >= 2.5 for _ in range(50))


def test_raw_template_and_scrub() -> None:
    prompt = raw_r1_prompt([{"role": "user", "content": "1+1?"}])
    assert prompt == "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜><think>\n"
    msg = scrub("Incorrect API key provided: sk-test-SECRET123 (Bearer abc.def)", ("sk-test-SECRET123",))
    assert "SECRET123" not in msg and "abc.def" not in msg
