"""The spending guard stops a paid run cleanly, and the next run resumes without re-buying."""

import dagster as dg
import pytest

from dagster_project import definitions
from dagster_project.config import reload_config
from dagster_project.resources import R1Endpoint
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process
from tests.helpers import load_all_sources, query, resources_for


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_WAREHOUSE__DIR", str(tmp_path / "warehouse"))
    reload_config()
    yield tmp_path
    monkeypatch.undo()
    reload_config()


def test_cap_stops_then_the_next_run_finishes_without_rebuying(isolated, warehouse, instance):
    load_all_sources(warehouse, instance)
    key = "gavinluo-applied-math"
    selected = query(warehouse, "SELECT count(*) FROM prompt_selection WHERE source_key = ? AND decision = 'selected'",
                     [key])[0][0]
    with start_simulator_process(SimulatorSettings(latency_scale=0.0)) as sim:
        capped = {**resources_for(warehouse), "r1": R1Endpoint(base_url=sim.base_url, concurrency=2, min_concurrency=2)}
        result = dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key=key,
                                resources=capped, instance=instance, raise_on_error=False,
                                run_config={"ops": {"r1_completions": {"config": {"max_requests_per_run": 7}}}})
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "spending cap reached" in failure.event_specific_data.error.message
        # What was bought is loaded (and journaled): exactly the cap, nothing more.
        assert query(warehouse, "SELECT count(*) FROM r1_completions WHERE source_key = ?", [key])[0][0] == 7
        assert sim.stats()["responses_200"] == 7

        uncapped = {**resources_for(warehouse), "r1": R1Endpoint(base_url=sim.base_url)}
        result = dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key=key,
                                resources=uncapped, instance=instance)
        assert result.success
        stats = sim.stats()
        assert stats["responses_200"] == selected and max(stats["ok_per_prompt"].values()) == 1
        assert query(warehouse, "SELECT count(*) FROM r1_completions WHERE source_key = ?", [key])[0][0] == selected
