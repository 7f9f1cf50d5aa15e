"""Source manifests: one TOML file per source repo under `assets/sources/`.

A manifest says where a source's rows come from and how its native fields map to the
common prompt schema. Adding a source is adding a file; see assets/sources/README.md.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = ("Math", "Exam", "STEM", "General")
FORMATS = ("jsonl", "json", "parquet", "csv")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FILE_KEYS = {"path", "format", "repo_name", "subset", "category", "question", "gold", "gold_format",
             "native_id", "encoding", "reject", "require"}


class ManifestError(ValueError):
    """A manifest is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Rule:
    """A row test: `contains` / `equals` / `not_equals` on one field.

    A `reject` rule quarantines the rows it matches; a `require` rule the rows it does not.
    """

    field: str
    reason: str
    contains: str | None = None
    equals: Any = None
    not_equals: Any = None
    required: bool = False


@dataclass(frozen=True)
class SourceFile:
    path: str                 # relative to assets/ (or absolute); may be a glob
    format: str
    repo_name: str            # the published dataset's `repo_name` for these rows
    subset: str
    category: str
    question: str | list[str]  # a field path, a list of paths joined by newline, or a "{field}" template
    gold: str | None
    gold_format: str
    native_id: str | None
    encoding: str
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class SourceManifest:
    key: str                  # partition key: safe in URLs and on the command line
    repo: str                 # the source repo as the published dataset names it
    description: str
    origin: str               # real | proxy | hand_written
    origin_note: str
    license: str              # a Hugging Face license id, or "other" / "unknown" (see license_note)
    license_note: str
    online: dict[str, str]
    files: tuple[SourceFile, ...]
    manifest_path: Path = field(compare=False)


def _rules(raw: list[dict] | None, where: str, required: bool = False) -> tuple[Rule, ...]:
    out = []
    for i, r in enumerate(raw or []):
        if "field" not in r or "reason" not in r:
            raise ManifestError(f"{where}: rule #{i + 1} needs `field` and `reason`")
        if sum(k in r for k in ("contains", "equals", "not_equals")) != 1:
            raise ManifestError(f"{where}: rule #{i + 1} needs exactly one of contains / equals / not_equals")
        out.append(Rule(r["field"], r["reason"], r.get("contains"), r.get("equals"), r.get("not_equals"), required))
    return tuple(out)


def parse_manifest(path: Path) -> SourceManifest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    for required in ("key", "repo", "files"):
        if required not in data:
            raise ManifestError(f"{path}: missing `{required}`")
    key = data["key"]
    if not KEY_RE.match(key):
        raise ManifestError(f"{path}: key {key!r} must be lowercase letters, digits and dashes")
    defaults = data.get("defaults", {})
    files = []
    for i, raw in enumerate(data["files"]):
        where = f"{path}: files[{i}]"
        unknown = set(raw) - FILE_KEYS
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}")
        merged = {**defaults, **raw}
        for required in ("path", "format", "repo_name", "category", "question"):
            if required not in merged:
                raise ManifestError(f"{where}: missing `{required}`")
        if merged["format"] not in FORMATS:
            raise ManifestError(f"{where}: format {merged['format']!r} is not one of {FORMATS}")
        if merged["category"] not in CATEGORIES:
            raise ManifestError(f"{where}: category {merged['category']!r} is not one of {CATEGORIES}")
        files.append(SourceFile(
            path=merged["path"], format=merged["format"], repo_name=merged["repo_name"],
            subset=merged.get("subset", ""), category=merged["category"], question=merged["question"],
            gold=merged.get("gold") or None, gold_format=merged.get("gold_format", "none"),
            native_id=merged.get("native_id") or None, encoding=merged.get("encoding", "utf-8"),
            rules=_rules(defaults.get("reject", []) + raw.get("reject", []), where)
            + _rules(defaults.get("require", []) + raw.get("require", []), where, required=True),
        ))
    origin = data.get("origin", {})
    return SourceManifest(
        key=key, repo=data["repo"], description=data.get("description", "").strip(),
        origin=origin.get("kind", "real"), origin_note=origin.get("note", "").strip(),
        license=data.get("license", "unknown"), license_note=data.get("license_note", "").strip(), online=dict(data.get("online", {})),
        files=tuple(files), manifest_path=path,
    )


def load_manifests(directory: Path) -> dict[str, SourceManifest]:
    """All manifests in a directory, keyed by partition key (duplicate keys are an error)."""
    out: dict[str, SourceManifest] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        m = parse_manifest(path)
        if m.key in out:
            raise ManifestError(f"{path}: key {m.key!r} already used by {out[m.key].manifest_path}")
        out[m.key] = m
    return out
