"""Project settings: one TOML file (`distill.toml`) plus environment overrides.

`DISTILL_CONFIG` points at another file; `DISTILL_<SECTION>__<KEY>` overrides one key
(the value is parsed as TOML when it can be, so numbers and booleans keep their type).
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "DISTILL_"


class SettingsError(ValueError):
    """A configuration mistake, reported as one clear line."""


def _coerce(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def config_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", REPO_ROOT / "distill.toml"))


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Read the config file and apply environment overrides."""
    path = path or config_path()
    if not path.exists():
        raise SettingsError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    env = os.environ if environ is None else environ
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        data.setdefault(section, {})[key] = _coerce(raw)
    return data


@lru_cache(maxsize=1)
def _cached() -> dict[str, dict[str, Any]]:
    return load_settings()


def settings() -> dict[str, dict[str, Any]]:
    """The process-wide settings (read once)."""
    return _cached()


def reload_settings() -> dict[str, dict[str, Any]]:
    _cached.cache_clear()
    return _cached()


def section(name: str) -> dict[str, Any]:
    return dict(settings().get(name, {}))


def resolve_path(value: str | Path, base: Path = REPO_ROOT) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def warehouse_dir() -> Path:
    return resolve_path(section("warehouse").get("dir", "warehouse"))


def database_path() -> Path:
    return warehouse_dir() / section("warehouse").get("database", "warehouse.duckdb")


def journal_dir() -> Path:
    return warehouse_dir() / "journal"


def exports_dir() -> Path:
    return warehouse_dir() / "exports"


def manifests_dir() -> Path:
    return resolve_path(section("sources").get("manifests", "assets/sources"))


def seeds_dir() -> Path:
    return resolve_path(section("sources").get("seeds", "assets/seeds"))
