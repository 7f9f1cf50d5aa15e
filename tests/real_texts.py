"""Every string in real data files (JSON, JSON Lines, Parquet): corpora for false-positive checks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ("assets/samples/**/*.json*", "tests/fixtures/**/*.json*")


def strings(value) -> list[str]:
    """The strings in a decoded JSON value, depth first."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def file_strings(path: Path, lenient: bool = False) -> list[str]:
    """Every string in one file: a Parquet table, a JSON document or JSON Lines. `lenient`: undecodable
    bytes are replaced and lines that are not JSON skipped (for large third-party files)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return strings(pq.read_table(path).to_pylist())
    raw = path.read_text(encoding="utf-8", errors="replace" if lenient else "strict")
    try:
        return strings(json.loads(raw))
    except json.JSONDecodeError:
        out: list[str] = []
        for line in raw.split("\n"):
            if not line.strip():
                continue
            try:
                out += strings(json.loads(line))
            except json.JSONDecodeError:
                if not lenient:
                    raise
        return out


def bundled_paths() -> list[Path]:
    """The bundled sample rows and test fixtures (real public rows, each with its origin)."""
    return sorted(p for pattern in BUNDLED for p in REPO_ROOT.glob(pattern))


def texts(paths: Iterable[Path], min_chars: int = 0, lenient: bool = False) -> list[str]:
    return [s for p in paths for s in file_strings(p, lenient) if len(s) >= min_chars]
