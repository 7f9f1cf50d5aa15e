"""The Dagster code location: assets, checks, jobs and resources.

Loading this module reads TOML manifests and SQL files only; it never opens the warehouse
(the UI loads code in several processes at once).
"""

import dagster as dg

from dagster_project.config import config
from dagster_project.curation.assets import response_near_duplicates
from dagster_project.curation.checks import ALL_CHECKS
from dagster_project.generation.assets import r1_completions
from dagster_project.ingest.assets import raw_prompts, seeds
from dagster_project.partitions import source_partitions
from dagster_project.publish.assets import sft_export
from dagster_project.publish.hub import hub_dataset, publish_to_hub
from dagster_project.resources import JudgeEndpoint, R1Endpoint, warehouse_resource
from dagster_project.scoring.judging import judge_scores
from dagster_project.scoring.verification import verifications
from dagster_project.selection.assets import (
    prompt_contamination,
    prompt_near_duplicates,
)
from dagster_project.sql_models import build_sql_assets

python_assets = [seeds, raw_prompts, prompt_near_duplicates, prompt_contamination, r1_completions,
                 verifications, judge_scores, response_near_duplicates, sft_export]

# Tables written by Python assets, for the SQL models' dependency inference.
PYTHON_TABLES: dict[str, dg.AssetKey] = {
    "raw_prompts": raw_prompts.key,
    "rejected_rows": raw_prompts.key,
    "prompt_near_duplicates": prompt_near_duplicates.key,
    "prompt_contamination": prompt_contamination.key,
    "r1_completions": r1_completions.key,
    "verifications": verifications.key,
    "judge_scores": judge_scores.key,
    "response_near_duplicates": response_near_duplicates.key,
    **{key.path[-1]: key for key in seeds.keys},
}


def sql_variables() -> dict[str, object]:
    """Settings the SQL models read with getvariable()."""
    cfg = config()
    return {
        "math_suffix": cfg.sources.math_suffix,
        "selection_seed": str(cfg.sources.selection_seed),
        "balance_seed": str(cfg.curation.balance_seed),
        "balance_mode": cfg.curation.balance_mode,
        "min_chinese_ratio": cfg.curation.min_chinese_ratio,
        "judge_audit_fraction": cfg.judge.judge_audit_fraction,
    }


sql_assets = build_sql_assets(config().sql_dir, PYTHON_TABLES, sql_variables())

source_pipeline = dg.define_asset_job(
    "source_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=source_partitions,
    description=("The whole pipeline for one source repo: load it, rebuild selection, generate, verify and judge "
                 "its prompts, then rebuild the scores, the SFT views and the export. Backfill it per source."),
)

defs = dg.Definitions(
    assets=[*python_assets, *sql_assets, hub_dataset],
    asset_checks=ALL_CHECKS,
    jobs=[source_pipeline, publish_to_hub],
    resources={
        "warehouse": warehouse_resource(),
        "r1": R1Endpoint(),
        "judge": JudgeEndpoint(),
    },
)
