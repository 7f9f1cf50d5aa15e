"""A local, clearly labelled OpenAI-compatible server that imitates DeepSeek-R1 and a judge model.

Every response carries ``system_fingerprint: "distill-simulator"`` and the header
``X-Distill-Simulated: 1``. Models whose name starts with "qwen" answer as a judge;
anything else answers as R1. Output, latency and injected faults are deterministic:
text from (seed, prompt hash, sample index), faults from (seed, prompt hash, sample, attempt).
The client may send ``X-Distill-Sample`` / ``X-Distill-Attempt`` headers; without them the
sample is 0 and the attempt is counted per prompt by the server.

Run: ``python -m dagster_project.simulator.server --host 127.0.0.1 --port 0 [--config f] [--answer-key f]``
(the first stdout line is the base URL, e.g. ``http://127.0.0.1:40123/v1``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from dagster_project.lib.llm.types import SIMULATOR_FINGERPRINT
from dagster_project.simulator import text as text
from dagster_project.simulator.settings import SimulatorSettings

log = logging.getLogger("dagster_project.simulator.server")

FINGERPRINT = SIMULATOR_FINGERPRINT
SIM_HEADERS = {"X-Distill-Simulated": "1"}
CHARS_PER_TOKEN = 1.9
THINK_CLOSE_SEP = "\n</think>\n\n"
LOOP_DEFAULT_MAX_TOKENS = 32768  # a looping reply without max_tokens runs this long


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def prompt_sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class _Stats:
    total_requests: int = 0
    responses_200: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    held: int = 0
    requests_per_prompt: Counter = field(default_factory=Counter)
    ok_per_prompt: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    completion_tokens_sent: int = 0  # tokens of the text actually written out (what a provider would bill)
    sdk_requests: int = 0  # generation requests sent by the openai SDK (its X-Stainless-Lang header)
    client_aborts: int = 0  # streams the client closed before the end

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_requests": self.total_requests,
            "responses_200": self.responses_200,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "held": self.held,
            "requests_per_prompt": dict(self.requests_per_prompt),
            "ok_per_prompt": dict(self.ok_per_prompt),
            "faults": dict(self.faults),
            "completion_tokens_sent": self.completion_tokens_sent,
            "client_aborts": self.client_aborts,
            "sdk_requests": self.sdk_requests,
        }


@dataclass
class _Reply:
    """What to send for one request (before rendering to a wire format)."""

    raw: str  # inline form: reasoning + "\n</think>\n\n" + answer (possibly cut)
    finish_reason: str
    prompt_tokens: int
    judge: bool


class Simulator:
    """The aiohttp application and its state."""

    def __init__(self, settings: SimulatorSettings | None = None, answer_key: dict[str, str] | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self.answer_key = {text.question_of(k): str(v) for k, v in (answer_key or {}).items()}
        self.stats = _Stats()
        self._unpaused = asyncio.Event()
        self._rpm_tokens: float | None = None  # the rpm_limit bucket (full at the first request)
        self._rpm_updated = 0.0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(
            [
                web.get("/v1/models", self.models),
                web.post("/v1/chat/completions", self.chat_completions),
                web.post("/v1/completions", self.completions),
                web.get("/sim/stats", self.get_stats),
                web.post("/sim/config", self.set_config),
                web.post("/sim/reset", self.reset),
            ]
        )

    # ---- control routes -------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        if not self.settings.serve_models:
            return self._error(404, "not found", "invalid_request_error")
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "owned_by": FINGERPRINT} for m in ("deepseek-r1", "qwen2.5-72b-instruct")]
        return web.json_response({"object": "list", "data": data}, headers=SIM_HEADERS)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_dict(), headers=SIM_HEADERS)

    async def set_config(self, request: web.Request) -> web.Response:
        changes = await request.json()
        answer_key = changes.pop("answer_key", None)
        try:
            self.settings = self.settings.updated(**changes)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400, headers=SIM_HEADERS)
        if answer_key is not None:
            self.answer_key = {text.question_of(k): str(v) for k, v in answer_key.items()}
        if not self.settings.pause_after:
            self._unpaused.set()
        return web.json_response(self.settings.to_dict(), headers=SIM_HEADERS)

    async def reset(self, request: web.Request) -> web.Response:
        self.stats = _Stats()
        return web.json_response({"reset": True}, headers=SIM_HEADERS)

    # ---- generation routes ----------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=False)

    def _error(self, status: int, message: str, err_type: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": err_type, "code": status}}
        return web.json_response(body, status=status, headers={**SIM_HEADERS, **(headers or {})})

    def _check_auth(self, request: web.Request) -> web.Response | None:
        expected = self.settings.api_key
        if not expected:
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if given != expected:
            return self._error(401, f"Incorrect API key provided: {given}", "authentication_error")
        return None

    async def _handle(self, request: web.Request, chat: bool) -> web.StreamResponse:
        s = self.settings
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, "request body is not valid JSON", "invalid_request_error")
        model = body.get("model")
        prompt = _user_prompt(body, chat)
        if not model or prompt is None:
            return self._error(400, "model and a user message are required", "invalid_request_error")
        sha = prompt_sha(prompt)
        sample = _int_header(request, "X-Distill-Sample", 0)
        st = self.stats
        st.total_requests += 1
        st.sdk_requests += "X-Stainless-Lang" in request.headers
        st.requests_per_prompt[sha] += 1
        st.attempts[(sha, sample, model)] += 1
        attempt = _int_header(request, "X-Distill-Attempt", st.attempts[(sha, sample, model)])
        st.in_flight += 1
        st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            if s.max_concurrency and st.in_flight > s.max_concurrency:
                st.faults["capacity_429"] += 1
                return self._error(429, "concurrency limit reached", "rate_limit_error", {"Retry-After": _fmt(s.retry_after_s)})
            limited, rate_headers = self._take_rpm()
            if limited is not None:
                st.faults["rpm_429"] += 1
                return self._error(429, "request rate limit reached", "rate_limit_error",
                                   {"Retry-After": _fmt(math.ceil(limited)), "retry-after-ms": str(math.ceil(limited * 1000)),
                                    **rate_headers})  # fmt: skip
            fault = self._fault(sha, sample, attempt)
            if fault:
                st.faults[fault] += 1
            if fault in ("429", "500", "503", "400"):
                return self._fault_response(fault)
            if s.pause_after and st.responses_200 >= s.pause_after:
                st.held += 1
                try:
                    resumed = await self._wait_unpaused(request)
                finally:
                    st.held -= 1
                if not resumed:
                    st.faults["abandoned"] += 1
                    return web.Response(status=499)
            reply = self._reply(body, model, prompt, sha, sample, fault)
            if body.get("stream"):
                sent = await self._stream(request, body, reply, chat, model, fault, rate_headers)
            else:
                sent = await self._respond(request, reply, chat, model, fault, rate_headers)
            if sent is not None and sent.status == 200 and fault not in ("drop", "malformed", "stall"):
                st.responses_200 += 1
                st.ok_per_prompt[sha] += 1
            return sent if sent is not None else web.Response(status=499)
        finally:
            st.in_flight -= 1

    def _take_rpm(self) -> tuple[float | None, dict[str, str]]:
        """Take one request from the rpm bucket: (None, headers) if allowed, else (seconds to wait, headers)."""
        s = self.settings
        if not s.rpm_limit:
            return None, {}
        rate = s.rpm_limit / 60.0
        capacity = max(1.0, rate * s.rpm_burst_s)
        now = time.monotonic()
        if self._rpm_tokens is None:
            self._rpm_tokens = capacity
        self._rpm_tokens = min(capacity, self._rpm_tokens + (now - self._rpm_updated) * rate)
        self._rpm_updated = now
        wait = None
        if self._rpm_tokens >= 1.0:
            self._rpm_tokens -= 1.0
        else:
            wait = (1.0 - self._rpm_tokens) / rate
        headers = {}
        if s.rate_limit_headers:
            headers = {"x-ratelimit-limit-requests": str(s.rpm_limit),
                       "x-ratelimit-remaining-requests": str(int(self._rpm_tokens)),
                       "x-ratelimit-reset-requests": f"{(capacity - self._rpm_tokens) / rate:.3f}s"}  # fmt: skip
        return wait, headers

    def _fault(self, sha: str, sample: int, attempt: int) -> str | None:
        s = self.settings
        if s.fault_max_attempt and attempt > s.fault_max_attempt:
            return None
        u = _rng(s.seed, sha, sample, attempt, "fault").random()
        acc = 0.0
        for kind, p in s.fault_table():
            acc += p
            if u < acc:
                return kind
        return None

    def _fault_response(self, fault: str) -> web.Response:
        if fault == "429":
            headers = {"Retry-After": _fmt(self.settings.retry_after_s)}
            return self._error(429, "请求速率或并发达到上限 (rate limit reached)", "rate_limit_error", headers)
        if fault == "400":
            return self._error(400, "invalid request (simulated)", "invalid_request_error")
        return self._error(int(fault), f"server error {fault} (simulated)", "server_error")

    async def _wait_unpaused(self, request: web.Request) -> bool:
        """Hold the request while paused; False if the client went away meanwhile."""
        self._unpaused.clear()
        while self.settings.pause_after and self.stats.responses_200 >= self.settings.pause_after:
            if request.transport is None or request.transport.is_closing():
                return False
            try:
                await asyncio.wait_for(self._unpaused.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
        return not (request.transport is None or request.transport.is_closing())

    def _reply(self, body: dict[str, Any], model: str, prompt: str, sha: str, sample: int, fault: str | None) -> _Reply:
        s = self.settings
        rng = _rng(s.seed, sha, sample, "text")
        prompt_tokens = _tokens(len(prompt)) + 5
        if model.lower().startswith("qwen"):
            if text.REFERENCE_MARKER in prompt:
                answer = text.correctness_judge(rng, prompt, s.judge_noise, s.p_judge_messy)
            else:
                answer = text.quality_judge(rng, s.p_judge_messy)
            return _Reply(answer, "stop", prompt_tokens, judge=True)
        reasoning = text.think_block(rng, rng.randint(*s.reasoning_chars))
        gold = self.answer_key.get(text.question_of(prompt))
        answer = text.r1_answer(rng, gold, rng.randint(*s.answer_chars), s.p_correct, s.p_no_box)
        raw, finish = reasoning + THINK_CLOSE_SEP + answer, "stop"
        if fault == "empty_reasoning":
            raw = THINK_CLOSE_SEP.lstrip("\n") + answer
        elif fault == "missing_think_close":
            raw = reasoning + "\n\n" + answer
        elif fault in ("length", "content_filter", "insufficient_system_resource"):
            raw = raw[: max(1, len(reasoning) // 2)]
            finish = fault if fault != "length" else "length"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if fault == "loop":  # never closes the reasoning: one paragraph repeats until the token budget is spent
            budget = int(int(max_tokens or LOOP_DEFAULT_MAX_TOKENS) * CHARS_PER_TOKEN) + 1
            raw = text.looping_block(rng, reasoning[: len(reasoning) // 2], rng.randint(*s.loop_unit_chars), budget)
        if max_tokens and _tokens(len(raw)) > int(max_tokens):
            raw, finish = raw[: int(int(max_tokens) * CHARS_PER_TOKEN)], "length"
        return _Reply(raw, finish, prompt_tokens, judge=False)

    def _message(self, reply: _Reply) -> tuple[str | None, str | None]:
        """(reasoning, content) in the configured reasoning format (reasoning None = inline)."""
        if reply.judge or self.settings.reasoning_format == "inline":
            return None, reply.raw
        reasoning, sep, answer = reply.raw.partition("</think>")
        if not sep:
            return reasoning, None
        return reasoning.rstrip("\n"), answer.lstrip("\n") or None

    def _usage(self, reply: _Reply) -> dict[str, Any]:
        completion = _tokens(len(reply.raw))
        reasoning_chars = 0 if reply.judge else len(reply.raw.partition("</think>")[0])
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": reply.prompt_tokens + completion,
            "completion_tokens_details": {"reasoning_tokens": _tokens(reasoning_chars)},
        }

    def _delays(self, reply: _Reply) -> tuple[float, float]:
        s = self.settings
        ttft = s.ttft_s * s.latency_scale
        if s.request_s > 0:
            return min(ttft, s.request_s * s.latency_scale), max(0.0, s.request_s - s.ttft_s) * s.latency_scale
        gen = 0.0 if s.tokens_per_s <= 0 else _tokens(len(reply.raw)) / s.tokens_per_s * s.latency_scale
        return ttft, gen

    async def _respond(
        self, request: web.Request, reply: _Reply, chat: bool, model: str, fault: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse | None:
        ttft, gen = self._delays(reply)
        if ttft + gen > 0:
            await asyncio.sleep(ttft + gen)
        if fault == "stall":
            await _sleep_unless_gone(request, self.settings.stall_s)
        if fault == "drop":
            _abort(request)
            return None
        reasoning, content = self._message(reply)
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if reasoning is not None:
                message[_reasoning_key(self.settings.reasoning_format)] = reasoning
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
        else:
            choice = {"index": 0, "text": reply.raw, "finish_reason": reply.finish_reason}
        payload = {
            "id": f"sim-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": [choice],
            "usage": self._usage(reply),
        }
        data = json.dumps(payload, ensure_ascii=False)
        if fault == "malformed":
            data = data[: len(data) // 2]
        self.stats.completion_tokens_sent += _tokens(len(reply.raw))
        return web.Response(text=data, content_type="application/json", headers={**SIM_HEADERS, **(extra_headers or {})})

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: _Reply, chat: bool, model: str, fault: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse | None:
        s = self.settings
        ttft, gen = self._delays(reply)
        if ttft > 0:
            await asyncio.sleep(ttft)
        resp = web.StreamResponse(headers={**SIM_HEADERS, "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           **(extra_headers or {})})  # fmt: skip
        await resp.prepare(request)
        base = {"id": f"sim-{uuid.uuid4().hex[:16]}", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": model, "system_fingerprint": FINGERPRINT}  # fmt: skip
        lines = _stream_lines(base, self._message(reply), reply.raw, chat, s.reasoning_format, max(1, s.chunk_tokens))
        finish = dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}] if chat
                      else [{"index": 0, "text": "", "finish_reason": reply.finish_reason}])  # fmt: skip
        events = [finish]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(dict(base, choices=[], usage=self._usage(reply)))
        lines += [b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events]
        lines.append(b"data: [DONE]\n\n")
        if fault == "malformed":
            lines.insert(len(lines) // 2, b'data: {"id": "broken", "choices": [\n\n')
        tokens_per_line = _tokens(len(reply.raw)) / max(1, len(lines) - len(events) - 1)
        try:
            cut = len(lines) // 2 if fault in ("drop", "stall") else len(lines)
            per_chunk = gen / max(1, len(lines) - 1)
            # lines go out in batches at least 5 ms apart (one write when there is no generation delay)
            batch = len(lines) if per_chunk <= 0 else max(1, math.ceil(0.005 / per_chunk))
            for i in range(0, cut, batch):
                part = lines[i : min(cut, i + batch)]
                if i and per_chunk > 0:
                    await asyncio.sleep(per_chunk * len(part))
                await resp.write(b"".join(part))
                self.stats.completion_tokens_sent += round(tokens_per_line * len(part))
            if fault == "drop":
                _abort(request)
                return None
            if fault == "stall":
                await _sleep_unless_gone(request, s.stall_s)
                if request.transport is None or request.transport.is_closing():
                    return None
                await resp.write(b"".join(lines[cut:]))
        except (ConnectionError, RuntimeError):
            if fault not in ("drop", "stall"):
                self.stats.client_aborts += 1
            return None
        try:
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # every event, [DONE] included, was written: the client may close as soon as it reads [DONE]
        return resp


def _reasoning_key(fmt: str) -> str:
    return "reasoning" if fmt == "reasoning" else "reasoning_content"


def _stream_lines(
    base: dict[str, Any], message: tuple[str | None, str | None], raw: str, chat: bool, fmt: str, chunk_tokens: int
) -> list[bytes]:
    """SSE `data:` lines for the generated text; the constant envelope is serialized once."""
    step = max(1, int(chunk_tokens * CHARS_PER_TOKEN))
    head = ("data: " + json.dumps(base, ensure_ascii=False)[:-1] + ', "choices": [{"index": 0, ').encode()
    tail = b', "finish_reason": null}]}\n\n'

    def line(inner: dict[str, Any]) -> bytes:
        return head + json.dumps(inner, ensure_ascii=False)[1:-1].encode() + tail

    if not chat:
        return [line({"text": raw[i : i + step]}) for i in range(0, len(raw), step)]
    reasoning, content = message
    key = _reasoning_key(fmt)
    lines = [line({"delta": {"role": "assistant", "content": ""}})]
    for i in range(0, len(reasoning or ""), step):
        lines.append(line({"delta": {key: reasoning[i : i + step], "content": None}}))  # type: ignore[index]
    for i in range(0, len(content or ""), step):
        delta: dict[str, Any] = {"content": content[i : i + step]}  # type: ignore[index]
        if reasoning is not None:
            delta[key] = None  # as DeepSeek does: the field is present (null) in answer deltas
        lines.append(line({"delta": delta}))
    return lines


def _user_prompt(body: dict[str, Any], chat: bool) -> str | None:
    if not chat:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return None
        inner = prompt.split("<｜User｜>")[-1]
        return inner.split("<｜Assistant｜>")[0]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return None


def _int_header(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.headers.get(name, default))
    except ValueError:
        return default


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort() if hasattr(request.transport, "abort") else request.transport.close()


async def _sleep_unless_gone(request: web.Request, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(min(0.05, deadline - time.monotonic()))


# ---- running it ---------------------------------------------------------------------
async def start_site(sim: Simulator, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(sim.app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}/v1"


class SimulatorThread:
    """The simulator on its own event loop in a background thread (for in-process use)."""

    def __init__(self, settings: SimulatorSettings | None = None, answer_key: dict[str, str] | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:  # fmt: skip
        self.settings, self.answer_key, self.host, self.port = settings, answer_key, host, port
        self.base_url: str | None = None
        self.simulator: Simulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self.simulator = Simulator(self.settings, self.answer_key)
                self._runner, self.base_url = loop.run_until_complete(start_site(self.simulator, self.host, self.port))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        assert self.base_url is not None
        return self.base_url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def stats(self) -> dict[str, Any]:
        assert self.simulator is not None
        return self.simulator.stats.to_dict()

    def __enter__(self) -> "SimulatorThread":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimulatorProcess:
    """Handle on a simulator child process; always reaped by `close()` (also at exit)."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, tmpdir: tempfile.TemporaryDirectory[str]) -> None:
        self.proc, self.base_url, self._tmpdir = proc, base_url, tmpdir
        self.root_url = base_url.removesuffix("/v1")
        atexit.register(self.close)

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.root_url + path, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/sim/stats")

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("/sim/config", changes)

    def reset(self) -> dict[str, Any]:
        return self._call("/sim/reset", {})

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self._tmpdir.cleanup()
        atexit.unregister(self.close)

    def __enter__(self) -> "SimulatorProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_simulator_process(
    settings: SimulatorSettings | None = None, answer_key: dict[str, str] | None = None, *, host: str = "127.0.0.1"
) -> SimulatorProcess:
    """Start the simulator as a child process on a free loopback port.

    The child exits when its stdin closes, so it cannot outlive this process.
    """
    tmpdir = tempfile.TemporaryDirectory(prefix="distill-sim-")
    cfg_path = os.path.join(tmpdir.name, "settings.json")
    key_path = os.path.join(tmpdir.name, "answer_key.json")
    with open(cfg_path, "w", encoding="utf-8") as fh:
        json.dump((settings or SimulatorSettings()).to_dict(), fh)
    with open(key_path, "w", encoding="utf-8") as fh:
        json.dump(answer_key or {}, fh, ensure_ascii=False)
    cmd = [sys.executable, "-m", "dagster_project.simulator.server", "--host", host, "--port", "0",
           "--config", cfg_path, "--answer-key", key_path, "--exit-on-stdin-eof"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("http"):
        proc.kill()
        proc.wait()
        tmpdir.cleanup()
        raise RuntimeError(f"simulator failed to start (exit code {proc.poll()})")
    return SimulatorProcess(proc, line, tmpdir)


def load_settings(path: str | None) -> SimulatorSettings:
    if not path:
        return SimulatorSettings()
    with open(path, encoding="utf-8") as fh:
        return SimulatorSettings().updated(**json.load(fh))


async def _serve(args: argparse.Namespace) -> None:
    answer_key = None
    if args.answer_key:
        with open(args.answer_key, encoding="utf-8") as fh:
            answer_key = json.load(fh)
    sim = Simulator(load_settings(args.config), answer_key)
    runner, url = await start_site(sim, args.host, args.port)
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:  # the parent holds our stdin open; EOF means it is gone
        def watch_stdin() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Simulated OpenAI-compatible R1 / judge server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8808)
    parser.add_argument("--config", help="JSON file with SimulatorSettings fields")
    parser.add_argument("--answer-key", help="JSON file mapping question text to gold answer")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args))
    os._exit(0)  # do not wait for the stdin reader thread


if __name__ == "__main__":
    main()
