"""`r1_completions`: R1 reasoning traces for a source's selected prompts."""

import dagster as dg
import pyarrow as pa

from dagster_project.common.derived import derived_config
from dagster_project.common.llm_stage import run_stage, summary_metadata
from dagster_project.common.metadata import table_result
from dagster_project.config import GenerationSettings, config
from dagster_project.generation.requests import SELECTED_SQL, generation_requests
from dagster_project.lib.llm.engine import Budget
from dagster_project.lib.warehouse import describe_table, replace_partition
from dagster_project.partitions import source_partitions
from dagster_project.resources import R1_POOL, R1Endpoint, WarehouseResource

COMPLETION_COLUMNS = [
    "completion_id", "prompt_id", "source_key", "sample_index", "model", "status", "finish_reason",
    "reasoning", "content", "prompt_tokens_len", "reasoning_tokens_len", "content_tokens_len",
    "usage_prompt_tokens", "usage_completion_tokens", "cost", "currency", "latency_s", "ttft_s", "attempts",
    "error_type", "error_message", "simulated", "finished_at", "run_id",
]


def completions_table(finals: pa.Table, partition: str) -> pa.Table:
    """Journal rows -> the warehouse table's columns (one row per requested sample)."""
    n = finals.num_rows
    cols = {
        "completion_id": finals.column("request_hash"),
        "source_key": pa.array([partition] * n, pa.string()),
        "cost": finals.column("total_cost") if n else pa.array([], pa.float64()),
    }
    return pa.table({c: cols[c] if c in cols else finals.column(c) for c in COMPLETION_COLUMNS})


GenerationConfig = derived_config(
    "GenerationConfig", GenerationSettings, config().generation,
    ["samples_per_prompt", "max_requests_per_run", "max_cost_per_run"],
    "Samples per prompt and this run's spending guard (defaults: `[generation]` in distill.toml).")


def budget_of(cfg) -> Budget | None:
    if not cfg.max_requests_per_run and not cfg.max_cost_per_run:
        return None
    return Budget(max_requests=cfg.max_requests_per_run or None, max_cost=cfg.max_cost_per_run or None)


@dg.asset(
    partitions_def=source_partitions,
    # raw_prompts is upstream through prompt_selection already; naming it as well lets an asset backfill
    # carry a source's partition from raw_prompts straight through the partitioned stages.
    deps=["prompt_selection", "raw_prompts"],
    pool=R1_POOL,
    group_name="generation",
    kinds={"openai", "duckdb", "python"},
    owners=["team:ml"],
    description=(
        "R1 reasoning traces for the partition's selected prompts. Requests already in the journal "
        "(`warehouse/journal/r1/`) are reused, never bought twice; every attempt is journaled before it is "
        "loaded here. No warehouse connection is open while requests are in flight."
    ),
)
def r1_completions(context: dg.AssetExecutionContext, config: GenerationConfig, warehouse: WarehouseResource,
                   r1: R1Endpoint) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection(purpose=f"r1_completions[{key}] read") as con:
        prompts = con.execute(SELECTED_SQL, [key]).fetchall()
    requests = generation_requests(prompts, key, config.samples_per_prompt)
    run = run_stage(context, r1.settings(), "r1", key, requests, budget=budget_of(config))
    table = completions_table(run.finals, key)
    with warehouse.get_connection(purpose=f"r1_completions[{key}] load") as con:
        replace_partition(con, "r1_completions", "source_key", key, table)
        info = describe_table(con, "r1_completions", "source_key = ?", [key])
    result = table_result("r1_completions", info, partitioned=True, **summary_metadata(run))
    if run.summary is not None and run.summary.stopped_by_budget:
        s = run.summary
        unanswered = f", {s.unfinished} sent but unanswered" if s.unfinished else ""
        raise dg.Failure(
            description=(f"spending cap reached ({s.stopped_reason}); {s.not_sent} requests not sent{unanswered}. "
                         "What was bought is journaled and loaded: re-run to continue."),
            metadata=result.metadata)
    return result
