"""The code location loads cleanly, and real separate Dagster runs share one DuckDB file."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project import definitions
from tests.helpers import query

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse")}
    return env


def test_definitions_load_and_resolve():
    defs = definitions.defs
    defs.resolve_all_job_defs()
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_prompts", "stg_prompts", "prompt_selection", "seed_category_targets"} <= keys


def test_dagster_definitions_validate(tmp_path):
    proc = subprocess.run([DAGSTER, "definitions", "validate"], cwd=REPO_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr
    assert "does not match" not in proc.stdout + proc.stderr  # no code-location name warning


@pytest.mark.slow
def test_two_partitions_as_separate_runs_share_one_warehouse(tmp_path):
    env = _env(tmp_path)
    # Create the instance's storage once, as `dagster dev` does, so the two runs don't race to migrate it.
    dg.DagsterInstance.from_config(env["DAGSTER_HOME"]).dispose()
    procs = [
        subprocess.Popen([DAGSTER, "asset", "materialize", "-m", "dagster_project.definitions",
                          "--select", "raw_prompts", "--partition", key],
                         cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for key in ("m-a-p-coig-cqia", "meta-math-gsm8k-zh")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    from dagster_project.resources import WarehouseResource
    wh = WarehouseResource(database=str(tmp_path / "warehouse" / "warehouse.duckdb"))
    counts = dict(query(wh, "select source_key, count(*) from raw_prompts group by 1"))
    assert set(counts) == {"m-a-p-coig-cqia", "meta-math-gsm8k-zh"}
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert {r.tags.get("dagster/partition") for r in runs} == {"m-a-p-coig-cqia", "meta-math-gsm8k-zh"}
