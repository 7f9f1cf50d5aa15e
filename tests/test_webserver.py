"""The Dagster UI's server, for real: launch a partition run through GraphQL and read its metadata back."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_launch_a_partition_run_through_graphql(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse")}
    port = _free_port()
    server = subprocess.Popen([DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(port)], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        def up():
            try:
                return _graphql(url, "{ version }", {})
            except (urllib.error.URLError, OSError):
                assert server.poll() is None, server.stdout.read()
                return None

        _wait_until(up, 120, "the webserver")
        partition = "educhat-math"
        params = {
            "selector": {"repositoryLocationName": "r1_distill", "repositoryName": "__repository__",
                         "jobName": "load_sources", "assetSelection": [{"path": ["raw_prompts"]}]},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            "runConfigData": {},
        }
        launched = _graphql(url, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished():
            status = _graphql(url, RUN, {"id": run_id})["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert _wait_until(finished, 240, "the run") == "SUCCESS"
        mats = _graphql(url, MATERIALIZATIONS, {"partition": partition})["assetOrError"]["assetMaterializations"]
        assert mats and mats[0]["partition"] == partition
        entries = {e["label"]: e.get("intValue") for e in mats[0]["metadataEntries"]}
        assert entries["dagster/partition_row_count"] == 13 and entries["rejected_rows"] == 1
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
