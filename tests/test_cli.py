"""The `distill` command, run as a real subprocess against the session's pipeline warehouse."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.lib.warehouse import warehouse_lock

DISTILL = str(Path(sys.executable).parent / "distill")
REPO_ROOT = Path(__file__).resolve().parents[1]


def distill(run, *args, stdin=None, **env):
    full_env = {**os.environ, "DISTILL_WAREHOUSE__DIR": str(run.root / "warehouse"),
                "DAGSTER_HOME": str(run.home), **env}
    return subprocess.run([DISTILL, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=300,
                          cwd=REPO_ROOT)


def test_help_on_every_command(pipeline_run):
    from dagster_project.cli.commands import COMMANDS
    for name in COMMANDS:
        out = distill(pipeline_run, name, "--help")
        assert out.returncode == 0 and "usage: distill " + name in out.stdout


def test_sql_table_csv_json_file_and_stdin(pipeline_run, tmp_path):
    out = distill(pipeline_run, "sql", "SELECT count(*) AS n FROM sft_alpaca")
    assert out.returncode == 0, out.stderr
    n = int(out.stdout.splitlines()[2].strip("│ "))
    assert n > 0 and "(1 row)" in out.stdout
    out = distill(pipeline_run, "sql", "--format", "json",
                  "SELECT category, count(*) AS n FROM sft_balanced GROUP BY 1 ORDER BY 1")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sum(r["n"] for r in rows) == n
    query = tmp_path / "q.sql"
    query.write_text("SELECT partition, count(*) AS attempts FROM r1_ledger GROUP BY 1 ORDER BY 1")
    out = distill(pipeline_run, "sql", "-f", str(query), "--format", "csv")
    assert out.stdout.splitlines()[0] == "partition,attempts" and len(out.stdout.splitlines()) == 8
    out = distill(pipeline_run, "sql", stdin="SELECT 41 + 1 AS answer")
    assert "42" in out.stdout


def test_sql_says_busy_instead_of_hanging(pipeline_run):
    db = Path(pipeline_run.warehouse.database)
    with warehouse_lock(db, timeout_s=5, purpose="a long transaction"):
        out = distill(pipeline_run, "sql", "--wait", "1", "SELECT 1")
    assert out.returncode == 3
    assert "busy" in out.stderr and "a long transaction" in out.stderr and "Traceback" not in out.stderr


def test_sql_error_is_one_line(pipeline_run):
    out = distill(pipeline_run, "sql", "SELECT * FROM no_such_table")
    assert out.returncode == 1 and out.stderr.startswith("distill: SQL error:") and "Traceback" not in out.stderr


def test_plan_counts_what_the_journal_already_holds(pipeline_run):
    out = distill(pipeline_run, "plan", "--source", "meta-math-gsm8k-zh")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("│ meta-math-gsm8k-zh"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    selected, requests, journaled, to_send = map(int, cells[2:6])
    assert selected == requests == journaled > 0 and to_send == 0
    # A different sampling parameter makes new requests: all of them would be sent, at a cost.
    out = distill(pipeline_run, "plan", "--source", "meta-math-gsm8k-zh", DISTILL_GENERATION__TEMPERATURE="0.7")
    row = next(line for line in out.stdout.splitlines() if line.startswith("│ meta-math-gsm8k-zh"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert int(cells[5]) == selected and int(cells[6]) > 0 and float(cells[8]) > 0


def test_status_reports_every_source_from_the_journal(pipeline_run):
    out = distill(pipeline_run, "status")
    assert out.returncode == 0, out.stderr
    from dagster_project.partitions import source_partitions
    for key in source_partitions.get_partition_keys():
        assert f"│ {key}" in out.stdout
    assert "r1 (" in out.stdout and "judge (" in out.stdout and "recent Dagster runs" in out.stdout


@pytest.mark.parametrize("env, message", [
    ({"DISTILL_GENERATION__BASE_URL": "https://r1.invalid/v1"}, "environment variable R1_API_KEY is not set"),
    ({"DISTILL_GENERATION__BASE_URL": "http://127.0.0.1:9/v1"}, "is unreachable"),
])
def test_configuration_mistakes_are_one_line(pipeline_run, env, message):
    out = distill(pipeline_run, "run", R1_API_KEY="", **env)
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_unknown_source_key(pipeline_run):
    out = distill(pipeline_run, "plan", "--source", "no-such-source")
    assert out.returncode == 2 and "unknown source key 'no-such-source'" in out.stderr


def test_status_counts_what_the_current_parameters_still_need(pipeline_run):
    out = distill(pipeline_run, "status")
    row = next(line for line in out.stdout.splitlines() if line.startswith("│ meta-math-gsm8k-zh"))
    assert [c.strip() for c in row.strip("│").split("│")][1] == "0"  # everything is journaled
    out = distill(pipeline_run, "status", DISTILL_GENERATION__TEMPERATURE="0.7")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("│ meta-math-gsm8k-zh"))
    selected = int(distill(pipeline_run, "sql", "--format", "csv", "SELECT count(*) FROM prompt_selection WHERE "
                           "source_key = 'meta-math-gsm8k-zh' AND decision = 'selected'").stdout.splitlines()[1])
    assert int([c.strip() for c in row.strip("│").split("│")][1]) == selected > 0


@pytest.mark.parametrize("args, message", [
    (["run", "--source", "nope"], "unknown source key 'nope'"),
    (["run", "--stage", "generate (R1)"], "unknown stage 'generate (R1)'; stages: load_sources, "),
    (["demo", "--source", "nope"], "unknown source key 'nope'"),
])
def test_usage_mistakes_are_one_line_with_exit_code_2(pipeline_run, args, message):
    out = pipeline_run.distill(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_simulate_on_a_busy_port_is_one_line(pipeline_run):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = distill(pipeline_run, "simulate", "--port", str(port))
    assert out.returncode == 2 and f"127.0.0.1:{port} is already in use" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_every_run_records_the_effective_configuration(pipeline_run):
    import dagster as dg

    config_hash = json.loads(pipeline_run.distill("config").stdout)["config_hash"]
    with dg.DagsterInstance.from_config(str(pipeline_run.home)) as instance:
        runs = instance.get_runs(limit=50)
        assert runs and all(r.tags.get("distill/config_hash") for r in runs)
        event = instance.get_latest_materialization_event(dg.AssetKey("prompt_near_duplicates"))
        metadata = event.asset_materialization.metadata
    assert metadata["config_hash"].value == runs[0].tags["distill/config_hash"] == config_hash
    # the stage's own thresholds, as the step used them
    assert metadata["settings"].value == {"near_dup_threshold": 0.8, "near_dup_ngram": 5}
