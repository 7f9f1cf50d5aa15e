"""A backfill of two sources launched the way the UI launches it, executed by `dagster dev`'s daemon.

After a full pipeline run, the UI's asset-graph "Materialize" with two partitions chosen (the
GraphQL `launchPartitionBackfill` mutation the UI sends) must build each partitioned asset once
per chosen source, the shared models and the export once, and leave every partition that was not
touched up to date (not "Unsynced"), since re-materializing a model with the same content keeps
its data version.
"""

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.dagster_dev import dagster_dev, graphql
from tests.process_tree import wait_until

CHOSEN = ["educhat-math", "meta-math-gsm8k-zh"]
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL = "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"
STALE_PARTITIONS = """
query($path: [String!]!, $partitions: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode { staleStatusByPartition(partitions: $partitions) } }
}"""
STALE = """
query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode { staleStatus } } }"""
PARTITIONED = ["raw_prompts", "r1_completions", "verifications", "int_judge_queue", "judge_scores"]
SHARED = ["stg_prompts", "prompt_selection", "scores", "sft_balanced", "sft_export"]


def _materializations(home: Path) -> dict[tuple[str, str | None], int]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        out = {}
        for name in PARTITIONED + SHARED:
            records = instance.fetch_materializations(dg.AssetKey(name), limit=1000).records
            for record in records:
                key = (name, record.partition_key)
                out[key] = out.get(key, 0) + 1
        return out


@pytest.mark.slow
def test_a_ui_backfill_of_two_sources_runs_shared_work_once_and_stales_nothing(pipeline_run, tmp_path):
    from dagster_project.partitions import source_partitions

    root = tmp_path / "copy"
    shutil.copytree(pipeline_run.root / "warehouse", root / "warehouse")
    shutil.copytree(pipeline_run.home, root / "dagster_home")
    exports = root / "warehouse" / "exports"
    versions_before = {p.name for p in exports.iterdir() if p.is_dir()}
    counts_before = _materializations(root / "dagster_home")

    env = {**pipeline_run.env(), "DAGSTER_HOME": str(root / "dagster_home"),
           "DISTILL_WAREHOUSE__DIR": str(root / "warehouse")}
    with dagster_dev(env, tmp_path / "dagster-dev.log") as url:
        keys = graphql(url, "{ assetNodes { assetKey { path } isMaterializable } }", {})["assetNodes"]
        params = {"assetSelection": [{"path": k["assetKey"]["path"]} for k in keys if k["isMaterializable"]],
                  "partitionNames": CHOSEN, "fromFailure": False, "tags": []}
        launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        started = time.monotonic()

        def finished():
            status = graphql(url, BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]["status"]
            return status if status not in ("REQUESTED", "CANCELING") else None

        assert wait_until(finished, 420, "the backfill", poll_s=0.5) == "COMPLETED_SUCCESS"
        print(f"backfill of {len(CHOSEN)} sources through the daemon: {time.monotonic() - started:.0f} s")

        # One backfill, one export.
        assert len({p.name for p in exports.iterdir() if p.is_dir()} - versions_before) == 1
        # Each partitioned asset once per chosen source and never for another; shared assets once.
        new = {k: n - counts_before.get(k, 0) for k, n in _materializations(root / "dagster_home").items()}
        for name in PARTITIONED:
            for source in source_partitions.get_partition_keys():
                assert new.get((name, source), 0) == (1 if source in CHOSEN else 0), (name, source)
        for name in SHARED:
            assert new.get((name, None), 0) == 1, name
        # Nothing the backfill did not touch is reported stale.
        untouched = [s for s in source_partitions.get_partition_keys() if s not in CHOSEN]
        for name in PARTITIONED:
            node = graphql(url, STALE_PARTITIONS, {"path": [name], "partitions": untouched})["assetNodeOrError"]
            assert set(node["staleStatusByPartition"]) == {"FRESH"}, (name, node)
        for name in SHARED:
            node = graphql(url, STALE, {"path": [name]})["assetNodeOrError"]
            assert node["staleStatus"] == "FRESH", (name, node)
