"""Publishing: the versioned export of the final SFT views."""


import importlib.metadata
import subprocess

import dagster as dg

from dagster_project.config import REPO_ROOT, config
from dagster_project.lib.export.card import DatasetCard
from dagster_project.lib.export.writer import write_export
from dagster_project.resources import DUCKDB_POOL, WarehouseResource

EXPORT_VIEWS = {"raw": "sft_raw", "sft": "sft_alpaca", "messages": "sft_messages"}
EXPORT_BATCH_ROWS = 2048  # rows per record batch read from a view while exporting
PACKAGES = ("dagster", "duckdb", "aiohttp", "math-verify", "pyarrow", "sqlglot", "tokenizers")


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


def export_dataset(warehouse: WarehouseResource, version: str | None = None, overwrite: bool = False):
    """Stream the final views into a versioned export; shared by the asset and `distill export`."""
    with warehouse.get_connection(purpose="sft_export read") as con:
        category_by_repo = dict(con.execute("SELECT DISTINCT repo_name, category FROM prompt_selection").fetchall())
        simulated = bool(con.execute(
            "SELECT coalesce(bool_or(c.simulated), false) FROM sft_balanced AS b "
            "JOIN r1_completions AS c USING (completion_id)").fetchall()[0][0])
        balance = con.execute("SELECT category, target_rows, available, wanted_rows, selected_rows, shortfall "
                              "FROM sft_category_balance ORDER BY category").fetchall()
        balance_md = ("| category | target | available | wanted | selected | shortfall |\n"
                      "|---|---:|---:|---:|---:|---:|\n"
                      + "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in balance))
        card = DatasetCard(
            title="Chinese DeepSeek-R1 distillation dataset",
            summary=("Prompts from open Chinese datasets, answered by DeepSeek-R1 with its reasoning, verified with "
                     "Math-Verify or scored by an LLM judge, deduplicated, decontaminated and balanced by category."),
            license=config().export.license,
            category_by_repo=category_by_repo,
            config={"generation_model": config().generation.model,
                    "judge_model": config().judge.model, "config_hash": config_hash()},
            extra_sections={"Category balance": balance_md},
        )
        extra = {
            "simulated": simulated,
            "config_hash": config_hash(),
            "source_commit": source_commit(),
            "package_versions": {p: importlib.metadata.version(p) for p in PACKAGES},
            "category_balance": [dict(zip(("category", "target_rows", "available", "wanted_rows", "selected_rows",
                                           "shortfall"), row)) for row in balance],
        }
        # Views are opened one at a time by write_export and streamed in record batches.
        sources = {name: _view_reader(con, view) for name, view in EXPORT_VIEWS.items()}
        return write_export(sources, config().exports_dir, version=version, manifest_extra=extra, card=card,
                            overwrite=overwrite)


@dg.asset(
    deps=list(EXPORT_VIEWS.values()),
    pool=DUCKDB_POOL,
    group_name="curation",
    kinds={"parquet", "json", "python"},
    owners=["team:data"],
    description=("The dataset a trainer loads: raw, SFT (alpaca) and chat-messages forms as JSONL and Parquet in "
                 "a new version folder under `warehouse/exports/`, written atomically, with manifest.json "
                 "(row counts, sha256, config hash, package versions, source commit) and a dataset card with plots."),
)
def sft_export(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    result = export_dataset(warehouse)
    manifest = result.manifest
    context.log.info(f"export {result.version} written to {result.path}")
    return dg.MaterializeResult(metadata={
        "version": result.version,
        "path": dg.MetadataValue.path(str(result.path)),
        "dataset_card": dg.MetadataValue.path(str(result.path / "README.md")),
        "rows": {name: t["rows"] for name, t in manifest["tables"].items()}["sft"],
        "files": dg.MetadataValue.json({k: {"rows": v.get("rows"), "sha256": v["sha256"][:16]}
                                        for k, v in manifest["files"].items() if "rows" in v}),
        "simulated": manifest["simulated"],
        "config_hash": manifest["config_hash"],
    })
