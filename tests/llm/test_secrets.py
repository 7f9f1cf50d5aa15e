"""The API key never reaches the journal, logs, raised errors or the summary."""

from __future__ import annotations

import logging
import os

import pytest
from conftest import math_requests, run

from dagster_project.lib.llm.types import ConfigError, EndpointConfig, resolve_api_key

SECRET = "sk-test-SECRET123"


def journal_bytes(journal) -> bytes:
    data = b""
    for dirpath, _, files in os.walk(journal.root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                data += fh.read()
    return data


def test_key_appears_nowhere(sim, make_cfg, journal, monkeypatch, caplog) -> None:
    monkeypatch.setenv("DISTILL_TEST_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    sim.configure(api_key=SECRET, p_500=1.0, fault_max_attempt=1)
    ok = run(make_cfg(), math_requests(3), journal)
    assert ok.by_status == {"ok": 3}
    # a server that echoes the presented key back in its 401 message
    sim.configure(api_key="sk-some-other-key-000", p_500=0.0)
    refused = run(make_cfg(), math_requests(3, start=10), journal)
    assert refused.by_status.get("error", 0) >= 1 and refused.stopped_reason and "401" in refused.stopped_reason
    messages = [r["error_message"] for r in journal.read_sql("r1", "math", "SELECT error_message FROM j").to_pylist()]
    assert any(m and "Incorrect API key provided" in m for m in messages)
    assert SECRET.encode() not in journal_bytes(journal)
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert caplog.records and SECRET not in logged
    for summary in (ok, refused):
        assert SECRET not in repr(summary) and SECRET not in repr(summary.to_dict())


def test_missing_key_is_a_clear_error_except_on_loopback(monkeypatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    remote = EndpointConfig(base_url="https://api.example.com/v1", model="m", api_key_env="NOPE_KEY")
    with pytest.raises(ConfigError, match="NOPE_KEY"):
        resolve_api_key(remote)
    for url in ("http://127.0.0.1:8808/v1", "http://localhost:1/v1", "http://127.5.0.1/v1"):
        assert resolve_api_key(EndpointConfig(base_url=url, model="m", api_key_env="NOPE_KEY"))


def test_base_url_with_credentials_is_refused_without_echoing_them(sim) -> None:
    for url in (sim.base_url.replace("http://", "http://user:pw-SECRET@"), sim.base_url + "?api_key=SECRET"):
        with pytest.raises(ValueError) as info:  # a pydantic ValidationError, input hidden
            EndpointConfig(base_url=url, model="m")
        assert "SECRET" not in str(info.value) and sim.base_url in str(info.value)
