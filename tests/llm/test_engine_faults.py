"""Each injected fault, through the openai SDK, ends in the right final status and number of attempts."""

from __future__ import annotations

import pytest
from conftest import math_requests, rows, run

ATTEMPTS_SQL = (
    "SELECT prompt_id, attempt, is_final, status, http_status, error_type, finish_reason, "
    "epoch(started_at) AS started, epoch(finished_at) AS finished FROM j ORDER BY prompt_id, attempt"
)


def by_prompt(journal) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows(journal, ATTEMPTS_SQL):
        out.setdefault(r["prompt_id"], []).append(r)
    return out


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ("p_429", "http_429"),
        ("p_500", "http_500"),
        ("p_503", "http_503"),
        ("p_drop", None),
        ("p_malformed", "malformed_response"),
        ("p_insufficient", "insufficient_system_resource"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_retryable_faults_recover(sim, make_cfg, journal, fault, error_type, stream) -> None:
    sim.configure(**{fault: 1.0, "fault_max_attempt": 1, "retry_after_s": 0.05})
    summary = run(make_cfg(stream=stream), math_requests(4), journal)
    assert summary.by_status == {"ok": 4}
    assert summary.attempts == 8 and summary.retries == 4
    assert sim.stats()["sdk_requests"] == 8  # every attempt went through the openai SDK
    for attempts in by_prompt(journal).values():
        first, second = attempts
        assert (first["attempt"], first["is_final"], first["status"]) == (1, False, "retryable_error")
        assert (second["attempt"], second["is_final"], second["status"]) == (2, True, "ok")
        if error_type is not None:
            assert first["error_type"] == error_type
        else:  # a dropped connection: before the response (non-stream) or mid-stream
            assert first["error_type"] in ("connection_error", "stream_interrupted")


@pytest.mark.parametrize(
    ("settings", "status", "finish_reason"),
    [
        ({"p_length": 1.0}, "truncated", "length"),
        ({"p_missing_think_close": 1.0, "reasoning_format": "inline"}, "truncated", "stop"),
        ({"p_missing_think_close": 1.0, "reasoning_format": "reasoning_content"}, "truncated", "stop"),
        ({"p_content_filter": 1.0}, "content_filter", "content_filter"),
        ({"p_empty_reasoning": 1.0}, "empty_reasoning", "stop"),
        ({"p_400": 1.0}, "error", None),
    ],
)
def test_final_faults_are_not_retried(sim, make_cfg, journal, settings, status, finish_reason) -> None:
    sim.configure(**settings)
    summary = run(make_cfg(), math_requests(3), journal)
    assert summary.by_status == {status: 3}
    assert summary.attempts == 3 and summary.retries == 0
    for (attempt,) in by_prompt(journal).values():
        assert (attempt["status"], attempt["is_final"], attempt["finish_reason"]) == (status, True, finish_reason)
    assert sim.stats()["total_requests"] == 3


def test_bad_request_records_type_and_message(sim, make_cfg, journal) -> None:
    sim.configure(p_400=1.0)
    run(make_cfg(), math_requests(1), journal)
    (row,) = rows(journal, "SELECT http_status, error_type, error_message FROM j")
    assert row["http_status"] == 400 and row["error_type"] == "http_400"
    assert "invalid request" in row["error_message"]


def test_gives_up_after_max_attempts(sim, make_cfg, journal) -> None:
    sim.configure(p_503=1.0)
    summary = run(make_cfg(max_attempts=3), math_requests(2), journal)
    assert summary.by_status == {"error": 2} and summary.attempts == 6
    finals = rows(journal, "SELECT attempt, status, error_type FROM j WHERE is_final")
    assert finals == [{"attempt": 3, "status": "error", "error_type": "http_503"}] * 2


@pytest.mark.parametrize("stream", [True, False])
def test_stall_is_cut_by_the_total_deadline_and_retried(sim, make_cfg, journal, stream) -> None:
    # the stream variant sends headers and half the chunks, then stalls: only a total deadline catches it
    sim.configure(p_stall=1.0, fault_max_attempt=1, stall_s=5.0)
    summary = run(make_cfg(request_timeout_seconds=0.6, stream=stream), math_requests(2), journal)
    assert summary.by_status == {"ok": 2}
    for first, second in by_prompt(journal).values():
        assert first["error_type"] == "timeout" and first["status"] == "retryable_error"
        assert 0.59 <= first["finished"] - first["started"] < 2.0  # uvloop's timers have millisecond resolution
        assert second["started"] >= first["started"] + 0.6


def test_retry_after_is_honoured(sim, make_cfg, journal) -> None:
    sim.configure(p_429=1.0, fault_max_attempt=1, retry_after_s=1.0)
    summary = run(make_cfg(backoff_base_seconds=0.01, backoff_max_seconds=0.02), math_requests(3), journal)
    assert summary.by_status == {"ok": 3} and summary.http_429 == 3
    for first, second in by_prompt(journal).values():
        assert first["http_status"] == 429
        assert second["started"] - first["finished"] >= 1.0


def test_journal_records_retry_after(sim, make_cfg, journal) -> None:
    sim.configure(p_429=1.0, fault_max_attempt=1, retry_after_s=0.25)
    run(make_cfg(), math_requests(1), journal)
    assert [r["retry_after_s"] for r in rows(journal, "SELECT retry_after_s FROM j ORDER BY attempt")] == [0.25, None]
