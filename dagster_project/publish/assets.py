"""Publishing: the versioned export of the final SFT views, and what it cost."""


import importlib.metadata
import subprocess

import dagster as dg
from pydantic import Field

from dagster_project.config import REPO_ROOT, config
from dagster_project.lib.export.card import CardSpec, figures, inline_markdown
from dagster_project.lib.export.provenance import reference_ref, source_refs
from dagster_project.lib.export.spend import spend_by_partition, spend_markdown, totals
from dagster_project.lib.export.writer import ExportResult, write_export
from dagster_project.lib.warehouse import markdown_table
from dagster_project.partitions import source_manifests
from dagster_project.resources import WarehouseResource

EXPORT_VIEWS = {"raw": "sft_raw", "sft": "sft_alpaca", "messages": "sft_messages"}
EXPORT_BATCH_ROWS = 2048  # rows per record batch read from a view while exporting
PACKAGES = ("dagster", "duckdb", "aiohttp", "math-verify", "pyarrow", "sqlglot", "tokenizers", "huggingface_hub")
BALANCE_COLUMNS = ("category", "target_rows", "available", "wanted_rows", "selected_rows", "shortfall")


def config_hash() -> str:
    """Hash of the effective settings (which never hold secrets, only variable names)."""
    return config().hash()


def source_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _view_reader(con, view: str):
    """Opens a reader over ``view`` when called: the export streams one view at a time."""
    return lambda: con.sql(f'SELECT * FROM "{view}"').to_arrow_reader(EXPORT_BATCH_ROWS)


def card_spec(balance: list[tuple]) -> CardSpec:
    """The card's inputs: sources and licenses from the manifests, models and license from the config."""
    cfg = config()
    refs = [*source_refs(source_manifests().values()),
            reference_ref(cfg.export.reference_dataset, cfg.export.reference_license)]
    return CardSpec(
        license=cfg.export.license,
        sources=refs,
        generation_model=cfg.generation.model,
        judge_model=cfg.judge.model,
        hub_repo_id=cfg.publish.repo_id or None,
        extra_sections={"Category balance": markdown_table(
            ["category", "target", "available", "wanted", "selected", "shortfall"], balance)},
    )


def export_dataset(warehouse: WarehouseResource, version: str | None = None, overwrite: bool = False) -> ExportResult:
    """Stream the final views into a versioned export; shared by the asset and `distill export`."""
    with warehouse.get_connection(purpose="sft_export read") as con:
        simulated = bool(con.execute(
            "SELECT coalesce(bool_or(c.simulated), false) FROM sft_balanced AS b "
            "JOIN r1_completions AS c USING (completion_id)").fetchall()[0][0])
        balance = con.execute(f"SELECT {', '.join(BALANCE_COLUMNS)} FROM sft_category_balance "
                              "ORDER BY category").fetchall()
        extra = {
            "simulated": simulated,
            "config_hash": config_hash(),
            "source_commit": source_commit(),
            "package_versions": {p: importlib.metadata.version(p) for p in PACKAGES},
            "category_balance": [dict(zip(BALANCE_COLUMNS, row)) for row in balance],
        }
        # Views are opened one at a time by write_export and streamed in record batches.
        sources = {name: _view_reader(con, view) for name, view in EXPORT_VIEWS.items()}
        return write_export(sources, config().exports_dir, version=version, manifest_extra=extra,
                            card=card_spec(balance), overwrite=overwrite)


def export_metadata(result: ExportResult) -> dict:
    """What the UI shows for an export: the card and its plots as Markdown, rows, files, and the
    tokens and cost of every LLM request journaled so far (all partitions)."""
    manifest = result.manifest
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    metadata: dict = {
        "version": result.version,
        "dataset_card": dg.MetadataValue.md(inline_markdown(readme, result.path)),
    }
    for alt, path, caption in figures(readme):
        name = path.rsplit("/", 1)[-1].removesuffix(".png")
        metadata[f"plot_{name}"] = dg.MetadataValue.md(inline_markdown(f"![{alt}]({path})\n\n*{caption}*",
                                                                       result.path))
    spend = spend_by_partition(config().journal_dir)
    if spend:
        total = totals(spend)
        if "cost" in total:
            metadata.update({"llm_cost": dg.MetadataValue.float(total["cost"]),
                             "llm_cost_currency": total["currency"]})
        metadata["llm_tokens"] = total["tokens"]
        metadata.update({f"{stage}_tokens": total[f"{stage}_tokens"] for stage in ("r1", "judge")})
        metadata["llm_requests"] = total["requests"]
        metadata["llm_spend_by_partition"] = dg.MetadataValue.md(spend_markdown(spend))
    metadata.update({
        "dagster/row_count": manifest["tables"]["sft"]["rows"],
        "rows_by_form": dg.MetadataValue.json({name: t["rows"] for name, t in manifest["tables"].items()}),
        "files": len(manifest["files"]) + 1,  # and manifest.json, which lists them with sha256
        "bytes": sum(v["bytes"] for v in manifest["files"].values()),
        "path": dg.MetadataValue.path(str(result.path)),
        "simulated": manifest["simulated"],
        "config_hash": manifest["config_hash"],
    })
    return metadata


GATED_ASSETS = ("sft_balanced", *EXPORT_VIEWS.values())


def unpassed_checks(instance: dg.DagsterInstance, defs_checks) -> list[str]:
    """Checks of the exported tables that have not passed on those tables' current data: failed,
    never run, or last run on an older materialization. An export is written only when none is left."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    keys = [k for c in defs_checks for k in c.check_keys if k.asset_key.to_user_string() in GATED_ASSETS]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    failed, out = [], []
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        record = latest.get(key)
        if record is None or record.status not in (AssetCheckExecutionRecordStatus.SUCCEEDED,
                                                   AssetCheckExecutionRecordStatus.FAILED):
            out.append(f"{key.name} ({'never ran' if record is None else 'did not run: ' + record.status.value.lower()})")
            continue
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if evaluation is None or not evaluation.passed:
            failed.append(f"{key.name} (failed: {getattr(evaluation, 'description', '') or 'see the check'})")
            continue
        target = getattr(evaluation, "target_materialization_data", None)
        records = instance.fetch_materializations(key.asset_key, limit=1).records
        if target is not None and records and target.storage_id != records[0].storage_id:
            out.append(f"{key.name} (not run on the current {key.asset_key.to_user_string()})")
    return failed + out  # what failed first, then what did not run


class ExportConfig(dg.Config):
    """Which version folder the export is written to."""

    version: str = Field("", description="version folder name; empty: the UTC time (e.g. 20260101T120000Z)")
    overwrite: bool = Field(False, description="replace an existing version of the same name")


@dg.asset(
    deps=list(EXPORT_VIEWS.values()),
    group_name="publish",
    kinds={"parquet", "json", "python"},
    owners=["team:data"],
    description=("The dataset a trainer loads: raw, SFT (alpaca) and chat-messages forms as JSONL and Parquet in "
                 "a new version folder under `warehouse/exports/`, written atomically, with manifest.json "
                 "(row counts, sha256, config hash, package versions, source commit) and a dataset card with plots. "
                 "The card and plots are in this asset's metadata (Show Markdown), with the tokens and cost of "
                 "every LLM request so far. Publishing it is the separate `publish_to_hub` job."),
)
def sft_export(context: dg.AssetExecutionContext, config: ExportConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from dagster_project.definitions import defs

    blocked = unpassed_checks(context.instance, defs.asset_checks or [])
    if blocked:
        raise dg.Failure(description=f"not exported: {len(blocked)} check(s) of the SFT rows have not passed on the "
                                     f"current data: {'; '.join(blocked[:5])}. Materialize sft_balanced and the views "
                                     "with their checks (e.g. the curate_and_export job) and fix what fails.")
    result = export_dataset(warehouse, version=config.version or None, overwrite=config.overwrite)
    context.log.info(f"export {result.version} written to {result.path}")
    return dg.MaterializeResult(metadata=export_metadata(result))
