"""Client-side flow control: adaptive (AIMD) concurrency, token buckets, retry delays."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from typing import Mapping


class AdaptiveLimiter:
    """Caps requests in flight; halves the cap on 429, grows it back additively on success.

    A 429 only cuts the cap once per "epoch": requests admitted before the last cut do
    not cut it again, so a burst of simultaneous 429s halves the cap once, not N times.
    Each full window of successes (as many as the cap) grows the cap by
    `max(1, growth * cap)`: classic +1 for small caps, ~5 % per window for large ones so a
    300-wide cap recovers from a cut in a dozen windows rather than 150.
    """

    def __init__(self, max_limit: int, min_limit: int = 1, growth: float = 0.05) -> None:
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self.growth = growth
        self._limit = float(max_limit)
        self.in_flight = 0
        self.epoch = 0
        self.lowest_limit = max_limit
        self.decreases = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return int(self._limit)

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to pass back to `on_throttled`."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self.epoch
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            else:
                self._waiters.remove(fut)
            raise
        return self.epoch

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        if self._limit < self.max_limit:
            step = max(1.0 / self._limit, self.growth)
            self._limit = min(float(self.max_limit), self._limit + step)
            self._wake()

    def on_throttled(self, epoch: int) -> bool:
        """Register a 429 for a request admitted in `epoch`; returns True if the cap was cut."""
        if epoch != self.epoch:
            return False
        self.epoch += 1
        new_limit = float(max(self.min_limit, int(self._limit) // 2))
        if new_limit == self._limit:
            return False
        self._limit = new_limit
        self.lowest_limit = min(self.lowest_limit, self.limit)
        self.decreases += 1
        return True


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
