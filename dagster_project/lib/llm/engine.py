"""Send LLMRequests to OpenAI-compatible endpoints at high concurrency and journal every attempt.

This module owns the run: retries (exponential backoff with full jitter, never sooner than
Retry-After), the spending guard (`budget.py`), stops on SIGINT/SIGTERM (`stop.py`), loops cut short
and asked again once, and progress. Which endpoint takes an attempt and how many may be in flight is
`pool.py` (with `limits.FlowControl`); one attempt through the openai SDK is `transport.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

try:
    import uvloop
except ImportError:  # not built for Windows: asyncio's own loop works, with more CPU per request
    uvloop = None

from dagster_project.lib.llm import parsing as P
from dagster_project.lib.llm.budget import Budget, SpendGuard, worst_case_cost
from dagster_project.lib.llm.journal import PROMPT_TEXT_KEY, JournalWriter, request_hash
from dagster_project.lib.llm.limits import backoff_delay
from dagster_project.lib.llm.pool import FATAL_STATUSES, Endpoint, NoEndpoint, Pool
from dagster_project.lib.llm.stop import RunInterrupted, signals_forwarded, signals_on_loop
from dagster_project.lib.llm.tokens import TEMPLATE_OVERHEAD_TOKENS, count_tokens
from dagster_project.lib.llm.transport import Outcome, scrub
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest

__all__ = ["Budget", "ProgressSnapshot", "RunInterrupted", "RunSummary", "format_progress", "run_requests",
           "run_requests_sync", "scrub"]  # fmt: skip

log = logging.getLogger("dagster_project.lib.llm.engine")

PROGRESS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ProgressSnapshot:
    done: int
    total: int | None
    ok: int
    failed: int
    in_flight: int
    concurrency_limit: int
    requests_per_s: float
    eta_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    elapsed_s: float


def format_progress(s: ProgressSnapshot) -> str:
    """One-line progress: bar, counts, rate, ETA, tokens, cost."""
    if s.total:
        frac = min(1.0, s.done / s.total)
        bar = "#" * int(frac * 20)
        head = f"[{bar:<20}] {s.done}/{s.total} {frac:6.1%}"
    else:
        head = f"{s.done} done"
    eta = "?" if s.eta_s is None else f"{int(s.eta_s // 60)}m{int(s.eta_s % 60):02d}s"
    return (
        f"{head} ok={s.ok} failed={s.failed} in_flight={s.in_flight}/{s.concurrency_limit} "
        f"{s.requests_per_s:.1f} req/s eta={eta} tok={s.prompt_tokens}+{s.completion_tokens} cost={s.cost:.4f}"
    )


@dataclass
class RunSummary:
    run_id: str
    requests: int = 0  # requests with a final journal row from this run
    by_status: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    retries: int = 0
    http_429: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    currency: str = "USD"
    latency_p50_s: float | None = None
    latency_p90_s: float | None = None
    latency_p99_s: float | None = None
    ttft_p50_s: float | None = None
    lowest_concurrency_limit: int = 0
    stopped_by_budget: bool = False
    stopped_reason: str | None = None
    simulated: bool = False
    elapsed_s: float = 0.0
    sent: int = 0  # requests with at least one attempt sent (re-asks included)
    not_sent: int | None = None  # requests given but never sent (None: a lazy iterator was not drained)
    unfinished: int = 0  # sent, but stopped before a final answer (journaled as attempts only)
    loops: int = 0  # responses cut because they repeated themselves
    reasks: int = 0  # looping samples asked again as another sample
    interrupted: str | None = None  # the signal that stopped the run
    endpoints: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Reservoir:
    """Fixed-size uniform sample for percentiles (memory flat in the number of requests)."""

    def __init__(self, size: int = 10_000, seed: int = 0) -> None:
        self.size, self.seen, self.values, self._rng = size, 0, [], random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.values[j] = value

    def quantile(self, q: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_INTERRUPTED = Outcome(P.RETRYABLE_ERROR, True, error_type="interrupted",
                       error_message="stopped by a signal before the answer was complete")  # fmt: skip


class _Run:
    """State of one `run_requests` call."""

    def __init__(self, cfg: EndpointConfig, writer: JournalWriter, run_id: str, budget: Budget | None,
                 progress: Callable[[ProgressSnapshot], None] | None, total: int | None) -> None:  # fmt: skip
        self.cfg, self.writer, self.run_id, self.budget = cfg, writer, run_id, budget or Budget()
        self.progress, self.total = progress, total
        self.pool = Pool(cfg)
        self.secrets = tuple(e.transport.key for e in self.pool.endpoints)
        self.summary = RunSummary(run_id=run_id, currency=cfg.currency, lowest_concurrency_limit=self.pool.capacity)
        self.spend = SpendGuard(self.budget.max_cost)
        self.latencies, self.ttfts = _Reservoir(), _Reservoir()
        self.started = time.monotonic()
        self.pulled = self.scheduled = self.sent_given = 0
        self.avg_completion_tokens: float | None = None  # moving average, for tpm estimates
        self._answers = 0
        self.done = self.ok = self.failed = 0
        self.stop_reason: str | None = None
        self.signal: str | None = None
        self.exhausted = False
        self.params_json = json.dumps({**cfg.sampling_params(), "stream": cfg.stream}, sort_keys=True, ensure_ascii=False)
        self._workers: list[asyncio.Task[None]] = []
        self._attempting: set[asyncio.Task[Any]] = set()
        self._grace: asyncio.TimerHandle | None = None

    # ---- stopping -------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None or self.signal is not None

    def on_signal(self, name: str) -> None:
        """SIGINT/SIGTERM: stop scheduling now, give attempts in flight the grace, then cancel."""
        if self.signal is not None:  # a second signal: no more grace
            log.warning("%s again: cancelling %d requests in flight now", name, len(self._attempting))
            self._cancel(self._workers)
            return
        self.signal = name
        grace = self.cfg.shutdown_grace_seconds
        log.warning("%s: no new requests; %d in flight get %.0fs to finish", name, len(self._attempting), grace)
        self.spend.close()
        self._cancel([t for t in self._workers if t not in self._attempting])
        self._grace = asyncio.get_running_loop().call_later(grace, self._cancel, self._workers)

    @staticmethod
    def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
        for t in list(tasks):
            if not t.done():
                t.cancel()

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            log.error(reason)
            self.spend.close()

    # ---- one request, all attempts --------------------------------------------------
    async def process(self, req: LLMRequest, given: bool = True) -> bool:
        """Every attempt of `req` (`given`: from the caller, not a re-ask); True if a final row was journaled."""
        cfg, h = self.cfg, request_hash(self.cfg, req)
        worst = worst_case_cost(cfg, req)
        avoid: Endpoint | None = None
        for attempt in range(1, cfg.max_attempts + 1):
            if self.stopping or not await self.spend.reserve(worst):
                return False
            try:
                e, epoch = await self.pool.acquire(avoid, retry=attempt > 1)
            except NoEndpoint:
                self.spend.settle(worst, 0.0)
                return False
            except BaseException:
                self.spend.settle(worst, 0.0)
                raise
            if attempt == 1:
                self.summary.sent += 1
                self.sent_given += given
            out, final, hold = await self._attempt(e, epoch, req, attempt, worst, h)
            if out.status == P.REPETITION:
                self.summary.loops += 1
                await self._reask(req)
            if final:
                return True
            avoid = e
            self.summary.retries += 1
            delay = hold or backoff_delay(attempt, cfg.backoff_base_seconds, cfg.backoff_max_seconds, out.retry_after)
            log.debug("attempt %d of %s failed (%s); retrying in %.2fs", attempt, req.prompt_id, out.error_type, delay)
            await asyncio.sleep(delay)
        return False  # pragma: no cover (the last attempt is final)

    async def _attempt(self, e: Endpoint, epoch: int, req: LLMRequest, attempt: int, worst: float,
                       h: str) -> tuple[Outcome, bool, float]:  # fmt: skip
        """One attempt on `e` (its slot taken): send, journal, settle, give the slot back.
        Returns the outcome, whether it is final, and how long a throttled slot stays held."""
        cfg, task = self.cfg, asyncio.current_task()
        assert task is not None
        estimate = 0.0
        self._attempting.add(task)
        started, t0, hold = time.time(), time.perf_counter(), 0.0
        accepted = False

        def on_accepted() -> None:
            nonlocal accepted
            accepted = True
            e.flow.record(epoch, False, self.pool.demand)

        sending = False
        try:
            if e.rpm is not None:
                await e.rpm.take(1)
            if e.tpm is not None:
                estimate = self._estimate_tokens(req)
                await e.tpm.take(estimate)
            started, t0, sending = time.time(), time.perf_counter(), True
            out = await e.transport.send(req, attempt, on_accepted)
        except asyncio.CancelledError:  # stopped: an attempt on its way is journaled as interrupted, never final
            self.pool.release(e)
            self.spend.settle(worst, 0.0)
            if sending:
                self._record(e, req, h, attempt, False, _INTERRUPTED, started, time.perf_counter() - t0, 0.0)
            self._attempting.discard(task)
            raise
        latency = time.perf_counter() - t0
        self.pool.outcome(e, out)
        if out.http_status in FATAL_STATUSES and self.pool.usable():  # that replica's key, not the request
            out.status, out.retryable = P.RETRYABLE_ERROR, True
        final = not out.retryable or attempt == cfg.max_attempts
        if final and out.retryable:
            out.status = P.ERROR
        if out.http_status == 429:
            self.summary.http_429 += 1
            if not accepted:
                e.flow.record(epoch, True, self.pool.demand)
                self.summary.lowest_concurrency_limit = min(self.summary.lowest_concurrency_limit, self.pool.limit)
            if not final:
                hold = backoff_delay(attempt, cfg.backoff_base_seconds, cfg.backoff_max_seconds, out.retry_after)
        cost = self._cost(req, out, final)  # nothing from here on awaits: a stop cannot lose this answer
        self._record(e, req, h, attempt, final, out, started, latency, cost)
        if final:
            self._finish(latency, out)
        self.spend.settle(worst, cost)
        if e.tpm is not None and out.parsed is not None and out.parsed.usage.completion_tokens is not None:
            e.tpm.adjust((out.parsed.usage.prompt_tokens or 0) + out.parsed.usage.completion_tokens - estimate)
        self.pool.release(e, hold_s=hold)
        self._attempting.discard(task)
        if out.http_status in FATAL_STATUSES and not self.pool.usable():
            self._stop(f"endpoint refused the credentials (HTTP {out.http_status}); stopped scheduling")
        return out, final, hold

    async def _reask(self, req: LLMRequest) -> None:
        """A looping sample is asked once more, as another sample of the same prompt."""
        if not self.cfg.loop_reask or req.is_reask or self.stopping or not self._may_schedule():
            return
        self.scheduled += 1
        self.summary.reasks += 1
        await self.process(req.reask(), given=False)

    def _estimate_tokens(self, req: LLMRequest) -> float:
        """Tokens an attempt takes from a tpm bucket before its usage is known (corrected after)."""
        completion = min(self.avg_completion_tokens or self.cfg.max_tokens, self.cfg.max_tokens)
        return sum(len(c) for _, c in req.messages) / 1.9 + completion

    def _cost(self, req: LLMRequest, out: Outcome, final: bool) -> float:
        """The attempt's cost: from the reported usage, else from offline token counts (kept on `out`)."""
        parsed, cfg = out.parsed, self.cfg
        if parsed is None:
            return 0.0
        usage = parsed.usage
        prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        if completion_tokens is None:  # no usage reported (or a stream cut short): count what arrived
            texts = ["\n".join(c for _, c in req.messages), parsed.reasoning, parsed.content]
            p_len, r_len, c_len = count_tokens(texts)
            prompt_tokens, completion_tokens = p_len + TEMPLATE_OVERHEAD_TOKENS, r_len + c_len
            if final and out.status in (P.OK, P.TRUNCATED, P.REPETITION):
                out.counts = (p_len, r_len, c_len)
        s = self.summary
        s.prompt_tokens += prompt_tokens or 0
        s.completion_tokens += completion_tokens
        s.reasoning_tokens += usage.reasoning_tokens or 0
        self._answers += 1
        prev = self.avg_completion_tokens or completion_tokens
        self.avg_completion_tokens = prev + (completion_tokens - prev) / min(self._answers, 100)
        return ((prompt_tokens or 0) * cfg.price_input_per_mtok + completion_tokens * cfg.price_output_per_mtok) / 1e6

    def _finish(self, latency: float, out: Outcome) -> None:
        s, status = self.summary, out.status
        s.by_status[status] = s.by_status.get(status, 0) + 1
        s.requests += 1
        self.done += 1
        if status == P.OK:
            self.ok += 1
            self.latencies.add(latency)
            if out.ttft is not None:
                self.ttfts.add(out.ttft)
        elif status == P.ERROR:
            self.failed += 1

    def _record(self, e: Endpoint, req: LLMRequest, h: str, attempt: int, final: bool, out: Outcome,
                started: float, latency: float, cost: float) -> None:  # fmt: skip
        cfg, parsed = self.cfg, out.parsed
        usage = parsed.usage if parsed is not None else P.Usage()
        row: dict[str, Any] = {
            "request_hash": h, "partition": req.partition, "prompt_id": req.prompt_id,
            "sample_index": req.sample_index, "purpose": req.purpose, "model": cfg.model,
            "base_url": e.url, "params_json": self.params_json, "max_tokens": cfg.max_tokens,
            "attempt": attempt, "is_final": final, "status": out.status if final else P.RETRYABLE_ERROR,
            "http_status": out.http_status, "error_type": out.error_type, "error_message": out.error_message,
            "finish_reason": parsed.finish_reason if parsed else None,
            "usage_prompt_tokens": usage.prompt_tokens, "usage_completion_tokens": usage.completion_tokens,
            "usage_reasoning_tokens": usage.reasoning_tokens, "currency": cfg.currency, "cost": cost,
            "latency_s": latency, "ttft_s": out.ttft, "retry_after_s": out.retry_after,
            "started_at": started, "finished_at": started + latency, "simulated": out.simulated, "run_id": self.run_id,
        }  # fmt: skip
        if final and parsed is not None:
            row["reasoning"], row["content"] = parsed.reasoning, parsed.content
            row[PROMPT_TEXT_KEY] = "\n".join(c for _, c in req.messages)
            if out.counts is not None:
                row["prompt_tokens_len"], row["reasoning_tokens_len"], row["content_tokens_len"] = out.counts
        self.summary.attempts += 1
        self.summary.cost += cost
        self.summary.simulated = self.summary.simulated or out.simulated
        self.writer.append(row)

    # ---- scheduling -----------------------------------------------------------------
    def _may_schedule(self) -> bool:
        b = self.budget
        if b.max_requests is not None and self.scheduled >= b.max_requests:
            if not self.summary.stopped_by_budget:
                log.info("request cap reached after %d requests; stopping", self.scheduled)
            self.summary.stopped_by_budget = True
            return False
        return True

    async def worker(self, it: Iterator[LLMRequest]) -> None:
        while not self.stopping and not self.spend.refused and self._may_schedule():
            try:
                req = next(it)
            except StopIteration:
                self.exhausted = True
                return
            self.pulled += 1
            self.scheduled += 1
            await self.process(req)

    def snapshot(self) -> ProgressSnapshot:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if self.total is not None and rate > 0 else None
        s = self.summary
        return ProgressSnapshot(self.done, self.total, self.ok, self.failed, self.pool.in_flight, self.pool.limit,
                                rate, eta, s.prompt_tokens, s.completion_tokens, s.cost, elapsed)  # fmt: skip

    async def report_progress(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            try:
                self.progress(self.snapshot())
            except Exception:
                log.exception("progress callback failed")

    async def run(self, requests: Iterable[LLMRequest]) -> RunSummary:
        it = iter(requests)
        # more workers than slots, so that requests waiting out a retry delay do not idle the slots
        n_workers = self.pool.capacity + max(1, self.pool.capacity // 4)
        reporter = asyncio.create_task(self.report_progress()) if self.progress else None
        try:
            self._workers = [asyncio.create_task(self.worker(it)) for _ in range(n_workers)]
            results = await asyncio.gather(*self._workers, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
            if errors:
                raise errors[0]
        finally:
            if self._grace is not None:
                self._grace.cancel()
            if reporter is not None:
                reporter.cancel()
            await self.pool.aclose()
        return self._summarize(it)

    def _summarize(self, it: Iterator[LLMRequest]) -> RunSummary:
        if self.progress is not None:
            self.progress(self.snapshot())
        s = self.summary
        s.elapsed_s = time.monotonic() - self.started
        s.latency_p50_s, s.latency_p90_s, s.latency_p99_s = (self.latencies.quantile(q) for q in (0.5, 0.9, 0.99))
        s.ttft_p50_s = self.ttfts.quantile(0.5)
        s.unfinished = s.sent - s.requests
        if self.total is not None:
            s.not_sent = self.total - self.sent_given
        elif self.exhausted:
            s.not_sent = self.pulled - self.sent_given
        if self.spend.refused:
            s.stopped_by_budget = True
            s.stopped_reason = f"cost cap: {self.spend.spent:.4f} {self.cfg.currency} spent of {self.budget.max_cost:g}"
        elif s.stopped_by_budget:
            s.stopped_reason = f"request cap: {self.scheduled} of {self.budget.max_requests} requests sent"
        if self.stop_reason is not None:
            s.stopped_reason = self.stop_reason
        s.interrupted = self.signal
        s.endpoints = self.pool.describe()
        s.lowest_concurrency_limit = min([s.lowest_concurrency_limit] + [e.flow.lowest_limit for e in self.pool.endpoints])
        log.info("run %s finished: %s", self.run_id, json.dumps(s.to_dict(), ensure_ascii=False))
        return s

    def interrupted_error(self) -> RunInterrupted:
        s = self.summary
        not_sent = "?" if s.not_sent is None else str(s.not_sent)
        message = (f"interrupted by {self.signal}: {s.sent} sent, {s.requests} journaled, {not_sent} not sent"
                   + (f" ({s.unfinished} sent but unanswered are journaled as attempts and will be sent again)"
                      if s.unfinished else ""))  # fmt: skip
        return RunInterrupted(message, sent=s.sent, journaled=s.requests, not_sent=s.not_sent,
                              signal_name=self.signal or "")  # fmt: skip


async def _run(requests: Iterable[LLMRequest], cfg: EndpointConfig, writer: JournalWriter, run_id: str,
               progress: Callable[[ProgressSnapshot], None] | None, budget: Budget | None,
               on_start: Callable[[_Run], None] | None = None) -> RunSummary:  # fmt: skip
    """The run, with SIGINT/SIGTERM on this loop when it is the main thread's (`on_start`: signals come from elsewhere)."""
    total = len(requests) if hasattr(requests, "__len__") else None  # type: ignore[arg-type]
    run = _Run(cfg, writer, run_id, budget, progress, total)
    log.info("run %s: %s requests to %s model=%s concurrency=%d stream=%s think_prefix=%s", run_id,
             "?" if total is None else total, cfg.describe_targets(), cfg.model, run.pool.capacity, cfg.stream,
             cfg.think_prefix)  # fmt: skip
    try:
        if on_start is not None:
            on_start(run)
            summary = await run.run(requests)
        else:
            with signals_on_loop(asyncio.get_running_loop(), run.on_signal):
                summary = await run.run(requests)
    finally:
        await asyncio.to_thread(writer.flush)
    if run.signal is not None:
        raise run.interrupted_error()
    return summary


async def run_requests(
    requests: Iterable[LLMRequest],
    cfg: EndpointConfig,
    writer: JournalWriter,
    *,
    run_id: str,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    budget: Budget | None = None,
) -> RunSummary:
    """Send every request (lazily pulled from `requests`), journaling each attempt via `writer`.

    The writer is flushed, not closed, at the end. Use `journal.plan` first to skip requests
    already answered in the journal. SIGINT/SIGTERM stop the run (see `stop.py`) when this loop
    runs in the main thread; the run then raises `RunInterrupted`.
    """
    return await _run(requests, cfg, writer, run_id, progress, budget)


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run_requests_sync(
    requests: Iterable[LLMRequest],
    cfg: EndpointConfig,
    writer: JournalWriter,
    *,
    run_id: str,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    budget: Budget | None = None,
) -> RunSummary:
    """Blocking `run_requests` on a uvloop event loop: in this thread, or in a helper thread when this
    thread already runs a loop (signals reaching the main thread are then forwarded to the run)."""
    args = (requests, cfg, writer, run_id, progress, budget)
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    if not loop_running:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            return runner.run(_run(*args))
    loop = _new_loop()
    runs: list[_Run] = []
    result: list[RunSummary] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(loop.run_until_complete(_run(*args, on_start=runs.append)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def on_signal(name: str) -> None:
        if runs:
            runs[0].on_signal(name)

    thread = threading.Thread(target=target, name="llm-run")
    with signals_forwarded(loop, on_signal):
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
    if errors:
        raise errors[0]
    return result[0]
