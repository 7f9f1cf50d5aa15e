"""Send LLMRequests to an OpenAI-compatible endpoint at high concurrency and journal every attempt.

This module owns retries (exponential backoff with full jitter, honouring Retry-After), the
per-attempt total deadline, adaptive concurrency, optional rpm/tpm limits and a spending
budget. Requests are plain HTTP POSTs in the OpenAI wire format through one aiohttp session
on a uvloop event loop, and responses are read as raw JSON / SSE lines (no per-chunk model
objects): the openai SDK's request building alone cost ~0.5 ms of CPU per request, half of
this module's budget at 300 requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import aiohttp
import orjson

try:
    import uvloop
except ImportError:  # not built for Windows: asyncio's own loop works, with more CPU per request
    uvloop = None

from dagster_project.lib.llm import parsing as P
from dagster_project.lib.llm.journal import PROMPT_TEXT_KEY, JournalWriter, request_hash
from dagster_project.lib.llm.limits import (
    AdaptiveLimiter,
    TokenBucket,
    backoff_delay,
    parse_retry_after,
)
from dagster_project.lib.llm.tokens import TEMPLATE_OVERHEAD_TOKENS, count_tokens
from dagster_project.lib.llm.types import (
    SIMULATOR_FINGERPRINT,
    EndpointConfig,
    LLMRequest,
    resolve_api_key,
    safe_base_url,
)

log = logging.getLogger("dagster_project.lib.llm.engine")

THINK_PREFIX = "<think>\n"
PREFILL_FLAGS = {"add_generation_prompt": False, "continue_final_message": True}
NON_RETRYABLE_STATUSES = frozenset({400, 401, 402, 403, 404, 422})
FATAL_STATUSES = frozenset({401, 402, 403})
PROGRESS_INTERVAL_S = 1.0
_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key=[^&\s]+)", re.IGNORECASE)
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Budget:
    """Stop scheduling new requests once either limit is reached (in-flight ones finish)."""

    max_requests: int | None = None
    max_cost: float | None = None


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
    requests: int = 0
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


@dataclass
class _Outcome:
    """Result of one attempt."""

    status: str
    retryable: bool = False
    parsed: P.ParsedResponse | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    ttft: float | None = None
    simulated: bool = False


def scrub(message: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that looks like a credential and cap the length."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return _KEY_PATTERN.sub("***", message)[:_MAX_ERROR_CHARS]


def _root_cause(exc: BaseException) -> BaseException:
    seen = 0
    while (exc.__cause__ or exc.__context__) is not None and seen < 10:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return exc


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError))


def raw_r1_prompt(messages: list[dict[str, str]]) -> str:
    """DeepSeek-R1 raw template ending with the forced think prefix (for /v1/completions)."""
    parts = ["<｜begin▁of▁sentence｜>"]
    for m in messages:
        if m["role"] == "system":
            parts.append(m["content"])
        elif m["role"] == "user":
            parts.append(f"<｜User｜>{m['content']}")
        else:
            parts.append(f"<｜Assistant｜>{m['content']}<｜end▁of▁sentence｜>")
    parts.append("<｜Assistant｜>" + THINK_PREFIX)
    return "".join(parts)


class _Run:
    """State of one `run_requests` call."""

    def __init__(self, cfg: EndpointConfig, writer: JournalWriter, run_id: str, budget: Budget | None,
                 progress: Callable[[ProgressSnapshot], None] | None, total: int | None) -> None:  # fmt: skip
        self.cfg, self.writer, self.run_id, self.budget = cfg, writer, run_id, budget
        self.progress, self.total = progress, total
        self.key = resolve_api_key(cfg)
        self.summary = RunSummary(run_id=run_id, currency=cfg.currency, lowest_concurrency_limit=cfg.concurrency)
        self.limiter = AdaptiveLimiter(cfg.concurrency, cfg.min_concurrency)
        self.rpm = TokenBucket(cfg.rpm_limit) if cfg.rpm_limit > 0 else None
        self.tpm = TokenBucket(cfg.tpm_limit) if cfg.tpm_limit > 0 else None
        self.latencies, self.ttfts = _Reservoir(), _Reservoir()
        self.started = time.monotonic()
        self.scheduled = 0
        self.done = self.ok = self.failed = 0
        self.stop_reason: str | None = None
        self.avg_completion_tokens: float | None = None
        self.base_url = safe_base_url(cfg.base_url)
        self.params_json = json.dumps({**cfg.sampling_params(), "stream": cfg.stream}, sort_keys=True, ensure_ascii=False)
        self.endpoint_is_completions = cfg.think_prefix == "completions"
        self.url = cfg.base_url.rstrip("/") + ("/completions" if self.endpoint_is_completions else "/chat/completions")
        self.headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if cfg.stream else "application/json",
            "User-Agent": "r1-distill",
        }
        self.session: aiohttp.ClientSession | None = None  # opened in `run`, on the running loop

    def _open_session(self) -> aiohttp.ClientSession:
        cfg = self.cfg
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=cfg.concurrency + 16, limit_per_host=0, ttl_dns_cache=300),
            # per read, like the SDK's httpx timeout; the whole attempt is bounded in `_attempt`
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout_seconds,
                                          sock_read=cfg.request_timeout_seconds),
            auto_decompress=True,
        )

    # ---- request building -----------------------------------------------------------
    def _body(self, req: LLMRequest) -> dict[str, Any]:
        """The JSON body (OpenAI wire format; extra_body keys are merged at top level)."""
        cfg = self.cfg
        extra_body = cfg.extra_body_dict()
        kw: dict[str, Any] = {
            "model": cfg.model,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            "stream": cfg.stream,
        }
        if cfg.stream:
            kw["stream_options"] = {"include_usage": True}
        messages = req.messages_list()
        if self.endpoint_is_completions:
            kw["prompt"] = raw_r1_prompt(messages)
        else:
            if cfg.think_prefix == "prefill":
                messages.append({"role": "assistant", "content": THINK_PREFIX})
                extra_body = {**extra_body, **PREFILL_FLAGS}
            kw["messages"] = messages
            if req.response_format is not None:
                kw["response_format"] = req.response_format_dict()
        kw.update(extra_body)
        return kw

    # ---- one attempt ----------------------------------------------------------------
    async def _attempt(self, req: LLMRequest, attempt: int) -> _Outcome:
        cfg = self.cfg
        headers = {**self.headers, "X-Distill-Sample": str(req.sample_index), "X-Distill-Attempt": str(attempt)}
        t0 = time.perf_counter()
        response_started = False
        assert self.session is not None, "requests are sent from inside `run`"
        try:
            async with asyncio.timeout(cfg.request_timeout_seconds):
                async with self.session.post(self.url, data=orjson.dumps(self._body(req)), headers=headers) as resp:
                    response_started = True
                    simulated = resp.headers.get("x-distill-simulated") == "1"
                    if resp.status >= 400:
                        return await self._status_error(resp, simulated)
                    if cfg.stream:
                        parsed, ttft = await self._read_stream(resp, t0)
                    else:
                        parsed, ttft = P.parse_response(orjson.loads(await resp.read()), cfg.kind), None
                    simulated = simulated or parsed.system_fingerprint == SIMULATOR_FINGERPRINT
                    return self._classify(parsed, resp.status, ttft, simulated)
        except TimeoutError:  # our total per-attempt deadline
            return _Outcome(P.RETRYABLE_ERROR, True, error_type="timeout",
                            error_message=f"no complete response within {cfg.request_timeout_seconds:g}s")  # fmt: skip
        except (aiohttp.ClientError, OSError) as exc:
            root = _root_cause(exc)
            if _is_timeout(root):
                kind = "timeout"
            else:
                kind = "stream_interrupted" if response_started else "connection_error"
            return _Outcome(P.RETRYABLE_ERROR, True, error_type=kind,
                            error_message=scrub(f"{type(root).__name__}: {root}", (self.key,)))  # fmt: skip
        except (json.JSONDecodeError, UnicodeDecodeError, P.MalformedResponse) as exc:  # orjson's error is a JSONDecodeError
            return _Outcome(P.RETRYABLE_ERROR, True, error_type="malformed_response",
                            error_message=scrub(f"{type(exc).__name__}: {exc}", (self.key,)))  # fmt: skip
        except Exception as exc:  # a bug or misconfiguration on our side: record it, do not retry
            log.exception("unexpected client error for %s", req.prompt_id)
            return _Outcome(P.ERROR, False, error_type=f"client_error:{type(exc).__name__}",
                            error_message=scrub(str(exc), (self.key,)))  # fmt: skip

    async def _status_error(self, resp: aiohttp.ClientResponse, simulated: bool) -> _Outcome:
        """An HTTP error answer: retryable or not by status, with the server's message."""
        code = resp.status
        body = (await resp.read())[:4096]
        try:
            detail = orjson.loads(body)
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            message = detail.get("message", detail) if isinstance(detail, dict) else detail
        except orjson.JSONDecodeError:
            message = body.decode("utf-8", "replace") or resp.reason or ""
        retryable = code not in NON_RETRYABLE_STATUSES and (code in (408, 409, 429) or code >= 500)
        return _Outcome(
            P.RETRYABLE_ERROR if retryable else P.ERROR,
            retryable=retryable,
            http_status=code,
            error_type=f"http_{code}",
            error_message=scrub(f"Error code: {code} - {message}", (self.key,)),
            retry_after=parse_retry_after(resp.headers),
            simulated=simulated,
        )

    async def _read_stream(self, resp: aiohttp.ClientResponse, t0: float) -> tuple[P.ParsedResponse, float | None]:
        """Read an SSE body. Payloads are kept as bytes and decoded in one `orjson.loads` at the end;
        only the first few are decoded on arrival to time the first generated token."""
        acc = P.StreamAccumulator(self.cfg.kind)
        payloads: list[bytes] = []
        ttft = None
        done = False
        pending = b""
        async for raw in resp.content.iter_any():
            lines = (pending + raw).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if not line.startswith(b"data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                if ttft is None:
                    if acc.add(orjson.loads(data)):
                        ttft = time.perf_counter() - t0
                else:
                    payloads.append(data)
            if done:
                break
        if pending.startswith(b"data:") and pending[5:].strip() == b"[DONE]":
            done = True
        if payloads:
            for chunk in orjson.loads(b"[" + b",".join(payloads) + b"]"):
                acc.add(chunk)
        if acc.error is not None:
            raise P.MalformedResponse(f"error event in stream: {str(acc.error)[:200]}")
        if not done and acc.finish_reason is None:
            raise aiohttp.ClientPayloadError("stream ended without a finish_reason or [DONE]")
        return acc.result(), ttft

    def _classify(self, parsed: P.ParsedResponse, http_status: int, ttft: float | None, simulated: bool) -> _Outcome:
        retryable = parsed.status == P.RETRYABLE_ERROR
        return _Outcome(parsed.status, retryable, parsed, http_status, parsed.error_type,
                        None if not retryable else f"finish_reason={parsed.finish_reason}", None, ttft, simulated)  # fmt: skip

    # ---- one request, all attempts --------------------------------------------------
    def _estimate_tokens(self, req: LLMRequest) -> float:
        prompt = sum(len(c) for _, c in req.messages) / 1.9
        completion = self.avg_completion_tokens or self.cfg.max_tokens
        return prompt + min(completion, self.cfg.max_tokens)

    async def process(self, req: LLMRequest) -> None:
        cfg, h = self.cfg, request_hash(self.cfg, req)
        for attempt in range(1, cfg.max_attempts + 1):
            estimate = 0.0
            if self.rpm is not None:
                await self.rpm.take(1)
            if self.tpm is not None:
                estimate = self._estimate_tokens(req)
                await self.tpm.take(estimate)
            epoch = await self.limiter.acquire()
            if attempt == 1 and self._cost_budget_reached():  # spent while this request waited for a slot
                self.limiter.release()
                self.summary.stopped_by_budget = True
                self.scheduled -= 1
                return
            started = time.time()
            t0 = time.perf_counter()
            try:
                out = await self._attempt(req, attempt)
            finally:
                self.limiter.release()
            latency = time.perf_counter() - t0
            if out.http_status == 429:
                self.summary.http_429 += 1
                if self.limiter.on_throttled(epoch):
                    self.summary.lowest_concurrency_limit = min(self.summary.lowest_concurrency_limit, self.limiter.limit)
                    log.info("429 from server: concurrency limit cut to %d", self.limiter.limit)
            elif out.parsed is not None:
                self.limiter.on_success()
            final = not out.retryable or attempt == cfg.max_attempts
            status = out.status if not (final and out.retryable) else P.ERROR
            cost = self._record(req, h, attempt, final, status, out, started, latency)
            if self.tpm is not None and out.parsed is not None and out.parsed.usage.completion_tokens is not None:
                used = (out.parsed.usage.prompt_tokens or 0) + out.parsed.usage.completion_tokens
                self.tpm.adjust(used - estimate)
            self.summary.attempts += 1
            self.summary.cost += cost
            if out.status == P.ERROR and out.http_status in FATAL_STATUSES and self.stop_reason is None:
                self.stop_reason = f"endpoint refused the credentials (HTTP {out.http_status}); stopped scheduling"
                log.error(self.stop_reason)
            if final:
                self._finish(status, latency, out)
                return
            self.summary.retries += 1
            delay = backoff_delay(attempt, cfg.backoff_base_seconds, cfg.backoff_max_seconds, out.retry_after)
            log.debug("attempt %d of %s failed (%s); retrying in %.2fs", attempt, req.prompt_id, out.error_type, delay)
            await asyncio.sleep(delay)

    def _finish(self, status: str, latency: float, out: _Outcome) -> None:
        s = self.summary
        s.by_status[status] = s.by_status.get(status, 0) + 1
        s.requests += 1
        s.simulated = s.simulated or out.simulated
        self.done += 1
        if status == P.OK:
            self.ok += 1
            self.latencies.add(latency)
            if out.ttft is not None:
                self.ttfts.add(out.ttft)
        elif status == P.ERROR:
            self.failed += 1

    def _record(self, req: LLMRequest, h: str, attempt: int, final: bool, status: str, out: _Outcome,
                started: float, latency: float) -> float:  # fmt: skip
        cfg, parsed = self.cfg, out.parsed
        usage = parsed.usage if parsed is not None else P.Usage()
        row: dict[str, Any] = {
            "request_hash": h, "partition": req.partition, "prompt_id": req.prompt_id,
            "sample_index": req.sample_index, "purpose": req.purpose, "model": cfg.model,
            "base_url": self.base_url, "params_json": self.params_json, "max_tokens": cfg.max_tokens,
            "attempt": attempt, "is_final": final, "status": status if final else P.RETRYABLE_ERROR,
            "http_status": out.http_status, "error_type": out.error_type, "error_message": out.error_message,
            "finish_reason": parsed.finish_reason if parsed else None,
            "usage_prompt_tokens": usage.prompt_tokens, "usage_completion_tokens": usage.completion_tokens,
            "usage_reasoning_tokens": usage.reasoning_tokens, "currency": cfg.currency,
            "latency_s": latency, "ttft_s": out.ttft, "retry_after_s": out.retry_after,
            "started_at": started, "finished_at": started + latency, "simulated": out.simulated, "run_id": self.run_id,
        }  # fmt: skip
        if final and parsed is not None:
            row["reasoning"], row["content"] = parsed.reasoning, parsed.content
            row[PROMPT_TEXT_KEY] = "\n".join(c for _, c in req.messages)
        cost = 0.0
        if parsed is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
            if completion_tokens is None:  # no usage reported: fall back to offline counts
                p_len, r_len, c_len = count_tokens([row.get(PROMPT_TEXT_KEY) or "", parsed.reasoning, parsed.content])
                prompt_tokens, completion_tokens = p_len + TEMPLATE_OVERHEAD_TOKENS, r_len + c_len
                if final and status in (P.OK, P.TRUNCATED):
                    row["prompt_tokens_len"], row["reasoning_tokens_len"], row["content_tokens_len"] = p_len, r_len, c_len
            cost = ((prompt_tokens or 0) * cfg.price_input_per_mtok + completion_tokens * cfg.price_output_per_mtok) / 1e6
            self.summary.prompt_tokens += prompt_tokens or 0
            self.summary.completion_tokens += completion_tokens
            self.summary.reasoning_tokens += usage.reasoning_tokens or 0
            n = self.summary.attempts + 1
            prev = self.avg_completion_tokens or completion_tokens
            self.avg_completion_tokens = prev + (completion_tokens - prev) / min(n, 100)
        row["cost"] = cost
        self.writer.append(row)
        return cost

    # ---- scheduling -----------------------------------------------------------------
    def _cost_budget_reached(self) -> bool:
        b = self.budget
        return b is not None and b.max_cost is not None and self.summary.cost >= b.max_cost

    def _budget_reached(self) -> bool:
        b = self.budget
        if b is None:
            return False
        return (b.max_requests is not None and self.scheduled >= b.max_requests) or self._cost_budget_reached()

    async def worker(self, it: Any) -> None:
        while self.stop_reason is None:
            if self._budget_reached():
                if not self.summary.stopped_by_budget:
                    log.info("budget reached after %d requests (cost %.4f); stopping", self.scheduled, self.summary.cost)
                self.summary.stopped_by_budget = True
                return
            try:
                req = next(it)
            except StopIteration:
                return
            self.scheduled += 1
            await self.process(req)

    def snapshot(self) -> ProgressSnapshot:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if self.total is not None and rate > 0 else None
        s = self.summary
        return ProgressSnapshot(self.done, self.total, self.ok, self.failed, self.limiter.in_flight, self.limiter.limit,
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
        # more workers than the cap so requests sleeping in backoff do not idle the cap
        n_workers = self.cfg.concurrency + max(1, self.cfg.concurrency // 4)
        reporter = asyncio.create_task(self.report_progress()) if self.progress else None
        try:
            async with self._open_session() as self.session:
                await asyncio.gather(*(self.worker(it) for _ in range(n_workers)))
        finally:
            if reporter is not None:
                reporter.cancel()
        if self.progress is not None:
            self.progress(self.snapshot())
        s = self.summary
        s.elapsed_s = time.monotonic() - self.started
        s.latency_p50_s, s.latency_p90_s, s.latency_p99_s = (self.latencies.quantile(q) for q in (0.5, 0.9, 0.99))
        s.ttft_p50_s = self.ttfts.quantile(0.5)
        s.stopped_reason = self.stop_reason or ("budget" if s.stopped_by_budget else None)
        s.lowest_concurrency_limit = min(s.lowest_concurrency_limit, self.limiter.lowest_limit)
        log.info("run %s finished: %s", self.run_id, json.dumps({k: v for k, v in s.to_dict().items()}, ensure_ascii=False))
        return s


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
    already answered in the journal.
    """
    total = len(requests) if hasattr(requests, "__len__") else None  # type: ignore[arg-type]
    run = _Run(cfg, writer, run_id, budget, progress, total)
    log.info("run %s: %s requests to %s model=%s concurrency=%d stream=%s think_prefix=%s", run_id,
             "?" if total is None else total, run.base_url, cfg.model, cfg.concurrency, cfg.stream, cfg.think_prefix)  # fmt: skip
    try:
        return await run.run(requests)
    finally:
        await asyncio.to_thread(writer.flush)


def _run_on_uvloop(coro):
    """`asyncio.run` on uvloop (a C event loop and transports) where it is installed."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop is not None else None) as runner:
        return runner.run(coro)


def run_requests_sync(
    requests: Iterable[LLMRequest],
    cfg: EndpointConfig,
    writer: JournalWriter,
    *,
    run_id: str,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    budget: Budget | None = None,
) -> RunSummary:
    """Blocking wrapper around `run_requests` on a uvloop event loop (a helper thread if a loop is running)."""
    coro_args = dict(run_id=run_id, progress=progress, budget=budget)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_uvloop(run_requests(requests, cfg, writer, **coro_args))  # type: ignore[arg-type]
    result: list[RunSummary] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(_run_on_uvloop(run_requests(requests, cfg, writer, **coro_args)))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="llm-run")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
