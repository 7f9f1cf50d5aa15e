"""`distill publish` as a real subprocess on the session pipeline's (simulated) export, and the
publish_to_hub job run by Dagster, both against the loopback Hub."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from hub_double import HubDouble
from publish_testdata import TOKEN, files_of

DISTILL = str(Path(sys.executable).parent / "distill")


def distill(run, hub_url, *args, **env):
    full_env = {**os.environ, "DISTILL_WAREHOUSE__DIR": str(run.root / "warehouse"), "DAGSTER_HOME": str(run.home),
                "DISTILL_PUBLISH__ENDPOINT": hub_url, "DISTILL_PUBLISH__REPO_ID": "someone/zh-r1",
                "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", **env}
    return subprocess.run([DISTILL, "publish", *args], capture_output=True, text=True, env=full_env, timeout=300)


def latest_export(run) -> Path:
    root = run.root / "warehouse" / "exports"
    return root / (root / "LATEST").read_text().strip()


def test_dry_run_lists_files_and_target_and_sends_nothing(pipeline_run):
    export = latest_export(pipeline_run)
    with HubDouble(TOKEN) as hub:
        out = distill(pipeline_run, hub.url, "--dry-run")
        allowed = distill(pipeline_run, hub.url, "--dry-run", "--allow-simulated", "--public")
    assert hub.calls == []
    assert out.returncode == 2, out.stderr
    assert f"-> {hub.url}/datasets/someone/zh-r1 (dataset repo; created private if new)" in out.stdout
    for name in files_of(export):
        assert f"  {name} " in out.stdout
    assert "environment variable HF_TOKEN is set; nothing was sent" in out.stdout
    assert out.stderr.startswith("distill: export ") and "SIMULATED" in out.stderr and "--allow-simulated" in out.stderr
    assert allowed.returncode == 0 and "created public if new" in allowed.stdout
    assert TOKEN not in out.stdout + out.stderr + allowed.stdout + allowed.stderr


def test_a_simulated_export_is_refused_without_the_flag(pipeline_run):
    with HubDouble(TOKEN) as hub:
        refused = distill(pipeline_run, hub.url)
        no_token = distill(pipeline_run, hub.url, "--allow-simulated", HF_TOKEN="")
        assert hub.calls == []
        # A Hub-compatible server without Xet storage: the client is told to use plain LFS.
        published = distill(pipeline_run, hub.url, "--allow-simulated", "--message", "Demo {version}",
                            HF_HUB_DISABLE_XET="1")
    assert refused.returncode == 2 and "SIMULATED" in refused.stderr and "Traceback" not in refused.stderr
    assert no_token.returncode == 2 and "HF_TOKEN is not set" in no_token.stderr
    assert published.returncode == 0, published.stderr[-2000:]
    export = latest_export(pipeline_run)
    repo = hub.repos["someone/zh-r1"]
    assert {p: d for p, d in repo.files.items() if p != ".gitattributes"} == files_of(export)
    assert repo.lfs_paths == {p for p in files_of(export) if p.endswith((".parquet", ".png"))}
    assert [c["summary"] for c in repo.commits] == [f"Demo {export.name}"]
    assert f"published: {hub.url}/datasets/someone/zh-r1/commit/" in published.stdout
    assert TOKEN not in published.stdout + published.stderr
    with dg.DagsterInstance.from_config(str(pipeline_run.home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("hub_dataset"))
    metadata = event.asset_materialization.metadata
    assert metadata["version"].value == export.name and metadata["commit"].value.endswith(repo.commits[0]["oid"])


def test_the_publish_job_records_hub_dataset(pipeline_run, monkeypatch, online):
    from dagster_project.config import reload_config
    from dagster_project.publish.hub import publish_to_hub

    export = latest_export(pipeline_run)
    monkeypatch.setenv("DISTILL_WAREHOUSE__DIR", str(pipeline_run.root / "warehouse"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubDouble(TOKEN, lfs=False) as hub, dg.instance_for_test() as instance:
        monkeypatch.setenv("DISTILL_PUBLISH__ENDPOINT", hub.url)
        reload_config()
        op_config = {"repo_id": "org/from-launchpad", "allow_simulated": False}
        refused = publish_to_hub.execute_in_process(run_config={"ops": {"publish_export": {"config": op_config}}},
                                                    instance=instance, raise_on_error=False)
        dry = publish_to_hub.execute_in_process(
            run_config={"ops": {"publish_export": {"config": {**op_config, "dry_run": True,
                                                              "allow_simulated": True}}}}, instance=instance)
        assert hub.calls == [] and instance.get_latest_materialization_event(dg.AssetKey("hub_dataset")) is None
        done = publish_to_hub.execute_in_process(
            run_config={"ops": {"publish_export": {"config": {**op_config, "allow_simulated": True}}}},
            instance=instance)
        event = instance.get_latest_materialization_event(dg.AssetKey("hub_dataset"))
        run_config = str(instance.get_run_by_id(done.run_id).run_config)
    reload_config()
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "SIMULATED" in str(failure.event_specific_data.error)
    assert dry.success and done.success
    assert files_of(export) == {p: d for p, d in hub.repos["org/from-launchpad"].files.items()
                                if p != ".gitattributes"}
    assert event.asset_materialization.metadata["repo"].value == f"{hub.url}/datasets/org/from-launchpad"
    assert TOKEN not in run_config and "HF_TOKEN" not in run_config
