"""Shared fixtures. Every test runs against its own temporary warehouse and DAGSTER_HOME."""

import os
import tempfile
from pathlib import Path

import pytest

# Isolate the settings before any project module reads them: nothing a test does may touch
# the repo's warehouse/ or the developer's DAGSTER_HOME.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="distill-tests-"))
os.environ["DISTILL_WAREHOUSE__DIR"] = str(_SESSION_TMP / "warehouse")
os.environ["DAGSTER_HOME"] = str(_SESSION_TMP / "dagster_home")
(_SESSION_TMP / "dagster_home").mkdir(exist_ok=True)
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dagster as dg  # noqa: E402

from dagster_project.lib.warehouse import connection_config  # noqa: E402
from dagster_project.resources import WarehouseResource  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# Optional: a folder of the full public source files (gsm8k/, coig_cqia/, xverify/, ... as listed in
# tests/fixtures/*/ORIGIN.md). Tests that read them are skipped when it is not set.
PUBLIC_DATA = Path(os.environ["DISTILL_PUBLIC_DATA"]) if os.environ.get("DISTILL_PUBLIC_DATA") else None


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    return WarehouseResource(database=str(tmp_path / "warehouse.duckdb"), connection_config=connection_config(),
                             lock_timeout_seconds=60)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """The whole pipeline on the bundled samples against the simulator, once per session."""
    from tests.pipeline_fixture import start_run
    run = start_run(tmp_path_factory.mktemp("pipeline"))
    yield run
    run.simulator.close()
