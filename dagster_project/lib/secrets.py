"""Secret-looking strings: the scan run on every prompt at ingestion and on every exported row.

Text is folded first (`lib.text.fold`: full-width ASCII to ASCII, zero-width and other invisible
characters removed), so `ｓｋ－…` or an `sk-` key split by U+200B is still a key. The patterns need
ASCII key shapes with fixed prefixes (provider, Stripe, GitHub, Slack, Hugging Face, AWS, Google
keys, JWTs), a private-key header, a connection URL with a password, a long hex/base64 run right
after a word such as key/token/secret, or a mixed letters-and-digits value right after a label
such as `password:` / `密码：`; Chinese prose and LaTeX math have none of these.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import lru_cache

import pyarrow as pa

from dagster_project.lib.text import INVISIBLE, fold, holds_any, to_fullwidth

_KEY_WORD = r"(?:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d|auth|密钥|秘钥|令牌)"
# A credential value after a label and `:`/`=`/是/为: 8+ printable ASCII characters without quotes,
# brackets or commas, holding a letter and a digit, not an answer option such as `A.1224` (so
# `密码：请输入`, `password: ********`, `${DB_PASS}` and logic puzzles about passwords are not values).
_VALUE_CHAR = r"[A-Za-z0-9_!#$%&*+\-./:;=?@^|~]"
_VALUE = rf"(?![A-J][.)][0-9])(?={_VALUE_CHAR}*[0-9])(?={_VALUE_CHAR}*[A-Za-z]){_VALUE_CHAR}{{8,}}"
_PLACEHOLDER = r"(?:\*+|x+|\.+|<[^>@\s]*>|\{[^}@\s]*\}|\$\{?\w+\}?|%s|pass(?:word|wd)?|pwd|secret|密码)"

# Matched against folded text. A group named `s` marks the secret inside a wider match.
_PATTERNS = {
    "openai_key": r"(?<![A-Za-z0-9_-])sk-(?:proj-|ant-|or-v1-|svcacct-)?[A-Za-z0-9_-]{20,}",
    "stripe_key": r"(?<![A-Za-z0-9])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{20,})",
    "jwt": r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "bearer_token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}=*",
    "api_key_assignment": r"(?i)\b(?:api[_-]?key|apikey|secret[_-]?key|access[_-]?token|auth[_-]?token)"
    r"[\"']?\s*[:=：]\s*[\"']?[A-Za-z0-9._~+/-]{12,}",
    "password_assignment": rf"(?i)(?:密码|密钥|秘钥|口令|私钥|令牌|passw(?:or)?d|\bpwd)[\"']?\s*(?:是[:：]|为[:：]|是|为|[:=：])\s*"
    rf"[\"'“]?(?P<s>{_VALUE})",
    "connection_url": r"(?i)\b[a-z][a-z0-9+.-]{1,30}://(?:(?![:/@'\"<>])[!-~]){0,64}:"
    rf"(?!{_PLACEHOLDER}@)(?:(?![/@'\"<>])[!-~]){{3,}}@[A-Za-z0-9.-]+(?::[0-9]+)?",
    "aws_access_key": r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Za-z0-9])",
    "huggingface_token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
    "gitlab_token": r"\bglpat-[A-Za-z0-9_-]{20,}",
    "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}\b|\bya29\.[0-9A-Za-z_-]{30,}|\bGOCSPX-[0-9A-Za-z_-]{20,}",
    "npm_token": r"\bnpm_[A-Za-z0-9]{36}\b",
    "sendgrid_key": r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
    "private_key_block": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    "blob_near_key_word": rf"(?i){_KEY_WORD}[^\n]{{0,24}}?(?<![A-Za-z0-9+/])"
    r"(?:[0-9a-f]{32,}|(?=[A-Za-z0-9+/]*[0-9])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])[A-Za-z0-9+/]{40,}={0,2})"
    r"(?![A-Za-z0-9+/])",
}


# Literal words (matched on the folded, lower-cased text) without which a pattern cannot match:
# one pass finds them, and only the patterns they name are run.
_TRIGGERS = {
    "openai_key": ["sk-"],
    "stripe_key": ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"],
    "jwt": ["eyj"],
    "bearer_token": ["bearer"],
    "api_key_assignment": ["api", "secret", "access", "auth"],
    "password_assignment": ["passw", "pwd", "密码", "密钥", "秘钥", "口令", "私钥", "令牌"],
    "connection_url": ["://"],
    "aws_access_key": ["akia", "asia", "abia", "acca"],
    "huggingface_token": ["hf_"],
    "github_token": ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    "gitlab_token": ["glpat-"],
    "slack_token": ["xox", "://"],
    "google_api_key": ["aiza", "ya29.", "gocspx-"],
    "npm_token": ["npm_"],
    "sendgrid_key": ["sg."],
    "private_key_block": ["-----begin"],
    "blob_near_key_word": ["api", "access", "secret", "token", "passw", "auth", "密钥", "秘钥", "令牌"],
}
_KINDS_BY_TRIGGER: dict[str, list[str]] = {}
for _kind, _words in _TRIGGERS.items():
    for _word in _words:
        _KINDS_BY_TRIGGER.setdefault(_word, []).append(_kind)
# No trigger word contains another: at each position at most one matches.
_TRIGGER = re.compile("|".join(re.escape(w) for w in sorted(_KINDS_BY_TRIGGER, key=len, reverse=True)))

# Folding only matters when the text holds an invisible character or a full-width form of a
# character that key shapes use (full-width punctuation such as ，：？ is common in Chinese prose
# and never needs folding here: the patterns accept `：` as well as `:`).
_KEY_CHARS = string.ascii_letters + string.digits + "-_./@=+~"
_fold_needed = holds_any(INVISIBLE + to_fullwidth(_KEY_CHARS))


def _scan_text(text: str) -> str:
    return text if text.isascii() or not _fold_needed(text) else fold(text)


@lru_cache(maxsize=1)
def secret_patterns() -> dict[str, re.Pattern[str]]:
    """Compiled patterns by name (they apply to folded text)."""
    return {name: re.compile(pattern) for name, pattern in _PATTERNS.items()}


def _kinds(lower: str) -> set[str]:
    """The patterns whose trigger words appear in `lower` (overlapping words included)."""
    kinds: set[str] = set()
    pos = 0
    while match := _TRIGGER.search(lower, pos):
        kinds.update(_KINDS_BY_TRIGGER[match.group()])
        pos = match.start() + 1
    return kinds


def may_hold_secret(text: str, values: Iterable[str] = ()) -> bool:
    """False when `text` surely holds no secret: no pattern's trigger word and none of `values` is in
    it (folded). One cheap pass; True means "scan it"."""
    if not text:
        return False
    folded = _scan_text(text)
    return _TRIGGER.search(folded.lower()) is not None or any(v and (v in text or v in folded) for v in values)


def secret_hits(text: str) -> list[tuple[str, str]]:
    """`(kind, secret)` for each secret-looking substring of `fold(text)`, in order of appearance."""
    if not text:
        return []
    folded = _scan_text(text)
    kinds = _kinds(folded.lower())
    spans: list[tuple[int, int, str]] = []
    patterns = secret_patterns()
    for kind in sorted(kinds):
        pattern = patterns[kind]
        for match in pattern.finditer(folded):
            start, end = match.span("s") if "s" in pattern.groupindex else match.span()
            spans.append((start, end, kind))
    hits, last_end = [], -1
    for start, end, kind in sorted(spans):
        if start >= last_end:  # overlapping matches of several patterns count once
            hits.append((kind, folded[start:end]))
            last_end = end
    return hits


def find_secrets(text: str) -> list[str]:
    """Secret-looking substrings of ``fold(text)``, in order of appearance (redact before logging)."""
    return [secret for _, secret in secret_hits(text)]


def holds_value(text: str, values: Iterable[str]) -> bool:
    """True when `text` (or its folded form) contains one of `values`, e.g. a configured API key."""
    values = [v for v in values if v]
    if not values:
        return False
    if any(v in text for v in values):
        return True
    folded = _scan_text(text)
    return folded is not text and any(v in folded for v in values)


def redact(secret: str) -> str:
    """Keep at most the first 4 characters (fewer for a short secret): ``sk-a…[redacted 40 chars]``."""
    return f"{secret[:min(4, len(secret) // 4)]}…[redacted {len(secret)} chars]"


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """`text` with every secret-looking substring and every one of `values` redacted.

    When anything is found the result is the folded text (the secrets were found there)."""
    hits = secret_hits(text)
    values = [v for v in values if v]
    if not hits and not holds_value(text, values):
        return text
    out = fold(text)
    for value in values:
        out = out.replace(value, f"[redacted {len(value)} chars]")
    for _, secret in secret_hits(out) + hits:
        out = out.replace(secret, redact(secret))
    return out


def scan_table(table: pa.Table, columns: Iterable[str] | None = None, *, limit: int = 100) -> list[dict]:
    """Secret hits in the string columns of ``table``: ``{row, column, kind, redacted}``."""
    names = list(columns) if columns is not None else [
        field.name for field in table.schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    ]
    hits: list[dict] = []
    for name in names:
        for row, value in enumerate(table.column(name).to_pylist()):
            for kind, secret in secret_hits(value or ""):
                hits.append({"row": row, "column": name, "kind": kind, "redacted": redact(secret)})
                if len(hits) >= limit:
                    return hits
    return hits
