"""The simulator's answer key: question -> gold answer, read from the source manifests, so that
math prompts are answered right (or, at the configured rate, wrong) as R1 would."""

from __future__ import annotations

from dagster_project.config import config
from dagster_project.lib.sources.loader import load_source
from dagster_project.lib.verify.gold import normalize_gold
from dagster_project.partitions import source_manifests


def answer_key() -> dict[str, str]:
    key: dict[str, str] = {}
    cfg = config()
    for manifest in source_manifests().values():
        rows = load_source(manifest, cfg.assets_dir, cfg.root).prompts
        for question, gold, fmt in zip(rows.column("question").to_pylist(), rows.column("gold_answer").to_pylist(),
                                       rows.column("gold_format").to_pylist()):
            norm = normalize_gold(gold, fmt) if gold else None
            if norm:
                key[question.strip()] = norm.strip("$").strip()
    return key
