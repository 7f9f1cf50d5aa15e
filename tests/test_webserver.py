"""The Dagster UI's server, for real: launch a partition run through GraphQL and read its metadata back."""

import os
import shutil

import pytest

from tests.dagster_dev import REPO_ROOT, dagster_dev, graphql
from tests.process_tree import wait_until

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
MATERIALIZATIONS = """
query($partition: String!) {
  assetOrError(assetKey: {path: ["raw_prompts"]}) {
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        partition
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""


@pytest.mark.slow
def test_launch_a_partition_run_through_graphql(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse")}
    with dagster_dev(env, tmp_path / "dagster-dev.log") as url:
        partition = "educhat-math"
        params = {
            "selector": {"repositoryLocationName": "r1_distill", "repositoryName": "__repository__",
                         "jobName": "load_sources", "assetSelection": [{"path": ["raw_prompts"]}]},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            "runConfigData": {},
        }
        launched = graphql(url, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished():
            status = graphql(url, RUN, {"id": run_id})["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert wait_until(finished, 240, "the run", poll_s=0.5) == "SUCCESS"
        mats = graphql(url, MATERIALIZATIONS, {"partition": partition})["assetOrError"]["assetMaterializations"]
        assert mats and mats[0]["partition"] == partition
        entries = {e["label"]: e.get("intValue") for e in mats[0]["metadataEntries"]}
        assert entries["dagster/partition_row_count"] == 13 and entries["rejected_rows"] == 1
