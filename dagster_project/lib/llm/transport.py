"""One attempt against one endpoint, through the official openai SDK.

`AsyncOpenAI` with `max_retries=0` (the engine owns retries, so the journal sees every attempt) on
the SDK's aiohttp transport (`DefaultAioHttpClient`), posting through the client's own
`post(path, body=..., cast_to=httpx2.Response)` and reading the raw response, decoded with orjson.
Measured per streamed request (2 s, paced chunks, 300 in flight): the typed
`chat.completions.with_streaming_response.create` costs 3.0 ms of CPU, `post` 2.4 ms (the typed
call's parameter transform is the difference), the SDK's default httpx2 transport about twice as
much, and building a pydantic object per streamed chunk several times more.
SDK errors map to the journal's statuses here, and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp
import httpx2
import openai
import orjson

from dagster_project.lib.llm import parsing as P
from dagster_project.lib.llm.limits import parse_retry_after, request_pause
from dagster_project.lib.llm.repetition import Loop, RepetitionWatch, find_loop
from dagster_project.lib.llm.types import SIMULATOR_FINGERPRINT, EndpointConfig, LLMRequest, Target

log = logging.getLogger("dagster_project.lib.llm.transport")

THINK_PREFIX = "<think>\n"
PREFILL_FLAGS = {"add_generation_prompt": False, "continue_final_message": True}
NON_RETRYABLE_STATUSES = frozenset({400, 401, 402, 403, 404, 422})
DECODE_BYTES = 8192  # streamed payloads are decoded in batches of about this size (one orjson call each)
_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key=[^&\s]+)", re.IGNORECASE)
_MAX_ERROR_CHARS = 500


@dataclass
class Outcome:
    """Result of one attempt."""

    status: str
    retryable: bool = False
    parsed: P.ParsedResponse | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    pause: float | None = None  # the provider's rate-limit headers say: send nothing for this long
    ttft: float | None = None
    simulated: bool = False
    loop: Loop | None = None
    counts: tuple[int, int, int] | None = None  # offline (prompt, reasoning, content) token counts, when counted


def scrub(message: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that looks like a credential and cap the length."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return _KEY_PATTERN.sub("***", message)[:_MAX_ERROR_CHARS]


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


def _root_cause(exc: BaseException) -> BaseException:
    seen = 0
    while (exc.__cause__ or exc.__context__) is not None and seen < 10:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return exc


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError, httpx2.ReadTimeout, httpx2.WriteTimeout))


class Transport:
    """An `AsyncOpenAI` client for one endpoint; `send` makes one attempt."""

    def __init__(self, cfg: EndpointConfig, target: Target) -> None:
        self.cfg, self.target = cfg, target
        self.key = target.api_key()
        self.safe_url = target.safe_url
        self.completions = cfg.think_prefix == "completions"
        self.path = "/completions" if self.completions else "/chat/completions"
        timeout = httpx2.Timeout(cfg.request_timeout_seconds, connect=cfg.connect_timeout_seconds)
        pool = target.concurrency + 16
        http = openai.DefaultAioHttpClient(
            timeout=timeout, limits=httpx2.Limits(max_connections=pool, max_keepalive_connections=pool))
        self.client = openai.AsyncOpenAI(base_url=target.base_url, api_key=self.key, max_retries=0, timeout=timeout,
                                         http_client=http, default_headers={"User-Agent": "r1-distill"})  # fmt: skip

    async def aclose(self) -> None:
        await self.client.close()

    # ---- request building -----------------------------------------------------------
    def body(self, req: LLMRequest) -> dict[str, Any]:
        """The JSON body in the OpenAI wire format (extra_body keys at the top level)."""
        cfg = self.cfg
        extra_body = cfg.extra_body_dict()
        body: dict[str, Any] = {"model": cfg.model, "temperature": cfg.temperature, "top_p": cfg.top_p,
                                "max_tokens": cfg.max_tokens, "stream": cfg.stream}  # fmt: skip
        if cfg.stream:
            body["stream_options"] = {"include_usage": True}
        messages = req.messages_list()
        if self.completions:
            body["prompt"] = raw_r1_prompt(messages)
        else:
            if cfg.think_prefix == "prefill":
                messages.append({"role": "assistant", "content": THINK_PREFIX})
                extra_body = {**extra_body, **PREFILL_FLAGS}
            body["messages"] = messages
            if req.response_format is not None:
                body["response_format"] = req.response_format_dict()
        body.update(extra_body)
        return body

    # ---- one attempt ----------------------------------------------------------------
    async def send(self, req: LLMRequest, attempt: int, accepted: Callable[[], None]) -> Outcome:
        """One attempt; `accepted()` is called as soon as the endpoint answers with a 2xx status."""
        cfg = self.cfg
        headers = {"X-Distill-Sample": str(req.sample_index), "X-Distill-Attempt": str(attempt)}
        t0 = time.perf_counter()
        started = False
        try:
            async with asyncio.timeout(cfg.request_timeout_seconds):
                resp = await self.client.post(self.path, body=self.body(req), cast_to=httpx2.Response,
                                              stream=cfg.stream, options={"headers": headers})  # fmt: skip
                started = True
                accepted()
                if not cfg.stream:  # the body is read in full
                    parsed = P.parse_response(orjson.loads(resp.content), cfg.kind)
                    return self._finish(parsed, resp.headers, None, self._loop_in(parsed))
                try:
                    return await self._read_stream(resp, t0)
                finally:
                    await resp.aclose()  # before the end of the stream this closes the connection
        except openai.APIStatusError as exc:
            return self._status_error(exc)
        except TimeoutError:  # the total per-attempt deadline
            return Outcome(P.RETRYABLE_ERROR, True, error_type="timeout",
                           error_message=f"no complete response within {cfg.request_timeout_seconds:g}s")  # fmt: skip
        except (openai.APIConnectionError, httpx2.TransportError, aiohttp.ClientError, OSError) as exc:
            root = _root_cause(exc)
            kind = "timeout" if _is_timeout(root) else "stream_interrupted" if started else "connection_error"
            return Outcome(P.RETRYABLE_ERROR, True, error_type=kind,
                           error_message=scrub(f"{type(root).__name__}: {root}", (self.key,)))  # fmt: skip
        except (json.JSONDecodeError, UnicodeDecodeError, P.MalformedResponse) as exc:  # orjson's error is a JSONDecodeError
            return Outcome(P.RETRYABLE_ERROR, True, error_type="malformed_response",
                           error_message=scrub(f"{type(exc).__name__}: {exc}", (self.key,)))  # fmt: skip
        except openai.OpenAIError as exc:
            return Outcome(P.ERROR, False, error_type=f"client_error:{type(exc).__name__}",
                           error_message=scrub(str(exc), (self.key,)))  # fmt: skip

    def _status_error(self, exc: openai.APIStatusError) -> Outcome:
        """An HTTP error answer: retryable or not by status, with the server's message."""
        code = exc.status_code
        detail = exc.body
        message = detail.get("message", detail) if isinstance(detail, dict) else detail
        if message is None:
            message = exc.response.reason_phrase or ""
        retryable = code not in NON_RETRYABLE_STATUSES and (code in (408, 409, 429) or code >= 500)
        headers = exc.response.headers
        return Outcome(
            P.RETRYABLE_ERROR if retryable else P.ERROR,
            retryable=retryable,
            http_status=code,
            error_type=f"http_{code}",
            error_message=scrub(f"Error code: {code} - {message}", (self.key,)),
            retry_after=parse_retry_after(headers),
            pause=request_pause(headers),
            simulated=headers.get("x-distill-simulated") == "1",
        )

    def _watch(self) -> RepetitionWatch | None:
        cfg = self.cfg
        if not cfg.loop_detection:
            return None
        return RepetitionWatch(cfg.loop_window_chars, cfg.loop_min_repeats, cfg.loop_min_chars)

    def _loop_in(self, parsed: P.ParsedResponse) -> Loop | None:
        """A loop at the end of a complete (non-streamed) answer."""
        cfg = self.cfg
        if not cfg.loop_detection:
            return None
        for text in (parsed.content, parsed.reasoning):
            loop = find_loop(text, cfg.loop_window_chars, cfg.loop_min_repeats, cfg.loop_min_chars)
            if loop is not None:
                return loop
        return None

    async def _read_stream(self, resp: Any, t0: float) -> Outcome:
        """Read an SSE body. Network reads are only collected; lines are split and payloads decoded
        in batches of about DECODE_BYTES (one orjson call each), and at once until the first text
        has arrived (to time it)."""
        acc = P.StreamAccumulator(self.cfg.kind)
        watch = self._watch()
        seen = [0, 0]  # reasoning / content pieces already given to the watch
        chunks: list[bytes] = []
        size = 0
        ttft = None
        done = False
        pending = b""
        loop = None

        def process() -> Loop | None:
            nonlocal ttft, size, pending, done
            lines = (pending + b"".join(chunks)).split(b"\n")
            chunks.clear()
            size = 0
            pending = lines.pop()
            # blank separators, ": keep-alive" comments and "event:" lines carry no data
            payloads = [line[5:].strip() for line in lines if line[:5] == b"data:"]
            if b"[DONE]" in payloads:
                done = True
                payloads = payloads[: payloads.index(b"[DONE]")]
            if not payloads:
                return None
            for chunk in orjson.loads(b"[" + b",".join(payloads) + b"]"):
                if acc.add(chunk) and ttft is None:
                    ttft = time.perf_counter() - t0
            if watch is None:
                return None
            for i, parts in enumerate((acc.reasoning, acc.content)):
                for piece in parts[seen[i] :]:
                    if watch.feed(piece) is not None:
                        return watch.loop
                seen[i] = len(parts)
            return None

        async for raw in resp.aiter_raw():
            chunks.append(raw)
            size += len(raw)
            if ttft is None or size >= DECODE_BYTES or b"[DONE]" in raw:
                loop = process()
                if loop is not None or done:
                    break  # leaving the response early closes the connection: the endpoint stops generating
        if not done and loop is None:
            chunks.append(b"\n")  # the last line may lack its newline
            loop = process()
        if acc.error is not None:
            raise P.MalformedResponse(f"error event in stream: {str(acc.error)[:200]}")
        if loop is None and not done and acc.finish_reason is None:
            raise httpx2.ReadError("stream ended without a finish_reason or [DONE]")
        return self._finish(acc.result(), resp.headers, ttft, loop)

    def _finish(self, parsed: P.ParsedResponse, headers: Any, ttft: float | None, loop: Loop | None) -> Outcome:
        simulated = headers.get("x-distill-simulated") == "1" or parsed.system_fingerprint == SIMULATOR_FINGERPRINT
        pause = request_pause(headers)
        if loop is not None:
            return Outcome(P.REPETITION, False, parsed, 200, "repetition",
                           f"the last {loop.span} characters repeat a {loop.period}-character passage "
                           f"{loop.repeats:.0f} times", None, pause, ttft, simulated, loop)  # fmt: skip
        retryable = parsed.status == P.RETRYABLE_ERROR
        return Outcome(parsed.status, retryable, parsed, 200, parsed.error_type,
                       f"finish_reason={parsed.finish_reason}" if retryable else None, None, pause, ttft,
                       simulated)  # fmt: skip
