"""The endpoints of a stage: slots, health, and which one takes the next attempt.

An attempt goes to the healthy endpoint with the most free slots (each endpoint's slots are its
`FlowControl` limit). An endpoint that fails `FAILURES_TO_SUSPEND` attempts in a row (connection
refused, dropped streams, 5xx) is left alone for a while, doubling up to `MAX_SUSPEND_S`, then tried
again with one attempt; one that refuses the key (401/403) is dropped for the run. When no endpoint
is healthy, the one whose suspension ends first is used anyway; a lone endpoint is never suspended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from dagster_project.lib.llm.limits import FlowControl, TokenBucket
from dagster_project.lib.llm.transport import Outcome, Transport
from dagster_project.lib.llm.types import EndpointConfig, Target

log = logging.getLogger("dagster_project.lib.llm.pool")

FAILURES_TO_SUSPEND = 5
FIRST_SUSPEND_S = 2.0
MAX_SUSPEND_S = 60.0
FATAL_STATUSES = frozenset({401, 402, 403})
UNHEALTHY_ERRORS = frozenset({"connection_error", "stream_interrupted", "timeout"})
RAMP_TICK_S = 0.01  # while an endpoint's slots open (FlowControl.RAMP_S), waiters are looked at this often


@dataclass
class Endpoint:
    target: Target
    transport: Transport
    flow: FlowControl
    rpm: TokenBucket | None
    tpm: TokenBucket | None
    failures: int = 0  # in a row
    suspensions: int = 0
    suspended_until: float = 0.0
    probing: bool = False  # after a suspension: one attempt at a time until one succeeds
    paused_until: float = 0.0  # the provider's rate-limit headers asked for a pause
    disabled: str | None = None  # why this endpoint is out for the run
    answered: int = 0
    attempts: int = 0
    by_error: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.target.safe_url

    def capacity(self, now: float) -> int:
        """Slots free now (0 while paused; one at most while probing after a suspension)."""
        if self.disabled is not None or now < self.paused_until:
            return 0
        free = self.flow.free(now)
        return max(0, min(free, 1 - self.flow.in_flight)) if self.probing else free

    def healthy(self, now: float) -> bool:
        return self.disabled is None and now >= self.suspended_until


class NoEndpoint(Exception):
    """No endpoint is left to send to (raised by `Pool.acquire`)."""


class Pool:
    """Slots across endpoints, handed out in FIFO order to waiting attempts."""

    def __init__(self, cfg: EndpointConfig, targets: list[Target] | None = None) -> None:
        self.endpoints = [
            Endpoint(t, Transport(cfg, t), FlowControl(t.concurrency, t.min_concurrency, cfg.throttle_tolerance),
                     TokenBucket(t.rpm_limit) if t.rpm_limit > 0 else None,
                     TokenBucket(t.tpm_limit) if t.tpm_limit > 0 else None)
            for t in (targets or cfg.targets())
        ]  # fmt: skip
        self._waiters: deque[tuple[asyncio.Future[tuple[Endpoint, int]], Endpoint | None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # ---- slots ----------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return sum(e.target.concurrency for e in self.endpoints)

    @property
    def in_flight(self) -> int:
        return sum(e.flow.in_flight for e in self.endpoints)

    @property
    def limit(self) -> int:
        return sum(e.flow.limit for e in self.endpoints if e.disabled is None)

    @property
    def demand(self) -> bool:
        return bool(self._waiters)

    def usable(self) -> bool:
        return any(e.disabled is None for e in self.endpoints)

    def _choose(self, avoid: Endpoint | None, now: float) -> Endpoint | None:
        live = [e for e in self.endpoints if e.disabled is None]
        healthy = [e for e in live if e.healthy(now)] or sorted(live, key=lambda e: e.suspended_until)[:1]
        candidates = [e for e in healthy if e.capacity(now) > 0]
        preferred = [e for e in candidates if e is not avoid] or candidates
        return max(preferred, key=lambda e: e.capacity(now)) if preferred else None

    async def acquire(self, avoid: Endpoint | None = None, retry: bool = False) -> tuple[Endpoint, int]:
        """Wait for a slot (a retry waits ahead of first attempts, so that a run's tail is short);
        returns the endpoint and the flow-control epoch of the attempt. Raises NoEndpoint when
        every endpoint has refused its key."""
        if not self.usable():
            raise NoEndpoint("every endpoint refused its credentials")
        if not self._waiters:
            e = self._choose(avoid, time.monotonic())
            if e is not None:
                return e, e.flow.admit()
        fut: asyncio.Future[tuple[Endpoint, int]] = asyncio.get_running_loop().create_future()
        if retry:
            self._waiters.appendleft((fut, avoid))
        else:
            self._waiters.append((fut, avoid))
        self._wake_later(time.monotonic())  # slots that open with time (ramp, pause) wake no one else
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                e, _ = fut.result()
                self.release(e)
            else:
                self._waiters = deque(w for w in self._waiters if w[0] is not fut)
            raise

    def release(self, e: Endpoint, hold_s: float = 0.0) -> None:
        """Give a slot back, now or (a throttled attempt) when its retry is due."""
        if hold_s > 0:
            e.flow.hold()
            asyncio.get_running_loop().call_later(hold_s, self._release_held, e)
            return
        e.flow.release()
        self.wake()

    def _release_held(self, e: Endpoint) -> None:
        e.flow.release(held=True)
        self.wake()

    def wake(self) -> None:
        now = time.monotonic()
        if not self.usable():  # every endpoint refused its key: nobody gets a slot again
            while self._waiters:
                fut, _ = self._waiters.popleft()
                if not fut.done():
                    fut.set_exception(NoEndpoint("every endpoint refused its credentials"))
            return
        while self._waiters:
            fut, avoid = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            e = self._choose(avoid, now)
            if e is None:
                break
            self._waiters.popleft()
            fut.set_result((e, e.flow.admit()))
        if self._waiters:
            self._wake_later(now)

    def _wake_later(self, now: float) -> None:
        """Waiters left while an endpoint is paused, suspended or ramping up: look again then."""
        ends = [t for e in self.endpoints for t in (e.paused_until, e.suspended_until) if t > now]
        ends += [now + RAMP_TICK_S for e in self.endpoints if e.flow.ramping(now)]
        if not ends or (self._timer is not None and self._timer_at <= min(ends)):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = min(ends)
        self._timer = asyncio.get_running_loop().call_later(self._timer_at - now + 0.001, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.wake()

    # ---- health ---------------------------------------------------------------------
    def outcome(self, e: Endpoint, out: Outcome) -> None:
        """Update the endpoint's health from an attempt's outcome."""
        now = time.monotonic()
        e.attempts += 1
        if out.pause:
            e.paused_until = max(e.paused_until, now + out.pause)
        if out.parsed is not None or (out.http_status is not None and out.http_status < 500 and out.http_status != 429
                                       and out.http_status not in FATAL_STATUSES):  # fmt: skip
            e.answered += 1
            e.failures, e.probing = 0, False
            if e.suspensions and now >= e.suspended_until:
                e.suspensions = max(0, e.suspensions - 1)
            return
        key = out.error_type or "error"
        e.by_error[key] = e.by_error.get(key, 0) + 1
        if out.http_status in FATAL_STATUSES:
            if e.disabled is None:
                e.disabled = f"{e.url} refused the credentials (HTTP {out.http_status})"
                log.error("%s; no more requests go there", e.disabled)
                self.wake()
            return
        if len(self.endpoints) > 1 and (key in UNHEALTHY_ERRORS or (out.http_status or 0) >= 500):
            e.failures += 1
            if e.failures >= FAILURES_TO_SUSPEND or e.probing:
                pause = min(MAX_SUSPEND_S, FIRST_SUSPEND_S * 2**e.suspensions)
                e.suspended_until, e.suspensions, e.failures, e.probing = now + pause, e.suspensions + 1, 0, True
                log.warning("%s failed %d attempts in a row (%s); sending elsewhere for %.0fs",
                            e.url, FAILURES_TO_SUSPEND, key, pause)
                self._wake_later(now)

    def describe(self) -> list[dict]:
        return [{"base_url": e.url, "attempts": e.attempts, "answered": e.answered, "limit": e.flow.limit,
                 "lowest_limit": e.flow.lowest_limit, "http_429": e.flow.throttled, "errors": dict(e.by_error),
                 "disabled": e.disabled} for e in self.endpoints]  # fmt: skip

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for e in self.endpoints:
            try:
                await e.transport.aclose()
            except Exception:  # closing must not hide the run's outcome
                log.debug("closing %s failed", e.url, exc_info=True)
