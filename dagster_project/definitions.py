"""The Dagster code location: assets by stage, their checks, the stage jobs and the resources.

Loading this module reads the configuration, the manifests, the SQL models and their contracts;
it never opens the warehouse (the UI loads code in several processes at once).

The whole pipeline for some sources is one asset backfill (the UI's "Materialize" with chosen
partitions, or `distill run --source`): Dagster runs the partitioned stages once per chosen
source and the shared models and the export once, after them. The stage jobs are the same
graph cut where partitioning changes, so a backfill of a partitioned stage job never repeats
shared work either.
"""

import dagster as dg

from dagster_project.common.contracts import contract_checks
from dagster_project.common.runs import dead_run_reaper
from dagster_project.config import (
    CurationSettings,
    JudgeSettings,
    SourcesSettings,
    config,
)
from dagster_project.curation.assets import response_near_duplicates
from dagster_project.curation.checks import ALL_CHECKS
from dagster_project.generation.assets import r1_completions
from dagster_project.ingest.assets import raw_prompts, seeds
from dagster_project.publish.assets import sft_export
from dagster_project.publish.hub import hub_dataset, publish_to_hub
from dagster_project.resources import JudgeEndpoint, R1Endpoint, warehouse_resource
from dagster_project.scoring.judging import judge_scores
from dagster_project.scoring.verification import verifications
from dagster_project.selection.assets import prompt_contamination, prompt_near_duplicates
from dagster_project.sql_models import Variable, build_sql_assets

python_assets = [seeds, raw_prompts, prompt_near_duplicates, prompt_contamination, r1_completions,
                 verifications, judge_scores, response_near_duplicates, sft_export]

# Tables written by Python assets, for the SQL models' dependency inference and the contracts.
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


def sql_variables() -> dict[str, Variable]:
    """Settings the SQL models read with getvariable(), and where their defaults come from."""
    cfg = config()
    return {
        "math_suffix": Variable(SourcesSettings, cfg.sources, "math_suffix"),
        "selection_seed": Variable(SourcesSettings, cfg.sources, "selection_seed"),
        "balance_seed": Variable(CurationSettings, cfg.curation, "balance_seed"),
        "balance_mode": Variable(CurationSettings, cfg.curation, "balance_mode"),
        "min_chinese_ratio": Variable(CurationSettings, cfg.curation, "min_chinese_ratio"),
        "judge_audit_fraction": Variable(JudgeSettings, cfg.judge, "judge_audit_fraction"),
    }


sql_assets = build_sql_assets(config().sql_dir, PYTHON_TABLES, sql_variables())
TABLE_ASSETS = {**PYTHON_TABLES, **{a.key.path[-1]: a.key for a in sql_assets}}


def _keys(*names: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*names)


# The graph cut where partitioning changes; each job is all partitioned or all shared.
load_sources = dg.define_asset_job(
    "load_sources", selection=_keys("raw_prompts"),
    description="Load source repos into raw_prompts (one run per chosen source); bad rows go to rejected_rows.")
select_prompts = dg.define_asset_job(
    "select_prompts", selection=dg.AssetSelection.groups("selection") | _keys("seed_category_targets"),
    description="Normalize, deduplicate, decontaminate and apply quotas across all sources: prompt_selection.")
generate_and_score = dg.define_asset_job(
    "generate_and_score", selection=_keys("r1_completions", "verifications", "int_judge_queue", "judge_scores"),
    description="For the chosen sources: R1 completions, Math-Verify, routing and the judge (journaled, resumable).")
curate_and_export = dg.define_asset_job(
    "curate_and_export", selection=dg.AssetSelection.groups("curation") | _keys("scores", "sft_export"),
    description="Scores, quality filter, balancing, the final views and a new export version (after the checks pass).")

defs = dg.Definitions(
    assets=[*python_assets, *sql_assets, hub_dataset],
    asset_checks=[*ALL_CHECKS, *contract_checks(TABLE_ASSETS)],
    jobs=[load_sources, select_prompts, generate_and_score, curate_and_export, publish_to_hub],
    sensors=[dead_run_reaper],
    # Steps of a run execute one after another in the run's process: the warehouse has one writer,
    # the heavy stages use every core themselves, and a process per step costs ~2 s each.
    executor=dg.in_process_executor,
    resources={
        "warehouse": warehouse_resource(),
        "r1": R1Endpoint(),
        "judge": JudgeEndpoint(),
    },
)
