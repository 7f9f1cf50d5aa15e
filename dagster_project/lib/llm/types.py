"""Configuration and request types shared by the LLM client, journal and simulator."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SIMULATOR_DUMMY_KEY = "sk-simulator-dummy"
SIMULATOR_FINGERPRINT = "distill-simulator"
# A sample that looped is asked again once as sample `index + REASK_SAMPLE_OFFSET`: another sample of
# the same prompt, with its own request hash, so a resume finds both and buys neither twice.
REASK_SAMPLE_OFFSET = 1_000_000


class ConfigError(Exception):
    """Raised for invalid or incomplete endpoint configuration."""


def endpoint_config(**values: Any) -> "EndpointConfig":
    """An EndpointConfig, with validation errors as one ConfigError line."""
    try:
        return EndpointConfig(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "endpoint"
        raise ConfigError(f"{where}: {err['msg']}") from None


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


def _check_base_url(value: str) -> str:
    # Errors never echo the URL as given (it may carry a credential; inputs are hidden from
    # validation errors too): only its safe form.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL, got {safe_base_url(value)!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"must not carry credentials, a query string or a fragment ({safe_base_url(value)!r}); "
                         "put the key in the environment variable named by api_key_env")
    return value


class EndpointSpec(BaseModel):
    """One replica or provider of a stage (an entry of `[[generation.endpoints]]`).

    Unset fields take the section's value. The model, sampling parameters and prices are the
    section's: a response from any replica answers the same request (same request hash).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    base_url: str = Field(description="OpenAI-compatible base URL of this replica")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                    description="environment variable with this replica's key (default: the section's)")
    concurrency: int | None = Field(None, ge=1, description="requests in flight at most on this replica")
    rpm_limit: int | None = Field(None, ge=0, description="requests per minute on this replica, 0 = off")
    tpm_limit: int | None = Field(None, ge=0, description="tokens per minute on this replica, 0 = off")

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_base_url(value)


@dataclass(frozen=True)
class Target:
    """An endpoint with every field resolved (see `EndpointConfig.targets`)."""

    base_url: str
    api_key_env: str
    concurrency: int
    min_concurrency: int
    rpm_limit: int
    tpm_limit: int

    @property
    def safe_url(self) -> str:
        return safe_base_url(self.base_url)

    def api_key(self) -> str:
        return resolve_key(self.api_key_env, self.base_url)


class EndpointConfig(BaseModel):
    """One OpenAI-compatible endpoint plus sampling, concurrency, retry and price settings.

    This model is the schema of the `[generation]` and `[judge]` sections of distill.toml (the
    project's config extends it with stage settings). `api_key_env` names the environment
    variable holding the key; the key itself is never stored here (see `resolve_api_key`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    base_url: str = Field("http://127.0.0.1:8808/v1", description="OpenAI-compatible base URL, e.g. https://api.example.com/v1")
    model: str = Field("deepseek-r1", min_length=1, description="model name sent with every request")
    api_key_env: str = Field("R1_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="name of the environment variable holding the API key (never the key)")
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(32768, ge=1, description="output token budget per request")
    stream: bool = Field(True, description="stream the response (server-sent events)")
    think_prefix: Literal["template", "prefill", "completions", "none"] = Field(
        "template", description="how the `<think>` opening is forced: template | prefill | completions | none")
    concurrency: int = Field(300, ge=1, description="requests in flight at most")
    min_concurrency: int = Field(4, ge=1, description="flow control never goes below this (nor above concurrency)")
    rpm_limit: int = Field(0, ge=0, description="requests per minute, 0 = off")
    tpm_limit: int = Field(0, ge=0, description="tokens per minute, 0 = off")
    request_timeout_seconds: float = Field(3600.0, gt=0, description="total deadline per attempt")
    connect_timeout_seconds: float = Field(10.0, gt=0, description="deadline to open a connection")
    max_attempts: int = Field(6, ge=1, description="attempts per request, retries included")
    backoff_base_seconds: float = Field(1.0, ge=0, description="first retry delay (exponential, full jitter)")
    backoff_max_seconds: float = Field(60.0, ge=0, description="longest retry delay (Retry-After may ask for more)")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON keys merged into every request body")
    price_input_per_mtok: float = Field(0.0, ge=0, description="price per million input tokens (cost estimates)")
    price_output_per_mtok: float = Field(0.0, ge=0, description="price per million output tokens")
    currency: str = "USD"
    kind: Literal["r1", "judge"] = Field("r1", description="r1 (reasoning traces) or judge")
    endpoints: list[EndpointSpec] = Field(
        default_factory=list, description="several replicas or providers for this stage (empty: base_url alone)")
    throttle_tolerance: float = Field(
        0.025, ge=0.001, le=0.5, description="share of attempts answered 429 that flow control treats as noise")
    shutdown_grace_seconds: float = Field(
        10.0, ge=0.0, description="after SIGINT/SIGTERM, how long requests in flight may finish before they are cancelled")
    loop_detection: bool = Field(True, description="abort a streamed response that repeats itself")
    loop_window_chars: int = Field(12000, ge=200, description="longest repeating tail looked for, in characters")
    loop_min_repeats: int = Field(6, ge=2, description="back-to-back copies of one passage that make a loop")
    loop_min_chars: int = Field(1200, ge=50, description="a loop spans at least this many characters")
    loop_reask: bool = Field(True, description="after a loop, ask once more as another sample (sample index + 1000000)")

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_base_url(value)

    def targets(self) -> list[Target]:
        """The endpoints requests go to, every field resolved: `endpoints`, or `base_url` alone."""
        specs = self.endpoints or [EndpointSpec(base_url=self.base_url)]
        return [Target(base_url=e.base_url, api_key_env=e.api_key_env or self.api_key_env,
                       concurrency=e.concurrency or self.concurrency,
                       min_concurrency=min(self.min_concurrency, e.concurrency or self.concurrency),
                       rpm_limit=self.rpm_limit if e.rpm_limit is None else e.rpm_limit,
                       tpm_limit=self.tpm_limit if e.tpm_limit is None else e.tpm_limit)
                for e in specs]  # fmt: skip

    def describe_targets(self) -> str:
        """Where requests go, in safe form, for logs and messages."""
        return ", ".join(t.safe_url for t in self.targets())

    def extra_body_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.extra_body))

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

    @property
    def is_reask(self) -> bool:
        return self.sample_index >= REASK_SAMPLE_OFFSET

    def reask(self) -> "LLMRequest":
        """The same prompt as another sample: what is sent once after this sample looped."""
        return replace(self, sample_index=self.sample_index + REASK_SAMPLE_OFFSET)

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


def resolve_key(api_key_env: str, base_url: str) -> str:
    """Read the key from the environment at call time.

    A missing key is an error, except for loopback URLs (the local simulator), where a
    dummy key is returned.
    """
    key = os.environ.get(api_key_env, "")
    if key:
        return key
    if is_loopback_url(base_url):
        return SIMULATOR_DUMMY_KEY
    raise ConfigError(
        f"environment variable {api_key_env} is not set; it must hold the API key for {safe_base_url(base_url)}"
    )


def resolve_api_key(cfg: EndpointConfig) -> str:
    """The key of every endpoint of `cfg` (one clear error for the first missing); returns the first."""
    keys = [t.api_key() for t in cfg.targets()]
    return keys[0]
