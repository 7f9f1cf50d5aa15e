"""The Dagster code location: assets, checks, jobs and resources.

Loading this module reads TOML manifests and SQL files only; it never opens the warehouse
(the UI loads code in several processes at once).
"""

from __future__ import annotations

import dagster as dg

from .assets.ingest import raw_prompts, seed_specs, seeds
from .assets.prompt_filters import prompt_contamination, prompt_near_duplicates
from .resources import warehouse_resource
from .settings import REPO_ROOT, section
from .sql_models import build_sql_assets

# Tables written by Python assets, for the SQL models' dependency inference.
PYTHON_TABLES: dict[str, dg.AssetKey] = {
    "raw_prompts": raw_prompts.key,
    "rejected_rows": raw_prompts.key,
    "prompt_near_duplicates": prompt_near_duplicates.key,
    "prompt_contamination": prompt_contamination.key,
    **{spec.key.path[-1]: spec.key for spec in seed_specs()},
}


def sql_variables() -> dict[str, object]:
    """Settings the SQL models read with getvariable()."""
    src, cur = section("sources"), section("curation")
    return {
        "math_suffix": src.get("math_suffix", ""),
        "selection_seed": str(src.get("selection_seed", 0)),
        "balance_seed": str(cur.get("balance_seed", 0)),
        "min_chinese_ratio": float(cur.get("min_chinese_ratio", 0.0)),
    }


python_assets = [seeds, raw_prompts, prompt_near_duplicates, prompt_contamination]
sql_assets = build_sql_assets(REPO_ROOT / "sql", PYTHON_TABLES, sql_variables())

defs = dg.Definitions(
    assets=[*python_assets, *sql_assets],
    resources={"warehouse": warehouse_resource()},
)
