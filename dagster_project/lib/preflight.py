"""Checks before anything is paid for: each endpoint's key is set and accepted, and its URL path is right."""

from __future__ import annotations

import logging

import httpx2
import openai
import orjson

from dagster_project.lib.llm.types import ConfigError, EndpointConfig, Target

log = logging.getLogger("dagster_project.lib.preflight")


class PreflightError(RuntimeError):
    """A configuration problem, reported as one line."""


def check_endpoint(cfg: EndpointConfig, timeout_s: float = 10.0) -> list[str]:
    """Check every endpoint of `cfg`; returns the models they list. Raises PreflightError (one line)."""
    models: list[str] = []
    for target in cfg.targets():
        for m in check_target(cfg, target, timeout_s):
            if m not in models:
                models.append(m)
    return models


def check_target(cfg: EndpointConfig, target: Target, timeout_s: float = 10.0) -> list[str]:
    """`GET {base_url}/models`; where that is 404, an empty POST to the generation path tells a
    provider without /models (400/422: the path exists) from a wrong path (404 again)."""
    try:
        key = target.api_key()
    except ConfigError as exc:
        raise PreflightError(str(exc)) from None
    url = target.safe_url
    client = openai.OpenAI(base_url=target.base_url, api_key=key, max_retries=0, timeout=timeout_s)
    try:
        try:
            body = orjson.loads(client.models.with_raw_response.list().content or b"{}")
        except openai.NotFoundError:
            path = "/completions" if cfg.think_prefix == "completions" else "/chat/completions"
            _probe(client, target, url, path)
            return []
        except openai.APIStatusError as exc:
            raise _status_error(exc, target, url, "/models") from None
        except openai.APIConnectionError as exc:
            raise PreflightError(f"endpoint {url} is unreachable: {_reason(exc)}") from None
        except orjson.JSONDecodeError:
            raise PreflightError(f"{url}/models did not answer JSON: is {url} an OpenAI-compatible API?") from None
    finally:
        client.close()
    data = body.get("data") if isinstance(body, dict) else None
    models = [m.get("id", "") for m in data or [] if isinstance(m, dict)]
    if models and cfg.model not in models:
        log.warning("%s does not list model %r (it lists %s)", url, cfg.model, ", ".join(models[:10]))
    return models


def _probe(client: openai.OpenAI, target: Target, url: str, path: str) -> None:
    """POST an empty body (never a generation): a right path answers 400/422, a wrong one 404."""
    try:
        client.post(path, body={}, cast_to=httpx2.Response)
    except openai.NotFoundError:
        raise PreflightError(f"wrong URL path: {url}/models and {url}{path} answer 404 "
                             "(most OpenAI-compatible servers want base_url to end in /v1)") from None
    except openai.APIStatusError as exc:
        if exc.status_code in (400, 405, 422):
            return
        raise _status_error(exc, target, url, path) from None
    except openai.APIConnectionError as exc:
        raise PreflightError(f"endpoint {url} is unreachable: {_reason(exc)}") from None


def _status_error(exc: openai.APIStatusError, target: Target, url: str, path: str) -> PreflightError:
    if exc.status_code in (401, 403):
        return PreflightError(f"{url} rejected the key in ${target.api_key_env} (HTTP {exc.status_code})")
    return PreflightError(f"{url}{path} answered HTTP {exc.status_code}; is the endpoint up?")


def _reason(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return str(root) or type(root).__name__
