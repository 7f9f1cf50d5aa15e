"""Run the whole pipeline stage by stage (the demo, the benchmarks and the end-to-end tests).

Each stage is a real Dagster materialization against the given instance, so runs show up
in the UI's history exactly as if launched there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from dagster_project.config import REPO_ROOT, SettingsError
from dagster_project.lib.sources.loader import load_source
from dagster_project.lib.verify.gold import normalize_gold
from dagster_project.partitions import source_manifests, source_partitions

STAGES: list[tuple[str, list[str], bool]] = [
    ("load sources", ["seed_category_targets", "raw_prompts"], True),
    ("select prompts", ["stg_prompts", "int_prompts_deduped", "prompt_near_duplicates", "prompt_contamination",
                        "prompt_selection"], False),
    ("generate (R1)", ["r1_completions"], True),
    ("verify (Math-Verify)", ["verifications"], True),
    ("route to the judge", ["int_judge_queue"], False),
    ("judge", ["judge_scores"], True),
    ("score, curate, export", ["scores", "response_near_duplicates", "int_sft_candidates", "sft_category_balance",
                               "sft_balanced", "sft_raw", "sft_alpaca", "sft_messages", "sft_export"], False),
]


@dataclass
class StageTiming:
    stage: str
    seconds: float
    runs: int = 0


@dataclass
class PipelineResult:
    timings: list[StageTiming] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.timings)


def answer_key(manifests_dir: Path | None = None) -> dict[str, str]:
    """question -> gold answer, so the simulator can answer math prompts right (or wrong) realistically."""
    key: dict[str, str] = {}
    for manifest in source_manifests().values():
        rows = load_source(manifest, REPO_ROOT / "assets", REPO_ROOT).prompts
        for question, gold, fmt in zip(rows.column("question").to_pylist(), rows.column("gold_answer").to_pylist(),
                                       rows.column("gold_format").to_pylist()):
            norm = normalize_gold(gold, fmt) if gold else None
            if norm:
                key[question.strip()] = norm.strip("$").strip()
    return key


def run_pipeline(defs: dg.Definitions, instance: dg.DagsterInstance, *,
                 resources: Mapping[str, object] | None = None, partitions: Iterable[str] | None = None,
                 on_stage: Callable[[str], None] = lambda s: None, log_level: str = "DEBUG",
                 stages: Iterable[str] | None = None) -> PipelineResult:
    """Materialize every stage (or the named ones) in order; raises on the first failed run."""
    keys = list(partitions or source_partitions.get_partition_keys())
    assets = [*defs.assets, *(defs.asset_checks or [])]
    result = PipelineResult()
    wanted = set(stages) if stages else {name for name, _, _ in STAGES}
    unknown = wanted - {name for name, _, _ in STAGES}
    if unknown:
        raise SettingsError(f"unknown stage(s) {sorted(unknown)}; stages: {', '.join(n for n, _, _ in STAGES)}")
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    for stage, names, partitioned in STAGES:
        if stage not in wanted:
            continue
        on_stage(stage)
        start = time.perf_counter()
        selection = dg.AssetSelection.assets(*names)
        runs = 0
        for key in (keys if partitioned else [None]):
            sel = selection
            if partitioned and stage == "load sources":
                sel = dg.AssetSelection.assets("raw_prompts") if runs else selection
            outcome = dg.materialize(assets, selection=sel, partition_key=key, instance=instance,
                                     resources=resources or defs.resources, raise_on_error=True,
                                     tags={"distill/stage": stage}, run_config=run_config)
            runs += 1
            assert outcome.success
        result.timings.append(StageTiming(stage, time.perf_counter() - start, runs))
    return result
