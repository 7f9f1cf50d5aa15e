"""Paths and readers for the curation tests' real-data fixtures."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "curation"
EVAL_SETS = ROOT / "assets" / "eval_sets"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prompt_of(row: dict) -> str:
    return row["instruction"] + ("\n" + row["input"] if row["input"] else "")
