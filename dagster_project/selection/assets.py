"""Prompt filters computed in Python: near-duplicates and evaluation-set contamination.

Both read the exact-deduplicated prompts, close the warehouse, compute, and write one table.
`prompt_selection` (SQL) joins them to decide what is sent to R1.
"""


import dagster as dg
import pyarrow as pa

from dagster_project.common.derived import derived_config
from dagster_project.common.metadata import source_version, table_result
from dagster_project.config import CurationSettings
from dagster_project.config import config as project_config
from dagster_project.lib.dedup.decontam import find_contamination, load_eval_sets
from dagster_project.lib.dedup.near_dup import find_near_duplicates
from dagster_project.lib.warehouse import describe_table, replace_table
from dagster_project.resources import WarehouseResource

NearDupConfig = derived_config(
    "NearDupConfig", CurationSettings, project_config().curation, ["near_dup_threshold", "near_dup_ngram"],
    "Near-duplicate prompts: MinHash over character n-grams (defaults: `[curation]` in distill.toml).")
DecontamConfig = derived_config(
    "DecontamConfig", CurationSettings, project_config().curation, ["decontam_ngram", "decontam_min_overlap"],
    "Overlap with evaluation sets (defaults: `[curation]` in distill.toml).")

# The same priority order int_prompts_deduped uses to pick exact-duplicate winners.
_PRIORITY_SQL = """
    SELECT prompt_id, question FROM int_prompts_deduped
    WHERE is_unique
    ORDER BY (gold_answer IS NULL), source_key, repo_name, source_file, source_line, prompt_id
"""


def _read_prompts(warehouse: WarehouseResource, purpose: str) -> pa.Table:
    with warehouse.get_connection(purpose=purpose) as con:
        return con.sql(_PRIORITY_SQL).to_arrow_table()


def _write(warehouse: WarehouseResource, name: str, table: pa.Table, **metadata) -> dg.MaterializeResult:
    with warehouse.get_connection(purpose=name) as con:
        replace_table(con, name, table)
        return table_result(name, describe_table(con, name), **metadata)


@dg.asset(
    deps=["int_prompts_deduped"],
    group_name="selection",
    kinds={"duckdb", "python"},
    owners=["team:data"],
    code_version=source_version("dagster_project.lib.dedup.near_dup", "dagster_project.lib.dedup.shingles"),
    description=("Near-duplicate prompts (MinHash over character n-grams, verified by exact Jaccard), "
                 "each pointing at the kept prompt. Thresholds: `[curation]` in distill.toml."),
)
def prompt_near_duplicates(context: dg.AssetExecutionContext, config: NearDupConfig,
                           warehouse: WarehouseResource) -> dg.MaterializeResult:
    prompts = _read_prompts(warehouse, "prompt_near_duplicates")
    pairs = find_near_duplicates(
        prompts.column("prompt_id").to_pylist(), prompts.column("question").to_pylist(),
        threshold=config.near_dup_threshold, ngram=config.near_dup_ngram,
    )
    context.log.info(f"{pairs.num_rows} near-duplicates among {prompts.num_rows} unique prompts")
    return _write(warehouse, "prompt_near_duplicates", pairs, prompts_compared=prompts.num_rows,
                  settings=dg.MetadataValue.json(config.model_dump()))


@dg.asset(
    deps=["int_prompts_deduped"],
    group_name="selection",
    kinds={"duckdb", "python"},
    owners=["team:data"],
    code_version=source_version("dagster_project.lib.dedup.decontam", "dagster_project.lib.dedup.shingles"),
    description=("Prompts that overlap a known evaluation set in `assets/eval_sets/` "
                 "(character n-gram overlap), with the matched item and n-gram."),
)
def prompt_contamination(context: dg.AssetExecutionContext, config: DecontamConfig,
                         warehouse: WarehouseResource) -> dg.MaterializeResult:
    prompts = _read_prompts(warehouse, "prompt_contamination")
    eval_items = load_eval_sets(project_config().eval_sets_dir)
    matches = find_contamination(
        prompts.column("prompt_id").to_pylist(), prompts.column("question").to_pylist(), eval_items,
        ngram=config.decontam_ngram, min_overlap=config.decontam_min_overlap,
    )
    context.log.info(f"{matches.num_rows} contaminated prompts against {len(eval_items)} evaluation items")
    return _write(warehouse, "prompt_contamination", matches, eval_items=len(eval_items),
                  settings=dg.MetadataValue.json(config.model_dump()))
