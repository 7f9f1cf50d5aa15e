"""Source manifests: one TOML file per source repo under `assets/sources/`.

A manifest says where a source's rows come from and how its native fields map to the
common prompt schema. Adding a source is adding a file; see assets/sources/README.md.
Every key is checked when the manifest is read: an unknown key (anywhere), a wrong type or
value is a `ManifestError` of one line naming the file, the key and, for a typo, the closest
valid key. `load_manifests` keeps the good manifests and reports each bad one on its own.
"""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.lib.verify.gold import GOLD_FORMATS

CATEGORIES = ("Math", "Exam", "STEM", "General")
FORMATS = ("jsonl", "json", "parquet", "csv")
ORIGIN_KINDS = ("real", "proxy", "hand_written", "synthetic")
NO_GOLD = "none"
MAX_KEY_LENGTH = 64  # the key names partitions, journal folders and command-line arguments
KEY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
LICENSE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
MAX_REPO_NAME_LENGTH = 200

TOP_KEYS = ("key", "repo", "description", "license", "license_note", "online", "origin", "defaults", "files")
ORIGIN_KEYS = ("kind", "note")
FILE_KEYS = ("path", "format", "repo_name", "subset", "category", "question", "gold", "gold_format",
             "native_id", "encoding", "allow_empty", "reject", "require")
RULE_KEYS = ("field", "reason", "contains", "equals", "not_equals")
RULE_TESTS = ("contains", "equals", "not_equals")
_REQUIRED_FILE_KEYS = ("path", "format", "repo_name", "category", "question")


class ManifestError(ValueError):
    """A manifest is wrong; the one-line message names the file and the key.

    `key` is the manifest's partition key when it could be read (so a command naming that source
    can say why it is not available), else None."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


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
    allow_empty: bool = False  # an empty file, or a glob matching nothing, is not an error


@dataclass(frozen=True)
class SourceManifest:
    key: str                  # partition key: safe in URLs and on the command line
    repo: str                 # the source repo as the published dataset names it
    description: str
    origin: str               # real | proxy | hand_written | synthetic
    origin_note: str
    license: str              # a Hugging Face license id, or "other" / "unknown" (see license_note)
    license_note: str
    online: dict[str, str]
    files: tuple[SourceFile, ...]
    manifest_path: Path = field(compare=False)


@dataclass
class ManifestSet:
    """The manifests of a folder: the good ones by key, and one error line per bad one."""

    manifests: dict[str, SourceManifest]
    errors: list[ManifestError]

    def error_lines(self) -> list[str]:
        return [str(e) for e in self.errors]


def closest(name: str, options: tuple[str, ...] | list[str]) -> str:
    """`" (did you mean x?)"` for a near miss, else the list of valid values."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else f"; expected one of: {', '.join(options)}"


_TYPE_NAMES = {str: "a string", bool: "true or false", list: "a list", dict: "a table"}


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


class _Reader:
    """Checks one manifest, raising a ManifestError that names the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key: str | None = None

    def fail(self, where: str, message: str) -> None:
        raise ManifestError(f"{self.path}: {where + ': ' if where else ''}{message}", self.key)

    def known_keys(self, table: dict, allowed: tuple[str, ...], where: str) -> None:
        for name in table:
            if name not in allowed:
                what = f"[{where}]" if where and "[" not in where else where
                self.fail(what, f"unknown key {name!r}{closest(name, allowed)}")

    def typed(self, value: Any, kind: type, where: str, *, empty_ok: bool = True) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(where, f"expected {_TYPE_NAMES[kind]}, got {_type_name(value)}")
        if kind is str and not empty_ok and not value.strip():
            self.fail(where, "must not be empty")
        return value

    def choice(self, value: Any, options: tuple[str, ...], where: str, what: str) -> str:
        self.typed(value, str, where)
        if value not in options:
            self.fail(where, f"{value!r} is not a valid {what}{closest(value, options)}")
        return value

    def rules(self, raw: Any, where: str, required: bool) -> tuple[Rule, ...]:
        self.typed(raw, list, where)
        out = []
        for i, rule in enumerate(raw):
            at = f"{where}[{i}]"
            self.typed(rule, dict, at)
            self.known_keys(rule, RULE_KEYS, at)
            for name in ("field", "reason"):
                if name not in rule:
                    self.fail(at, f"missing `{name}`")
                self.typed(rule[name], str, f"{at}.{name}", empty_ok=False)
            tests = [t for t in RULE_TESTS if t in rule]
            if len(tests) != 1:
                self.fail(at, "needs exactly one of contains / equals / not_equals")
            if "contains" in rule:
                self.typed(rule["contains"], str, f"{at}.contains", empty_ok=False)
            value = rule[tests[0]]
            if isinstance(value, (dict, list)):
                self.fail(f"{at}.{tests[0]}", f"expected a string, number or boolean, got {_type_name(value)}")
            out.append(Rule(rule["field"], rule["reason"], rule.get("contains"), rule.get("equals"),
                            rule.get("not_equals"), required))
        return tuple(out)

    def encoding(self, value: Any, where: str) -> str:
        self.typed(value, str, where)
        try:
            codecs.lookup(value)
        except LookupError:
            self.fail(where, f"unknown encoding {value!r} (a Python codec name such as utf-8 or gb18030)")
        probe = '\n\r[{",:}]'
        try:
            compatible = probe.encode(value) == probe.encode("ascii")
        except (UnicodeError, LookupError):
            compatible = False
        if not compatible:
            self.fail(where, f"encoding {value!r} is not ASCII-compatible (utf-16/32 files must be converted)")
        return value

    def question(self, value: Any, where: str) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                self.fail(where, "an empty list of fields")
            for i, part in enumerate(value):
                self.typed(part, str, f"{where}[{i}]", empty_ok=False)
            return list(value)
        self.typed(value, str, where, empty_ok=False)
        if value.count("{") != value.count("}"):
            self.fail(where, f"template {value!r} has unbalanced braces")
        return value

    def file(self, raw: Any, defaults: dict, where: str) -> SourceFile:
        self.typed(raw, dict, where)
        self.known_keys(raw, FILE_KEYS, where)
        merged = {**defaults, **raw}
        for name in _REQUIRED_FILE_KEYS:
            if name not in merged:
                self.fail(where, f"missing `{name}`")
        at = lambda name: f"{where}.{name}"  # noqa: E731
        gold = self.typed(merged.get("gold", ""), str, at("gold"))
        native_id = self.typed(merged.get("native_id", ""), str, at("native_id"))
        rules = self.rules(defaults.get("reject", []), "[defaults].reject", False) \
            + self.rules(raw.get("reject", []), at("reject"), False) \
            + self.rules(defaults.get("require", []), "[defaults].require", True) \
            + self.rules(raw.get("require", []), at("require"), True)
        repo_name = self.typed(merged["repo_name"], str, at("repo_name"), empty_ok=False)
        if len(repo_name) > MAX_REPO_NAME_LENGTH or not repo_name.isprintable():
            self.fail(at("repo_name"), f"must be printable and at most {MAX_REPO_NAME_LENGTH} characters")
        return SourceFile(
            path=self.typed(merged["path"], str, at("path"), empty_ok=False),
            format=self.choice(merged["format"], FORMATS, at("format"), "format"),
            repo_name=repo_name,
            subset=self.typed(merged.get("subset", ""), str, at("subset")),
            category=self.choice(merged["category"], CATEGORIES, at("category"), "category"),
            question=self.question(merged["question"], at("question")),
            gold=gold or None,
            gold_format=self.choice(merged.get("gold_format", NO_GOLD), (*GOLD_FORMATS, NO_GOLD),
                                    at("gold_format"), "gold format"),
            native_id=native_id or None,
            encoding=self.encoding(merged.get("encoding", "utf-8"), at("encoding")),
            rules=rules,
            allow_empty=self.typed(merged.get("allow_empty", False), bool, at("allow_empty")),
        )

    def manifest(self, data: dict) -> SourceManifest:
        self.known_keys(data, TOP_KEYS, "")
        for name in ("key", "repo", "license", "files"):
            if name not in data:
                hint = " (a Hugging Face license id such as mit or apache-2.0, or other / unknown)" \
                    if name == "license" else ""
                self.fail("", f"missing `{name}`{hint}")
        key = self.typed(data["key"], str, "key")
        if len(key) > MAX_KEY_LENGTH or not KEY_RE.match(key):
            shown = repr(key) if len(key) <= MAX_KEY_LENGTH else f"'{key[:20]}…' ({len(key)} characters)"
            self.fail("key", f"{shown} must be 1-{MAX_KEY_LENGTH} lowercase letters, digits and dashes, "
                             "starting and ending with a letter or digit")
        self.key = key
        license_id = self.typed(data["license"], str, "license")
        if not LICENSE_RE.match(license_id):
            self.fail("license", f"{license_id!r} is not a license id (lowercase, e.g. mit, apache-2.0, other)")
        license_note = self.typed(data.get("license_note", ""), str, "license_note").strip()
        if license_id == "other" and not license_note:
            self.fail("license_note", "required when license = \"other\": say what the terms are")
        origin = self.typed(data.get("origin", {}), dict, "origin")
        self.known_keys(origin, ORIGIN_KEYS, "origin")
        online = self.typed(data.get("online", {}), dict, "online")
        for name, value in online.items():
            self.typed(value, str, f"online.{name}")
        defaults = self.typed(data.get("defaults", {}), dict, "defaults")
        self.known_keys(defaults, FILE_KEYS, "defaults")
        files = self.typed(data["files"], list, "files")
        if not files:
            self.fail("files", "no [[files]] entries")
        return SourceManifest(
            key=key,
            repo=self.typed(data["repo"], str, "repo", empty_ok=False),
            description=self.typed(data.get("description", ""), str, "description").strip(),
            origin=self.choice(origin.get("kind", "real"), ORIGIN_KINDS, "origin.kind", "origin kind"),
            origin_note=self.typed(origin.get("note", ""), str, "origin.note").strip(),
            license=license_id,
            license_note=license_note,
            online=dict(online),
            files=tuple(self.file(raw, defaults, f"files[{i}]") for i, raw in enumerate(files)),
            manifest_path=self.path,
        )


def parse_manifest(path: Path) -> SourceManifest:
    """Read and check one manifest; every mistake is one ManifestError line."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError(f"{path}: {reason}") from None
    key = data.get("key") if isinstance(data.get("key"), str) else None
    reader = _Reader(Path(path))
    reader.key = key if key and KEY_RE.match(key) and len(key) <= MAX_KEY_LENGTH else None
    return reader.manifest(data)


def load_manifests(directory: Path) -> ManifestSet:
    """All manifests in a folder, keyed by partition key. A bad manifest (or a second one with a key
    already taken) is reported in `errors` and left out; the others are unaffected."""
    directory = Path(directory)
    manifests: dict[str, SourceManifest] = {}
    errors: list[ManifestError] = []
    if not directory.is_dir():
        return ManifestSet({}, [ManifestError(f"{directory}: the manifests folder does not exist")])
    for path in sorted(directory.glob("*.toml")):
        try:
            m = parse_manifest(path)
        except ManifestError as exc:
            errors.append(exc)
            continue
        if m.key in manifests:
            errors.append(ManifestError(f"{path}: key: {m.key!r} is already used by {manifests[m.key].manifest_path}"))
            continue
        manifests[m.key] = m
    return ManifestSet(manifests, errors)
