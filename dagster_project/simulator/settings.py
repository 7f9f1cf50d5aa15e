"""The simulator's behaviour settings (the `[simulator]` section of distill.toml extends them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FAULT_KINDS = (
    "429", "500", "503", "400", "drop", "malformed", "length", "missing_think_close",
    "stall", "insufficient_system_resource", "content_filter", "empty_reasoning", "loop",
)  # fmt: skip


class SimulatorSettings(BaseModel):
    """Behaviour of the simulator. Fault probabilities are per attempt and mutually exclusive."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = 0
    reasoning_format: Literal["reasoning_content", "reasoning", "inline"] = "reasoning_content"
    p_correct: float = 0.8
    p_no_box: float = 0.05
    reasoning_chars: tuple[int, int] = (300, 3000)
    answer_chars: tuple[int, int] = (80, 400)
    ttft_s: float = 0.3
    tokens_per_s: float = 400.0  # <= 0: no generation delay after the first token
    request_s: float = 0.0  # > 0: every request lasts this long (first token after ttft_s, the rest paced evenly)
    latency_scale: float = 1.0  # multiplies ttft and generation time; 0 = instant
    chunk_tokens: int = 8
    retry_after_s: float = 1.0
    stall_s: float = 30.0
    p_429: float = 0.0
    p_500: float = 0.0
    p_503: float = 0.0
    p_400: float = 0.0
    p_drop: float = 0.0
    p_malformed: float = 0.0
    p_length: float = 0.0
    p_missing_think_close: float = 0.0
    p_stall: float = 0.0
    p_insufficient: float = 0.0
    p_content_filter: float = 0.0
    p_empty_reasoning: float = 0.0
    p_loop: float = 0.0  # the reasoning falls into repeating one paragraph until max_tokens (finish "length")
    loop_unit_chars: tuple[int, int] = (60, 400)  # length of the repeated paragraph
    fault_max_attempt: int = 0  # faults only on attempts <= this; 0 = every attempt
    max_concurrency: int = 0  # server capacity: more requests in flight get 429; 0 = unlimited
    rpm_limit: int = 0  # requests per minute accepted (token bucket); beyond it 429 + Retry-After; 0 = unlimited
    rpm_burst_s: float = 1.0  # the bucket holds this many seconds' worth of requests
    rate_limit_headers: bool = False  # send x-ratelimit-{limit,remaining,reset}-requests (with rpm_limit)
    judge_noise: float = 0.05
    p_judge_messy: float = 0.1
    pause_after: int = 0  # after this many 200s, hold new requests until reconfigured; 0 = off
    api_key: str | None = None  # when set, other keys get 401
    serve_models: bool = True  # False: GET /v1/models answers 404, as some providers do

    def fault_table(self) -> list[tuple[str, float]]:
        return [
            ("429", self.p_429), ("500", self.p_500), ("503", self.p_503), ("400", self.p_400),
            ("drop", self.p_drop), ("malformed", self.p_malformed), ("length", self.p_length),
            ("missing_think_close", self.p_missing_think_close), ("stall", self.p_stall),
            ("insufficient_system_resource", self.p_insufficient), ("content_filter", self.p_content_filter),
            ("empty_reasoning", self.p_empty_reasoning), ("loop", self.p_loop),
        ]  # fmt: skip

    def updated(self, **changes: Any) -> "SimulatorSettings":
        """A copy with `changes` applied and validated (unknown names are an error)."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"unknown simulator settings: {sorted(unknown)}")
        return type(self).model_validate({**self.model_dump(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class SimulatorServe(SimulatorSettings):
    """`distill simulate` / `distill demo`: where to listen, plus the behaviour."""

    host: str = Field("127.0.0.1", description="interface to listen on")
    port: int = Field(8808, ge=0, le=65535, description="port (0 = any free port)")

    def behaviour(self) -> SimulatorSettings:
        return SimulatorSettings.model_validate(self.model_dump(exclude={"host", "port"}))
