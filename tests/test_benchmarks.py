"""Every benchmark still runs against the current code: each at a tiny size, in a subprocess, printing JSON."""

import json
import subprocess
import sys

import pytest

from tests.pipeline_fixture import REPO_ROOT

CASES = {
    "sql_scaling": ["--scales", "1", "--base-rows", "3000"],
    "near_dup": ["--rows", "3000"],
    "engine_conditions": ["--conditions", "clean,capped", "--requests", "400", "--concurrency", "50",
                          "--latency", "0.2", "--cap", "25"],
    "verification_accuracy": [],
    "full_run": ["--scale", "0.005"],
}


def last_json(stdout: str) -> dict:
    """The benchmark's result: its last line of JSON, or the JSON document it printed."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_and_prints_json(name, tmp_path):
    out = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / f"{name}.py"), *CASES[name]],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = last_json(out.stdout)
    if name == "engine_conditions":
        assert all(c["every_prompt_answered_once"] for c in result["conditions"].values())
    elif name == "full_run":
        assert result["totals"]["pipeline_seconds"] > 0
    elif name == "verification_accuracy":
        assert result["project"]["ALL"]["false_correct"] == 0 and result["project"]["ALL"]["false_incorrect"] == 0
    else:
        assert result
