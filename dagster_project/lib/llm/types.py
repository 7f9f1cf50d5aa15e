"""Configuration and request types shared by the LLM client, journal and simulator."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

THINK_PREFIX_STRATEGIES = ("template", "prefill", "completions", "none")
KINDS = ("r1", "judge")
SIMULATOR_DUMMY_KEY = "sk-simulator-dummy"
SIMULATOR_FINGERPRINT = "distill-simulator"


class ConfigError(Exception):
    """Raised for invalid or incomplete endpoint configuration."""


class FrozenDict(dict):  # type: ignore[type-arg]
    """An immutable, hashable, picklable dict (JSON-serializable like a plain dict)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True, default=str))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    """Recursively turn dicts/lists into immutable, hashable structures."""
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of `_freeze`: plain dicts and lists, ready for JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class EndpointConfig:
    """One OpenAI-compatible endpoint plus sampling, concurrency, retry and price settings.

    `api_key_env` names the environment variable holding the key; the key itself is
    never stored here (see `resolve_api_key`).
    """

    base_url: str
    model: str
    api_key_env: str = "DEEPSEEK_API_KEY"
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    stream: bool = True
    think_prefix: str = "template"
    concurrency: int = 300
    min_concurrency: int = 4
    rpm_limit: int = 0
    tpm_limit: int = 0
    request_timeout_s: float = 3600.0
    connect_timeout_s: float = 10.0
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    currency: str = "USD"
    kind: str = "r1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_body", _freeze(dict(self.extra_body or {})))
        if self.think_prefix not in THINK_PREFIX_STRATEGIES:
            raise ConfigError(f"think_prefix must be one of {THINK_PREFIX_STRATEGIES}, got {self.think_prefix!r}")
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.concurrency < 1 or self.min_concurrency < 1:
            raise ConfigError("concurrency and min_concurrency must be >= 1")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        parts = urlsplit(self.base_url)
        if not parts.scheme.startswith("http"):
            raise ConfigError(f"base_url must be an http(s) URL, got {safe_base_url(self.base_url)!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigError(
                f"base_url must not carry credentials, a query string or a fragment ({safe_base_url(self.base_url)!r});"
                f" put the key in the environment variable named by api_key_env"
            )

    def extra_body_dict(self) -> dict[str, Any]:
        return thaw(self.extra_body)

    def sampling_params(self) -> dict[str, Any]:
        """Parameters that change what the model generates (max_tokens excluded)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "think_prefix": self.think_prefix,
            "extra_body": self.extra_body_dict(),
        }

    def sampling_json(self) -> str:
        return json.dumps(self.sampling_params(), sort_keys=True, ensure_ascii=False)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_url(self.base_url)


@dataclass(frozen=True)
class LLMRequest:
    """One prompt sample to send. `messages` is stored as a tuple of (role, content) pairs."""

    prompt_id: str
    partition: str
    sample_index: int
    messages: tuple[tuple[str, str], ...]
    purpose: str = ""
    response_format: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        msgs = tuple(
            (m["role"], m["content"]) if isinstance(m, Mapping) else (str(m[0]), str(m[1])) for m in self.messages
        )
        if not msgs:
            raise ConfigError(f"request {self.prompt_id!r} has no messages")
        object.__setattr__(self, "messages", msgs)
        if self.response_format is not None:
            object.__setattr__(self, "response_format", _freeze(dict(self.response_format)))

    @classmethod
    def from_prompt(cls, prompt_id: str, partition: str, prompt: str, sample_index: int = 0, **kw: Any) -> "LLMRequest":
        """A single-turn request (the usual R1 case: no system prompt)."""
        return cls(prompt_id, partition, sample_index, (("user", prompt),), **kw)

    def messages_list(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def response_format_dict(self) -> dict[str, Any] | None:
        return None if self.response_format is None else thaw(self.response_format)

    def user_prompt(self) -> str:
        """The last user message (what the simulator and `prompt_tokens_len` look at)."""
        for role, content in reversed(self.messages):
            if role == "user":
                return content
        return self.messages[-1][1]


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_base_url(url: str) -> str:
    """scheme://host[:port]/path only: no credentials, query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def resolve_api_key(cfg: EndpointConfig) -> str:
    """Read the key from the environment at call time.

    A missing key is an error, except for loopback URLs (the local simulator), where a
    dummy key is returned.
    """
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if cfg.is_loopback:
        return SIMULATOR_DUMMY_KEY
    raise ConfigError(
        f"environment variable {cfg.api_key_env} is not set; it must hold the API key for {safe_base_url(cfg.base_url)}"
    )
