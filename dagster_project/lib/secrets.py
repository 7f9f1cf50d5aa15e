"""Regexes for secret-looking strings, for an export check.

The patterns need ASCII key shapes with fixed prefixes, or a long hex/base64 run right after a
word such as key/token/secret (or 密钥/令牌), so Chinese prose and LaTeX math do not trigger them
(LaTeX runs are broken up by backslashes, braces and spaces).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

import pyarrow as pa

_KEY_WORD = r"(?:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d|auth|密钥|秘钥|令牌)"

_PATTERNS = {
    "openai_key": r"(?<![A-Za-z0-9_-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
    "bearer_token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}=*",
    "api_key_assignment": r"(?i)\b(?:api[_-]?key|apikey|secret[_-]?key|access[_-]?token|auth[_-]?token)"
    r"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._~+/-]{12,}",
    "aws_access_key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "huggingface_token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
    "slack_token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "private_key_block": r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----",
    "blob_near_key_word": rf"(?i){_KEY_WORD}[^\n]{{0,24}}?(?<![A-Za-z0-9+/])"
    r"(?:[0-9a-f]{32,}|(?=[A-Za-z0-9+/]*[0-9])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])[A-Za-z0-9+/]{40,}={0,2})"
    r"(?![A-Za-z0-9+/])",
}


# Every pattern above needs a run of 12+ characters of this class (or a PEM header), so text
# without one - most Chinese prose and math - is cleared in one pass instead of ten.
_CANDIDATE = re.compile(r"[A-Za-z0-9_.~+/-]{12,}|-----BEGIN")


@lru_cache(maxsize=1)
def secret_patterns() -> dict[str, re.Pattern[str]]:
    """Compiled patterns by name."""
    return {name: re.compile(pattern) for name, pattern in _PATTERNS.items()}


def find_secrets(text: str) -> list[str]:
    """Secret-looking substrings of ``text``, in order of appearance (redact before logging)."""
    if not _CANDIDATE.search(text):
        return []
    spans: list[tuple[int, int]] = []
    for pattern in secret_patterns().values():
        spans.extend(match.span() for match in pattern.finditer(text))
    found, last_end = [], -1
    for start, end in sorted(spans):
        if start >= last_end:  # overlapping matches of several patterns count once
            found.append(text[start:end])
            last_end = end
    return found


def redact(secret: str) -> str:
    """Keep the first 4 characters only: ``sk-a…[redacted 40 chars]``."""
    return f"{secret[:4]}…[redacted {len(secret)} chars]"


def scan_table(table: pa.Table, columns: Iterable[str] | None = None, *, limit: int = 100) -> list[dict]:
    """Secret hits in the string columns of ``table``: ``{row, column, kind, redacted}``."""
    names = list(columns) if columns is not None else [
        field.name for field in table.schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    ]
    hits: list[dict] = []
    for name in names:
        for row, value in enumerate(table.column(name).to_pylist()):
            if not value:
                continue
            for kind, pattern in secret_patterns().items():
                for match in pattern.finditer(value):
                    hits.append({"row": row, "column": name, "kind": kind, "redacted": redact(match.group())})
                    if len(hits) >= limit:
                        return hits
    return hits
