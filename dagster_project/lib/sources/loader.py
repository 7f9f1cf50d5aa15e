"""Load one source repo's native rows into the common prompt schema.

Good rows become `raw_prompts` rows; every bad row becomes a `rejected_rows` row with
its file, line and reason. Nothing is dropped silently.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from dagster_project.lib.sources.manifest import Rule, SourceFile, SourceManifest
from dagster_project.lib.sources.readers import read_records

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

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
_MISSING = object()


class SourceFileMissing(FileNotFoundError):
    """A manifest names a file that does not exist."""


@dataclass
class LoadResult:
    prompts: pa.Table
    rejected: pa.Table
    files: list[str] = field(default_factory=list)

    @property
    def reject_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in self.rejected.column("reason").to_pylist():
            kind = reason.split(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts


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
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if not isinstance(value, (dict, list)) else json.dumps(value, ensure_ascii=False)


def build_question(record: dict, spec: str | list[str]) -> tuple[str | None, str | None]:
    """Return (question, missing_field)."""
    if isinstance(spec, list):
        parts = []
        for path in spec:
            value = get_path(record, path)
            if value is _MISSING:
                return None, path
            if _text(value).strip():
                parts.append(_text(value))
        return "\n".join(parts), None
    if "{" in spec:
        missing: list[str] = []

        def sub(m: re.Match) -> str:
            value = get_path(record, m.group(1))
            if value is _MISSING:
                missing.append(m.group(1))
                return ""
            return _text(value)

        text = _TEMPLATE_FIELD.sub(sub, spec)
        return (None, missing[0]) if missing else (text, None)
    value = get_path(record, spec)
    return (None, spec) if value is _MISSING else (_text(value), None)


def _matches(record: dict, rule: Rule) -> bool:
    value = get_path(record, rule.field)
    if rule.contains is not None:
        return value is not _MISSING and rule.contains in _text(value)
    if rule.equals is not None:
        return value is not _MISSING and value == rule.equals
    return value is _MISSING or value != rule.not_equals


def _rule_hit(record: dict, rule: Rule) -> bool:
    """True when the rule quarantines this record."""
    return _matches(record, rule) != rule.required


def prompt_id(source_key: str, repo_name: str, native_id: str | None, question: str) -> str:
    """Stable across runs and machines: derived from the source, never from load order."""
    ident = f"id:{native_id}" if native_id is not None else f"q:{question}"
    return hashlib.sha256(f"{source_key}\x1f{repo_name}\x1f{ident}".encode()).hexdigest()[:16]


def resolve_files(manifest: SourceManifest, spec: SourceFile, assets_dir: Path) -> list[Path]:
    pattern = Path(spec.path)
    pattern = pattern if pattern.is_absolute() else assets_dir / pattern
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    if not matches:
        raise SourceFileMissing(
            f"source file not found: {pattern} (named by `path = \"{spec.path}\"` in {manifest.manifest_path})")
    return matches


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_source(manifest: SourceManifest, assets_dir: Path, repo_root: Path,
                now: datetime | None = None) -> LoadResult:
    """Read every file of a manifest into prompt rows and rejected rows."""
    now = now or datetime.now(timezone.utc)
    prompts: list[dict] = []
    rejected: list[dict] = []
    seen: dict[tuple[str, str], str] = {}
    occurrences: dict[tuple[str, str], int] = {}
    shown_files: list[str] = []

    def reject(spec: SourceFile, file: str, line: int, fld: str, reason: str, raw: Any) -> None:
        excerpt = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
        rejected.append({"source_key": manifest.key, "repo_name": spec.repo_name, "source_file": file,
                         "source_line": line, "field": fld, "reason": reason,
                         "raw_excerpt": (excerpt or "")[:300], "loaded_at": now})

    for spec in manifest.files:
        for path in resolve_files(manifest, spec, assets_dir):
            file = display_path(path, repo_root)
            shown_files.append(file)
            for line, record, error in read_records(path, spec.format, spec.encoding):
                if error:
                    kind = "encoding" if error.startswith("not valid") else "malformed"
                    reject(spec, file, line, "", f"{kind}: {error}", "")
                    continue
                hit = next((r for r in spec.rules if _rule_hit(record, r)), None)
                if hit:
                    reject(spec, file, line, hit.field, f"rule: {hit.reason}", record)
                    continue
                question, missing = build_question(record, spec.question)
                if missing:
                    reject(spec, file, line, missing, f"missing field: `{missing}`", record)
                    continue
                if not question or not question.strip():
                    reject(spec, file, line, "question", "empty question: the mapped question is blank", record)
                    continue
                native_id = None
                if spec.native_id:
                    raw_id = get_path(record, spec.native_id)
                    if raw_id is _MISSING or _text(raw_id).strip() == "":
                        reject(spec, file, line, spec.native_id, f"missing field: native id `{spec.native_id}`", record)
                        continue
                    native_id = _text(raw_id)
                where = f"{file}:{line}"
                if native_id is not None:
                    pid = prompt_id(manifest.key, spec.repo_name, native_id, question)
                    if (spec.repo_name, pid) in seen:
                        reject(spec, file, line, spec.native_id,
                               f"duplicate: native id {native_id!r} already used at {seen[(spec.repo_name, pid)]}",
                               record)
                        continue
                else:
                    # Repeated question texts are kept here (exact-duplicate removal is the job of
                    # prompt_selection, which records what it drops); the occurrence number keeps ids unique.
                    occurrence = occurrences.get((spec.repo_name, question), 0) + 1
                    occurrences[(spec.repo_name, question)] = occurrence
                    pid = prompt_id(manifest.key, spec.repo_name, None,
                                    question if occurrence == 1 else f"{question}#{occurrence}")
                seen[(spec.repo_name, pid)] = where
                gold = get_path(record, spec.gold) if spec.gold else None
                gold_text = None if gold is _MISSING or gold is None or _text(gold).strip() == "" else _text(gold)
                prompts.append({
                    "prompt_id": pid, "source_key": manifest.key, "repo_name": spec.repo_name,
                    "subset": spec.subset, "category": spec.category, "question": question,
                    "gold_answer": gold_text, "gold_format": spec.gold_format if gold_text else "none",
                    "native_id": native_id, "source_file": file, "source_line": line,
                    "native_record": json.dumps(record, ensure_ascii=False, default=str), "loaded_at": now,
                })
    return LoadResult(pa.Table.from_pylist(prompts, schema=PROMPT_SCHEMA),
                      pa.Table.from_pylist(rejected, schema=REJECT_SCHEMA), shown_files)
