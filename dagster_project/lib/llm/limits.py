"""Client-side flow control: adaptive concurrency, token buckets, retry delays, rate-limit headers."""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from typing import Mapping


class FlowControl:
    """Concurrency limit of one endpoint that keeps the share of attempts answered 429 at a tolerance.

    Every 429 takes one slot away; every accepted attempt, while requests wait for a slot, gives
    back `noise / (1 - noise)` of one. The limit therefore falls while more than `noise` of the
    attempts are throttled and rises while fewer are: sporadic 429s below the tolerance cost no
    concurrency, and against a provider capped at K in flight the limit settles just above K (each
    request over the cap earns one 429, which takes its slot away). After a quiet spell (no 429 in
    `QUIET` limits' worth of attempts) it grows 10 % per round trip, so an outage is recovered from
    quickly.

    Within one round trip (until an attempt sent after it started reports back) the limit falls by
    at most half: a burst of 429s to requests sent at once against a rate limit does not take it
    to the floor.

    Load and noise are told apart over windows of attempts: if the limit fell by a tenth over the
    last windows and the 429 share did not fall with it, the 429s do not depend on load; `noise`
    is raised to their share and the limit restored.

    A throttled attempt keeps its slot until its retry is due (`hold` ... `release(held=True)`), so
    requests over a cap retry at the pace of the provider's Retry-After, not in a tight loop. The
    first slots open over `RAMP_S` seconds rather than all at once, so the first 429s (a cap or a
    rate limit met cold) arrive while most requests are still unsent.
    """

    FAST_GROWTH = 0.1  # per accepted attempt after a quiet spell: 10 % per round trip
    QUIET = 3  # a quiet spell: this many limits' worth of attempts without a 429
    MIN_WINDOW = 100
    HISTORY = 3  # windows compared when telling load from noise
    RAMP_S = 0.5  # the limit opens linearly over this long after the first admission

    def __init__(self, max_limit: int, min_limit: int = 1, tolerance: float = 0.025) -> None:
        self.max_limit = max(1, max_limit)
        self.min_limit = max(1, min(min_limit, self.max_limit))
        self.tolerance = tolerance
        self.noise = tolerance
        self._limit = float(self.max_limit)
        self.in_flight = 0  # slots taken, held ones included
        self.held = 0  # slots held by throttled attempts until their retry is due
        self.lowest_limit = self.max_limit
        self.throttled = 0
        self.epoch = 0  # advances once per round trip (see `record`)
        self._floor = self.max_limit / 2.0  # the lowest the limit may fall to in this round trip
        self._since_429 = 0
        self._w_attempts = 0
        self._w_throttled = 0
        self._w_limit_sum = 0.0
        self._history: list[tuple[float, float]] = []  # (429 share, mean limit) of recent windows
        self._ramp_from: float | None = None

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def active(self) -> int:
        return self.in_flight - self.held

    def free(self, now: float) -> int:
        """Slots free at time `now` (monotonic seconds; the first call starts the ramp)."""
        if self._ramp_from is None:
            self._ramp_from = now
        limit = self.limit
        if now - self._ramp_from < self.RAMP_S:
            limit = min(limit, max(self.min_limit, int(limit * (now - self._ramp_from) / self.RAMP_S)))
        return max(0, limit - self.in_flight)

    def ramping(self, now: float) -> bool:
        return self._ramp_from is None or now - self._ramp_from < self.RAMP_S

    def admit(self) -> int:
        """Take a slot; returns the epoch to give back to `record`."""
        self.in_flight += 1
        return self.epoch

    def hold(self) -> None:
        """The slot's attempt was throttled: it stays taken until `release(held=True)`."""
        self.held += 1

    def release(self, held: bool = False) -> None:
        self.in_flight -= 1
        if held:
            self.held -= 1

    def record(self, epoch: int, throttled: bool, demand: bool) -> None:
        """An attempt's status is known: a 429, or accepted (`demand`: requests wait for a slot)."""
        if epoch == self.epoch:  # the first report of an attempt sent in this round trip: a new one
            self.epoch += 1
            self._floor = self._limit / 2.0
        if throttled:
            self.throttled += 1
            self._since_429 = 0
            self._limit = max(float(self.min_limit), self._floor, self._limit - 1.0)
            self.lowest_limit = min(self.lowest_limit, self.limit)
        else:
            self._since_429 += 1
            if demand and self._limit < self.max_limit:
                quiet = self._since_429 >= self.QUIET * self._limit
                step = self.FAST_GROWTH if quiet else self.noise / (1.0 - self.noise)
                self._limit = min(float(self.max_limit), self._limit + step)
        self._w_attempts += 1
        self._w_throttled += throttled
        self._w_limit_sum += self._limit
        if self._w_attempts >= max(self.MIN_WINDOW, 2 * self.limit):
            self._close_window()

    def _close_window(self) -> None:
        share, mean_limit = self._w_throttled / self._w_attempts, self._w_limit_sum / self._w_attempts
        self._w_attempts = self._w_throttled = 0
        self._w_limit_sum = 0.0
        self._history = (self._history + [(share, mean_limit)])[-self.HISTORY:]
        old_share, old_limit = self._history[0]
        if len(self._history) == self.HISTORY and mean_limit <= 0.9 * old_limit and share >= 0.8 * old_share > 0:
            self.noise = min(0.5, max(self.noise, 1.2 * share))  # fewer slots, as many 429s: not load
            self._limit = max(self._limit, old_limit)
            self._history = []
        elif share < self.noise / 2:
            self.noise = max(self.tolerance, 0.95 * self.noise)


class TokenBucket:
    """Token bucket refilled continuously at `per_minute / 60` per second (burst = one minute)."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)
        async with self._lock:
            self._refill()
            while self.tokens < amount:
                await asyncio.sleep((amount - self.tokens) / self.rate)
                self._refill()
            self.tokens -= amount

    def adjust(self, delta: float) -> None:
        """Correct an earlier estimate (positive delta = more was used than taken)."""
        self._refill()
        self.tokens -= delta


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff after `attempt` (1-based), never below Retry-After."""
    cap = min(max_s, base_s * (2 ** (attempt - 1)))
    delay = (rng or random).uniform(0, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in an `x-ratelimit-reset-*` value: "1s", "6m0s", "20ms", "1h2m3.5s", or a bare number."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def request_pause(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to stop sending when `x-ratelimit-remaining-requests` says none are left, else None.

    The wait is one request's share of the limit's period (60 s / limit), bounded by the reset time:
    enough for the provider's bucket to hold one request again.
    """
    if not headers:
        return None
    remaining = headers.get("x-ratelimit-remaining-requests")
    if remaining is None:
        return None
    try:
        if float(remaining) >= 1:
            return None
    except ValueError:
        return None
    reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
    try:
        per_request = 60.0 / float(headers.get("x-ratelimit-limit-requests", ""))
    except (ValueError, ZeroDivisionError):
        per_request = None
    waits = [w for w in (reset, per_request) if w is not None]
    return min(waits) if waits else None
