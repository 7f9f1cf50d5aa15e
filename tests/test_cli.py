"""The `distill` command, run as a real subprocess against the session's pipeline warehouse."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.lib.warehouse import warehouse_lock

DISTILL = str(Path(sys.executable).parent / "distill")


def distill(run, *args, stdin=None, **env):
    full_env = {**os.environ, "DISTILL_WAREHOUSE__DIR": str(run.root / "warehouse"),
                "DAGSTER_HOME": str(run.home), **env}
    return subprocess.run([DISTILL, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=300)


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
    assert "r1 journal" in out.stdout and "judge journal" in out.stdout and "recent Dagster runs" in out.stdout


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
