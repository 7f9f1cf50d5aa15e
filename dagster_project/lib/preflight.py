"""Checks before anything is paid for: the key is set and the endpoint answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dagster_project.lib.llm.types import EndpointConfig, resolve_api_key, safe_base_url


class PreflightError(RuntimeError):
    """A configuration problem, reported as one line."""


def check_endpoint(cfg: EndpointConfig, timeout_s: float = 10.0) -> list[str]:
    """Resolve the key and list the endpoint's models; raises PreflightError with a clear message."""
    try:
        key = resolve_api_key(cfg)
    except Exception as exc:  # ConfigError
        raise PreflightError(str(exc)) from None
    url = cfg.base_url.rstrip("/") + "/models"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise PreflightError(f"{safe_base_url(cfg.base_url)} rejected the key in ${cfg.api_key_env} "
                                 f"(HTTP {exc.code})") from None
        return []  # some providers do not serve /models; the endpoint is reachable
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PreflightError(f"endpoint {safe_base_url(cfg.base_url)} is unreachable: {reason}") from None
    return [m.get("id", "") for m in body.get("data", []) if isinstance(m, dict)]
