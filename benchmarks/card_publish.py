"""Benchmark the dataset card at full scale: plots, card rendering and the pre-upload check.

Usage: python benchmarks/card_publish.py [--rows 110000] [--seed 7]
Builds a synthetic SFT table of ``rows`` rows (repo_names and categories from the bundled source
manifests, the published category shares, log-normal token lengths, short texts), then times
write_plots, render (the huggingface_hub DatasetCard) and a whole write_export, and
plan_publish (size and sha256 of every file against manifest.json). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.lib.export import card as card_module  # noqa: E402
from dagster_project.lib.export import plots as plots_module  # noqa: E402
from dagster_project.lib.export.hub import plan_publish  # noqa: E402
from dagster_project.lib.export.provenance import category_by_repo, source_refs  # noqa: E402
from dagster_project.lib.export.writer import write_export  # noqa: E402
from dagster_project.lib.sources.manifest import load_manifests  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARES = {"Math": 36568, "Exam": 2432, "STEM": 12648, "General": 58352}  # the published counts


def synthetic(rows: int, seed: int, refs) -> pa.Table:
    rng = np.random.default_rng(seed)
    by_category: dict[str, list[str]] = {}
    for repo, category in category_by_repo(refs).items():
        by_category.setdefault(category, []).append(repo)
    cats = rng.choice(list(SHARES), size=rows, p=np.array(list(SHARES.values())) / sum(SHARES.values()))
    repos = [by_category[c][i % len(by_category[c])] for i, c in enumerate(cats)]
    verified = np.isin(cats, ["Math", "Exam"])
    scores = np.where(verified, 10, rng.integers(6, 11, size=rows))
    return pa.table({
        "instruction": [f"题目 {i}" for i in range(rows)],
        "input": [""] * rows,
        "output": [f"<think>\n推理 {i}\n</think>\n\n答案 {i}" for i in range(rows)],
        "repo_name": repos,
        "prompt_tokens_len": rng.lognormal(4.0, 0.8, rows).astype(np.int64),
        "reasoning_content_tokens_len": rng.lognormal(7.2, 0.7, rows).astype(np.int64),
        "content_tokens_len": rng.lognormal(5.5, 0.6, rows).astype(np.int64),
        "score": scores.astype(np.int64),
    })


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    refs = source_refs(load_manifests(ROOT / "assets" / "sources").manifests.values())
    table = synthetic(args.rows, args.seed, refs)
    stats = table.select([c for c in card_module.STATS_COLUMNS if c in table.column_names])
    cats = card_module.categories(stats, category_by_repo(refs))
    spec = card_module.CardSpec(sources=refs, generation_model="deepseek-r1", judge_model="qwen2.5-72b-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plots, plots_s = timed(lambda: plots_module.write_plots(stats, cats, out))
        _, render_s = timed(lambda: card_module.render(
            spec, rows={"sft": args.rows}, stats=stats, files={}, plots=plots, version="bench",
            created_at="2026-01-01T00:00:00Z", manifest_extra={"simulated": True}, stats_name="sft", cats=cats))
        result, export_s = timed(lambda: write_export({"sft": table}, out / "exports", version="bench", card=spec,
                                                      manifest_extra={"simulated": True}))
        plan, plan_s = timed(lambda: plan_publish(out / "exports", version="bench", repo_id="bench/bench",
                                                  endpoint="http://127.0.0.1:9", private=True, commit_message="x"))
    print(json.dumps({
        "benchmark": "card_publish",
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "rows": args.rows,
        "seconds": {"write_plots": plots_s, "render_card": render_s, "write_export_total": export_s,
                    "plan_publish_check": plan_s},
        "export_bytes": plan.total_bytes,
        "plots": [p.path for p in plots],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
