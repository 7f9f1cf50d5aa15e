"""Ingestion: seeds and the per-source `raw_prompts` asset."""


import hashlib
import os
from collections import Counter

import dagster as dg

from dagster_project.common.metadata import table_result
from dagster_project.config import config
from dagster_project.lib.sources.loader import SourceFileError, load_source
from dagster_project.lib.warehouse import describe_table, replace_partition
from dagster_project.partitions import manifest_errors, manifest_for, source_manifests, source_partitions
from dagster_project.resources import DUCKDB_POOL, WarehouseResource


def seed_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=f"seed_{path.stem}",
            group_name="ingest",
            kinds={"duckdb", "csv"},
            description=f"Seed table loaded from `assets/seeds/{path.name}`.",
            code_version=hashlib.sha256(path.read_bytes()).hexdigest()[:12],
        )
        for path in sorted(config().seeds_dir.glob("*.csv"))
    ]


@dg.multi_asset(specs=seed_specs(), pool=DUCKDB_POOL, can_subset=True, name="seeds")
def seeds(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Load `assets/seeds/*.csv` into `seed_<stem>` tables."""
    for key in context.selected_asset_keys:
        name = key.path[-1]
        path = config().seeds_dir / f"{name.removeprefix('seed_')}.csv"
        with warehouse.get_connection(purpose=name) as con:
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM read_csv(?, header = true)', [str(path)])
            info = describe_table(con, name)
        result = table_result(name, info)
        yield dg.MaterializeResult(asset_key=key, metadata=result.metadata, data_version=result.data_version)


SOURCE_MANIFESTS_CHECK = "source_manifests"
MIN_SECRET_CHARS = 8  # a configured API key shorter than this ("EMPTY", "none") is not looked for in prompts


def _manifest_warning() -> str:
    errors = manifest_errors()
    if not errors:
        return ""
    return ("\n\n**Manifests not loaded (their sources are not partitions until fixed):**\n"
            + "\n".join(f"- `{line}`" for line in errors))


def configured_secret_values() -> list[str]:
    """The values of the configured API key variables, so a prompt holding one is never sent."""
    names = {config().generation.api_key_env, config().judge.api_key_env}
    return [v for v in (os.environ.get(n, "") for n in sorted(names)) if len(v.strip()) >= MIN_SECRET_CHARS]


def manifest_check_result() -> dg.AssetCheckResult:
    errors = manifest_errors()
    return dg.AssetCheckResult(
        check_name=SOURCE_MANIFESTS_CHECK, passed=not errors, severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{len(errors)} manifest(s) not loaded: " + " | ".join(errors)) if errors
        else f"all {len(source_manifests())} manifests load",
        metadata={"manifests_loaded": len(source_manifests()), "errors": dg.MetadataValue.json(errors)})


@dg.asset(
    partitions_def=source_partitions,
    group_name="ingest",
    kinds={"duckdb", "python"},
    owners=["team:data"],
    check_specs=[dg.AssetCheckSpec(
        SOURCE_MANIFESTS_CHECK, asset="raw_prompts",
        description="Every manifest in the manifests folder loads; one that does not is named with its key "
                    "(its source is left out of the partitions until it is fixed)")],
    description=(
        "A source repo's native rows mapped to one schema (prompt_id, repo_name, subset, category, "
        "question, gold_answer, native record). Bad rows go to `rejected_rows` with file, line and reason "
        "(per file, records = loaded + rejected); a missing, empty or unreadable file fails the run and "
        "leaves the partition as it was. Re-materializing a partition replaces only that partition."
        + _manifest_warning()
    ),
)
def raw_prompts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    for line in manifest_errors():
        context.log.error(f"source manifest not loaded: {line}")
    manifest = manifest_for(context.partition_key)
    try:
        result = load_source(manifest, config().assets_dir, config().root,
                             max_question_chars=config().sources.max_question_chars,
                             secret_values=configured_secret_values())
    except SourceFileError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    for row in result.rejected.slice(0, 20).to_pylist():
        context.log.warning(f"rejected {row['source_file']}:{row['source_line']}: {row['reason']}")
    if result.rejected.num_rows > 20:
        context.log.warning(f"... and {result.rejected.num_rows - 20} more rejected rows (see table rejected_rows)")
    with warehouse.get_connection(purpose=f"raw_prompts[{manifest.key}]") as con:
        con.execute("BEGIN TRANSACTION")
        try:
            replace_partition(con, "raw_prompts", "source_key", manifest.key, result.prompts, transaction=False)
            replace_partition(con, "rejected_rows", "source_key", manifest.key, result.rejected, transaction=False)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        info = describe_table(con, "raw_prompts", "source_key = ?", [manifest.key])
    context.log.info(f"{manifest.repo}: {result.prompts.num_rows} prompts, {result.rejected.num_rows} rejected")
    yield table_result("raw_prompts", info, partitioned=True, **{
        "repo": manifest.repo,
        "origin": manifest.origin,
        "files": dg.MetadataValue.md("| file | records | loaded | rejected |\n|---|---:|---:|---:|\n" + "\n".join(
            f"| `{c.file}` | {c.records} | {c.loaded} | {c.rejected} |" for c in result.counts)),
        "rejected_rows": result.rejected.num_rows,
        "rejected_by_reason": dg.MetadataValue.json(result.reject_counts),
        "by_category": dg.MetadataValue.json(_counts(result.prompts, "category")),
        "by_repo_name": dg.MetadataValue.json(_counts(result.prompts, "repo_name")),
    })
    yield manifest_check_result()


def _counts(table, column: str) -> dict[str, int]:
    return dict(Counter(table.column(column).to_pylist()))
