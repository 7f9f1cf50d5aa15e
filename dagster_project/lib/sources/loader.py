"""Load one source repo's native rows into the common prompt schema.

Good rows become `raw_prompts` rows; every bad row becomes a `rejected_rows` row with its file,
line and reason, so for every file `records = loaded + rejected`. Nothing is dropped silently:
a file that is missing, empty, unreadable or yields no loadable record is a `SourceFileError`
(one line naming the file and the manifest), unless its `[[files]]` entry says `allow_empty`.

Quarantined, in this order: records holding a secret (a key shape from `lib.secrets`, or one of
the `secret_values` such as the configured API keys; the excerpt is redacted), rule hits,
missing fields, wrong types (question parts must be strings; a gold a string or a finite
number; a native id a string or an integer), questions that are blank once invisible
characters are removed, hold a control character, or are longer than `max_question_chars`, and
duplicate native ids.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from dagster_project.lib.secrets import holds_value, may_hold_secret, redact_text, secret_hits
from dagster_project.lib.sources.manifest import NO_GOLD, Rule, SourceFile, SourceManifest
from dagster_project.lib.sources.readers import FileUnreadable, read_records
from dagster_project.lib.text import first_control, is_blank

PROMPT_SCHEMA = pa.schema([
    ("prompt_id", pa.string()),
    ("source_key", pa.string()),
    ("repo_name", pa.string()),
    ("subset", pa.string()),
    ("category", pa.string()),
    ("question", pa.string()),
    ("gold_answer", pa.string()),
    ("gold_format", pa.string()),
    ("native_id", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("native_record", pa.string()),
    ("loaded_at", pa.timestamp("us", tz="UTC")),
])

REJECT_SCHEMA = pa.schema([
    ("source_key", pa.string()),
    ("repo_name", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("field", pa.string()),
    ("reason", pa.string()),
    ("raw_excerpt", pa.string()),
    ("loaded_at", pa.timestamp("us", tz="UTC")),
])

EXCERPT_CHARS = 300
_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
_MISSING = object()
_SURROGATE = re.compile("[\ud800-\udfff]")


class SourceFileError(ValueError):
    """A source file is missing, empty or unreadable; the message is one line naming it and its manifest."""




class _Reject(Exception):
    """One record is quarantined: the field it concerns and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class FileCounts:
    file: str
    records: int
    loaded: int
    rejected: int


@dataclass
class LoadResult:
    prompts: pa.Table
    rejected: pa.Table
    files: list[str] = field(default_factory=list)
    counts: list[FileCounts] = field(default_factory=list)

    @property
    def reject_counts(self) -> dict[str, int]:
        return dict(Counter(reason.split(":")[0] for reason in self.rejected.column("reason").to_pylist()))


def get_path(record: Any, path: str) -> Any:
    """`a.b.0.c` style lookup; returns a sentinel when any step is missing."""
    cur = record
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _text(value: Any) -> str:
    """Any value as text, for rule tests and excerpts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if not isinstance(value, (dict, list)) else json.dumps(value, ensure_ascii=False)


def _kind(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "infinite"
    return {bool: "a boolean", int: "an integer", float: "a number", dict: "an object", list: "a list",
            bytes: "bytes"}.get(type(value), type(value).__name__)


def _question_part(record: dict, path: str) -> str:
    value = get_path(record, path)
    if value is _MISSING:
        raise _Reject(path, f"missing field: `{path}`")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Reject(path, f"wrong type: `{path}` is {_kind(value)}, expected a string")
    return value


def build_question(record: dict, spec: str | list[str]) -> str:
    """The question text from a field path, a list of paths (joined by newlines) or a "{field}" template."""
    if isinstance(spec, list):
        return "\n".join(part for part in (_question_part(record, p) for p in spec) if part.strip())
    if "{" in spec:
        return _TEMPLATE_FIELD.sub(lambda m: _question_part(record, m.group(1)), spec)
    return _question_part(record, spec)


def _gold(record: dict, path: str | None) -> str | None:
    if not path:
        return None
    value = get_path(record, path)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise _Reject(path, f"wrong type: gold `{path}` is {_kind(value)}, expected a string or a finite number")
    text = _text(value)
    if not text.strip():
        return None
    if (control := first_control(text)) is not None:
        raise _Reject(path, f"control character: {control[1]} at position {control[0]} of gold `{path}`")
    return text


def _native_id(record: dict, path: str) -> str:
    value = get_path(record, path)
    if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
        raise _Reject(path, f"missing field: native id `{path}`")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Reject(path, f"wrong type: native id `{path}` is {_kind(value)}, expected a string or an integer")
    return str(value)


def _check_question(question: str, max_chars: int | None) -> None:
    if is_blank(question):
        raise _Reject("question", "empty question: nothing visible is left once whitespace and invisible "
                                  "characters are removed")
    if (control := first_control(question)) is not None:
        raise _Reject("question", f"control character: {control[1]} at position {control[0]} of the question")
    if max_chars is not None and len(question) > max_chars:
        raise _Reject("question", f"too long: {len(question):,} characters, over [sources] max_question_chars "
                                  f"= {max_chars:,}")


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) for every string in a record."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}.{i}" if path else str(i))
    elif isinstance(value, str):
        yield path, value


def _check_secrets(record: dict, native: str, values: Sequence[str]) -> None:
    """Reject a record holding a secret anywhere (it is stored, and its question and gold are sent).

    `native` (the record as JSON) clears most records in one pass; the others are scanned field by
    field, each as `path: text`, so JSON escapes cannot hide a key and the field is named."""
    if not may_hold_secret(native, values):
        return
    lines = [f"{path}: {text}" for path, text in _leaves(record)]
    text = "\n".join(lines)
    if not secret_hits(text) and not (values and holds_value(text, values)):
        return
    for line in lines:
        path = line.split(": ", 1)[0]
        if hits := secret_hits(line):
            raise _Reject(path, f"secret: {hits[0][0]} in field `{path}` (prompts holding secrets are never sent)")
        if holds_value(line, values):
            raise _Reject(path, f"secret: a configured API key in field `{path}` (prompts holding secrets are "
                                "never sent)")
    raise _Reject("", "secret: a secret-looking string in the record (prompts holding secrets are never sent)")


def _rule_hit(record: dict, rule: Rule) -> bool:
    """True when the rule quarantines this record."""
    value = get_path(record, rule.field)
    if rule.contains is not None:
        matched = value is not _MISSING and rule.contains in _text(value)
    elif rule.equals is not None:
        matched = value is not _MISSING and value == rule.equals
    else:
        matched = value is _MISSING or value != rule.not_equals
    return matched != rule.required


def prompt_id(source_key: str, repo_name: str, native_id: str | None, question: str) -> str:
    """Stable across runs and machines: derived from the source, never from load order."""
    ident = f"id:{native_id}" if native_id is not None else f"q:{question}"
    return hashlib.sha256(f"{source_key}\x1f{repo_name}\x1f{ident}".encode()).hexdigest()[:16]


def resolve_files(manifest: SourceManifest, spec: SourceFile, assets_dir: Path) -> list[Path]:
    pattern = Path(spec.path)
    pattern = pattern if pattern.is_absolute() else assets_dir / pattern
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    if not matches and not spec.allow_empty:
        raise SourceFileError(f"{pattern}: source file not found (named by `path = \"{spec.path}\"` in "
                              f"{manifest.manifest_path}; set allow_empty = true in its [[files]] entry if "
                              "that is expected)")
    return matches


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _storable_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")  # faster than a regex search for lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _storable(text: str) -> str:
    """Text that can be stored as UTF-8: lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _excerpt(text: str, values: Sequence[str]) -> str:
    """The first EXCERPT_CHARS of `text`, never holding a secret."""
    out = _storable(redact_text(text, values)[:EXCERPT_CHARS])
    if secret_hits(out) or holds_value(out, values):
        return "[redacted: the text holds a secret]"
    return out


def load_source(manifest: SourceManifest, assets_dir: Path, repo_root: Path, now: datetime | None = None, *,
                max_question_chars: int | None = None, secret_values: Sequence[str] = ()) -> LoadResult:
    """Read every file of a manifest into prompt rows and rejected rows.

    `max_question_chars` (None: no limit) quarantines longer questions; `secret_values` are strings
    (such as the configured API keys) whose presence quarantines a record."""
    now = now or datetime.now(timezone.utc)
    values = [v for v in secret_values if v]
    prompts: list[dict] = []
    rejected: list[dict] = []
    seen: dict[tuple[str, str], str] = {}
    occurrences: dict[tuple[str, str], int] = {}
    shown_files: list[str] = []
    counts: list[FileCounts] = []

    for spec in manifest.files:
        for path in resolve_files(manifest, spec, assets_dir):
            file = _storable(display_path(path, repo_root))
            where = f"(named by `path = \"{spec.path}\"` in {manifest.manifest_path})"
            if path.is_dir():
                raise SourceFileError(f"{file}: is a directory, not a file {where}; use a glob such as "
                                      f"\"{spec.path.rstrip('/')}/*.{spec.format}\"")
            shown_files.append(file)
            n_records = n_loaded = 0
            rejected_before = len(rejected)
            first_reject: str | None = None

            def reject(line: int, fld: str, reason: str, raw: str) -> None:
                nonlocal first_reject
                first_reject = first_reject or f"line {line}: {reason}"
                rejected.append({"source_key": manifest.key, "repo_name": spec.repo_name, "source_file": file,
                                 "source_line": line, "field": _storable(fld), "reason": _storable(reason),
                                 "raw_excerpt": _excerpt(raw, values), "loaded_at": now})

            try:
                for line, record, error, raw in read_records(path, spec.format, spec.encoding):
                    n_records += 1
                    if error:
                        reject(line, "", error, raw)
                        continue
                    native = json.dumps(record, ensure_ascii=False, default=str)
                    try:
                        row = _prompt_row(manifest, spec, record, native, file, line, now,
                                          max_question_chars, values, seen, occurrences)
                    except _Reject as exc:
                        reject(line, exc.field, exc.reason, native)
                        continue
                    prompts.append(row)
                    n_loaded += 1
            except FileUnreadable as exc:
                raise SourceFileError(f"{file}: {exc} {where}") from None
            except OSError as exc:
                raise SourceFileError(f"{file}: cannot be read: {exc.strerror or exc} {where}") from None
            counts.append(FileCounts(file, n_records, n_loaded, len(rejected) - rejected_before))
            if spec.allow_empty:
                continue
            if n_records == 0:
                raise SourceFileError(f"{file}: no records (an empty file) {where}; set allow_empty = true in "
                                      "its [[files]] entry if that is expected")
            if n_loaded == 0:
                raise SourceFileError(f"{file}: none of its {n_records} records could be loaded {where}; "
                                      f"first: {first_reject}")
    return LoadResult(pa.Table.from_pylist(prompts, schema=PROMPT_SCHEMA),
                      pa.Table.from_pylist(rejected, schema=REJECT_SCHEMA), shown_files, counts)


def _prompt_row(manifest: SourceManifest, spec: SourceFile, record: dict, native: str, file: str, line: int,
                now: datetime, max_chars: int | None, values: Sequence[str],
                seen: dict[tuple[str, str], str], occurrences: dict[tuple[str, str], int]) -> dict:
    """One `raw_prompts` row, or _Reject."""
    if not _storable_utf8(native):
        bad = next((p for p, t in _leaves(record) if _SURROGATE.search(t)), "")
        raise _Reject(bad, f"invalid text: a lone surrogate in field `{bad}` (an escaped \\ud800-\\udfff "
                           "without its pair)")
    _check_secrets(record, native, values)
    hit = next((r for r in spec.rules if _rule_hit(record, r)), None)
    if hit:
        raise _Reject(hit.field, f"rule: {hit.reason}")
    question = build_question(record, spec.question)
    if isinstance(spec.question, str) and "{" in spec.question:
        _check_secrets({"question": question}, question, values)  # a secret split across template fields
    _check_question(question, max_chars)
    native_id = _native_id(record, spec.native_id) if spec.native_id else None
    gold = _gold(record, spec.gold)
    if native_id is not None:
        pid = prompt_id(manifest.key, spec.repo_name, native_id, question)
        if (spec.repo_name, pid) in seen:
            raise _Reject(spec.native_id, f"duplicate: native id {native_id!r} already used at "
                                          f"{seen[(spec.repo_name, pid)]}")
    else:
        # Repeated question texts are kept here (exact-duplicate removal is the job of
        # prompt_selection, which records what it drops); the occurrence number keeps ids unique.
        occurrence = occurrences.get((spec.repo_name, question), 0) + 1
        occurrences[(spec.repo_name, question)] = occurrence
        pid = prompt_id(manifest.key, spec.repo_name, None, question if occurrence == 1 else f"{question}#{occurrence}")
    seen[(spec.repo_name, pid)] = f"{file}:{line}"
    return {
        "prompt_id": pid, "source_key": manifest.key, "repo_name": spec.repo_name,
        "subset": spec.subset, "category": spec.category, "question": question,
        "gold_answer": gold, "gold_format": spec.gold_format if gold else NO_GOLD,
        "native_id": native_id, "source_file": file, "source_line": line,
        "native_record": native, "loaded_at": now,
    }
