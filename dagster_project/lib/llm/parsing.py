"""Normalize R1 / judge responses from every backend format into one record.

Supported shapes (non-streaming `message` or streaming `delta`):
  * `reasoning_content` beside `content` (DeepSeek API, SGLang, older vLLM);
  * `reasoning` beside `content` (newer vLLM);
  * inline `<think>...</think>` inside `content` (no reasoning parser, or /v1/completions `text`),
    with or without the opening tag (a forced `<think>\\n` prefix is never echoed).

Normalization (identical for all shapes): the think tags are removed from both fields and
each field is stripped of surrounding whitespace. `sft_output` then rebuilds the canonical
assistant turn ``"<think>\\n" + reasoning + "\\n</think>\\n\\n" + content``, which always
starts with ``<think>\\n`` and contains exactly one ``</think>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

OK = "ok"
TRUNCATED = "truncated"
EMPTY_REASONING = "empty_reasoning"
CONTENT_FILTER = "content_filter"
ERROR = "error"
RETRYABLE_ERROR = "retryable_error"
REPETITION = "repetition"  # the stream was cut: the generation repeated itself (see repetition.py)
STATUSES = (OK, TRUNCATED, EMPTY_REASONING, CONTENT_FILTER, ERROR, RETRYABLE_ERROR, REPETITION)
RETRYABLE_FINISH_REASONS = frozenset({"insufficient_system_resource"})


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def from_dict(cls, usage: dict[str, Any] | None) -> "Usage":
        if not usage:
            return cls()
        details = usage.get("completion_tokens_details") or {}
        return cls(usage.get("prompt_tokens"), usage.get("completion_tokens"), details.get("reasoning_tokens"))


@dataclass(frozen=True)
class ParsedResponse:
    """One response, normalized. `status` is one of STATUSES."""

    status: str
    reasoning: str
    content: str
    finish_reason: str | None
    usage: Usage
    error_type: str | None = None
    error_message: str | None = None
    system_fingerprint: str | None = None


def clean_text(text: str | None) -> str:
    """Remove stray think tags and surrounding whitespace."""
    if not text:
        return ""
    if THINK_OPEN in text or THINK_CLOSE in text:
        text = text.replace(THINK_OPEN, "").replace(THINK_CLOSE, "")
    return text.strip()


def sft_output(reasoning: str, content: str) -> str:
    """Canonical SFT assistant turn: ``<think>\\n{reasoning}\\n</think>\\n\\n{content}``."""
    return f"{THINK_OPEN}\n{clean_text(reasoning)}\n{THINK_CLOSE}\n\n{clean_text(content)}"


def split_message(content: str | None, reasoning_field: str | None) -> tuple[str | None, str | None, bool]:
    """Return (raw_reasoning, raw_content, closed) from the separate-field or inline shape.

    `closed` is False when the reasoning was never terminated: inline text without
    `</think>`, or a separate reasoning field with no content after it.
    """
    if reasoning_field is not None and (reasoning_field.strip() or THINK_CLOSE not in (content or "")):
        closed = bool(content and content.strip())
        return reasoning_field, content, closed
    text = content or ""
    if THINK_CLOSE in text:
        reasoning, _, answer = text.partition(THINK_CLOSE)
        return reasoning, answer, True
    return text, None, False


def _classify(kind: str, finish_reason: str | None, reasoning: str, content: str, closed: bool) -> tuple[str, str | None]:
    if finish_reason in RETRYABLE_FINISH_REASONS:
        return RETRYABLE_ERROR, finish_reason
    if finish_reason == "content_filter":
        return CONTENT_FILTER, None
    if finish_reason == "length":
        return TRUNCATED, None
    if kind == "judge":
        return (OK, None) if content else (ERROR, "empty_content")
    if not closed:
        return TRUNCATED, "unterminated_reasoning"
    if not reasoning:
        return EMPTY_REASONING, None
    return OK, None


def build(
    kind: str,
    content: str | None,
    reasoning_field: str | None,
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    system_fingerprint: str | None = None,
) -> ParsedResponse:
    """Normalize raw fields into a ParsedResponse (shared by streaming and non-streaming)."""
    if kind == "judge" and reasoning_field is None and THINK_CLOSE not in (content or ""):
        raw_reasoning, raw_content, closed = "", content, True
    else:
        raw_reasoning, raw_content, closed = split_message(content, reasoning_field)
    reasoning, answer = clean_text(raw_reasoning), clean_text(raw_content)
    status, error_type = _classify(kind, finish_reason, reasoning, answer, closed)
    return ParsedResponse(
        status=status,
        reasoning=reasoning,
        content=answer,
        finish_reason=finish_reason,
        usage=Usage.from_dict(usage),
        error_type=error_type if status in (ERROR, RETRYABLE_ERROR, TRUNCATED) else None,
        system_fingerprint=system_fingerprint,
    )


def _reasoning_of(obj: dict[str, Any]) -> str | None:
    """The separate reasoning field: its text, "" if the key is present but null, None if absent."""
    value = obj.get("reasoning_content")
    if value is None:
        value = obj.get("reasoning")
    if value is None and ("reasoning_content" in obj or "reasoning" in obj):
        return ""
    return value


class MalformedResponse(ValueError):
    """The body is not a usable completion (retryable)."""


def parse_response(body: dict[str, Any], kind: str = "r1") -> ParsedResponse:
    """Parse a non-streaming /chat/completions or /completions JSON body."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices:
        raise MalformedResponse("response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if message is None:  # /v1/completions
        content, reasoning_field = choice.get("text"), None
    else:
        content, reasoning_field = message.get("content"), _reasoning_of(message)
    return build(kind, content, reasoning_field, choice.get("finish_reason"), body.get("usage"), body.get("system_fingerprint"))


class StreamAccumulator:
    """Collect streaming chunks (parsed JSON dicts) cheaply; `result()` parses once at the end."""

    __slots__ = ("kind", "content", "reasoning", "saw_reasoning", "finish_reason", "usage", "fingerprint", "chunks", "error")

    def __init__(self, kind: str = "r1") -> None:
        self.kind = kind
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.saw_reasoning = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.fingerprint: str | None = None
        self.chunks = 0
        self.error: Any = None

    def add(self, chunk: dict[str, Any]) -> bool:
        """Add one chunk; return True if it carried generated text. Only choice 0 is read (n=1)."""
        self.chunks += 1
        choices = chunk.get("choices")
        if not choices:
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            elif "error" in chunk:
                self.error = chunk["error"]
            return False
        if self.fingerprint is None:
            self.fingerprint = chunk.get("system_fingerprint")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if delta is None:  # /v1/completions
            text = choice.get("text")
            if text:
                self.content.append(text)
                return True
            return False
        got_text = False
        text = delta.get("content")
        if text:
            self.content.append(text)
            got_text = True
        if "reasoning_content" in delta or "reasoning" in delta:
            self.saw_reasoning = True
            r = delta.get("reasoning_content") or delta.get("reasoning")
            if r:
                self.reasoning.append(r)
                got_text = True
        return got_text

    def result(self) -> ParsedResponse:
        reasoning = "".join(self.reasoning) if self.saw_reasoning else None
        content = "".join(self.content) if self.content else None
        return build(self.kind, content, reasoning, self.finish_reason, self.usage, self.fingerprint)
