"""The preflight: a wrong URL path, a refused key and an unreachable endpoint are one-line errors."""

from __future__ import annotations

import pytest

from dagster_project.lib.llm.types import EndpointConfig
from dagster_project.lib.preflight import PreflightError, check_endpoint


def test_the_right_path_lists_the_models(sim) -> None:
    assert "deepseek-r1" in check_endpoint(EndpointConfig(base_url=sim.base_url))


@pytest.mark.parametrize("suffix", ["", "/v2", "/v1/chat"])
def test_a_wrong_path_is_not_reachable(sim, suffix) -> None:
    url = sim.base_url.removesuffix("/v1") + suffix
    with pytest.raises(PreflightError, match="wrong URL path") as info:
        check_endpoint(EndpointConfig(base_url=url))
    assert "\n" not in str(info.value) and url in str(info.value)


def test_a_provider_without_models_passes_on_its_generation_path(sim) -> None:
    sim.configure(serve_models=False)
    assert check_endpoint(EndpointConfig(base_url=sim.base_url)) == []
    assert sim.stats()["responses_200"] == 0  # the probe is an empty body: nothing is generated, nothing paid
    with pytest.raises(PreflightError, match="wrong URL path"):
        check_endpoint(EndpointConfig(base_url=sim.base_url.removesuffix("/v1")))


def test_a_refused_key_names_its_variable(sim, monkeypatch) -> None:
    monkeypatch.setenv("DISTILL_TEST_API_KEY", "sk-wrong-key-123456")
    sim.configure(api_key="sk-right-key-654321")
    with pytest.raises(PreflightError, match=r"rejected the key in \$DISTILL_TEST_API_KEY \(HTTP 401\)") as info:
        check_endpoint(EndpointConfig(base_url=sim.base_url, api_key_env="DISTILL_TEST_API_KEY"))
    assert "sk-wrong" not in str(info.value)


def test_every_endpoint_is_checked(sim) -> None:
    cfg = EndpointConfig(endpoints=[{"base_url": sim.base_url}, {"base_url": "http://127.0.0.1:9/v1"}])
    with pytest.raises(PreflightError, match="127.0.0.1:9/v1 is unreachable"):
        check_endpoint(cfg, timeout_s=2)
