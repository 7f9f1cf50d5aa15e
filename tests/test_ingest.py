"""`raw_prompts` through Dagster: every partition, partition replacement, stable ids, metadata."""

import dagster as dg

from dagster_project import definitions
from dagster_project.config import REPO_ROOT
from dagster_project.lib.sources.loader import load_source
from dagster_project.partitions import source_manifests, source_partitions
from tests.helpers import query, resources_for


def _materialize(key, warehouse, instance):
    return dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key=key,
                          resources=resources_for(warehouse), instance=instance)


def test_every_partition_materializes_with_counts(warehouse, instance):
    for key in source_partitions.get_partition_keys():
        result = _materialize(key, warehouse, instance)
        expected = load_source(source_manifests()[key], REPO_ROOT / "assets", REPO_ROOT)
        mat = result.asset_materializations_for_node("raw_prompts")[0]
        assert mat.metadata["dagster/partition_row_count"].value == expected.prompts.num_rows
        assert mat.metadata["rejected_rows"].value == expected.rejected.num_rows
    counts = dict(query(warehouse, "select source_key, count(*) from raw_prompts group by 1"))
    assert set(counts) == set(source_partitions.get_partition_keys())
    reasons = query(warehouse, "select source_key, source_line, reason from rejected_rows order by 1, 2")
    assert ("educhat-math", 11, "rule: the question needs an image, which a text-only model cannot see") in reasons


def test_rematerializing_a_partition_replaces_only_it(warehouse, instance):
    _materialize("educhat-math", warehouse, instance)
    _materialize("meta-math-gsm8k-zh", warehouse, instance)
    before = dict(query(warehouse, "select source_key, count(*) from raw_prompts group by 1"))
    _materialize("educhat-math", warehouse, instance)
    assert dict(query(warehouse, "select source_key, count(*) from raw_prompts group by 1")) == before


def test_prompt_ids_are_stable_across_runs_and_warehouses(tmp_path, instance):
    from dagster_project.lib.warehouse import connection_config
    from dagster_project.resources import WarehouseResource
    ids = []
    for name in ("a", "b"):
        wh = WarehouseResource(database=str(tmp_path / f"{name}.duckdb"), connection_config=connection_config())
        _materialize("m-a-p-coig-cqia", wh, instance)
        ids.append(query(wh, "select prompt_id, question from raw_prompts order by prompt_id"))
    assert ids[0] == ids[1] and len(ids[0]) > 50


def test_broken_input_is_quarantined_through_the_asset(warehouse, instance, tmp_path, monkeypatch):
    import dagster_project.ingest.assets as ingest
    from dagster_project.lib.sources.manifest import parse_manifest
    from tests.test_sources import _broken_manifest
    broken = parse_manifest(_broken_manifest(tmp_path))
    monkeypatch.setattr(ingest, "manifest_for", lambda key: broken)
    result = _materialize("educhat-math", warehouse, instance)
    mat = result.asset_materializations_for_node("raw_prompts")[0]
    assert mat.metadata["rejected_rows"].value == 7
    assert mat.metadata["rejected_by_reason"].value == {"malformed": 2, "encoding": 1, "missing field": 2,
                                                       "empty question": 1, "duplicate": 1}
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("source_manifests", True)]
    rows = query(warehouse, "select source_line, reason from rejected_rows where source_key = 'educhat-math' order by 1")
    assert [r[0] for r in rows] == [2, 3, 4, 5, 6, 7, 8]


def test_an_emptied_source_file_fails_the_run_and_keeps_the_partition(warehouse, instance, tmp_path, monkeypatch):
    import json

    import dagster_project.ingest.assets as ingest
    from dagster_project.lib.sources.manifest import parse_manifest
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "question": f"第{i}题：1+{i}=?", "answer": str(1 + i)},
                                       ensure_ascii=False) + "\n" for i in range(3)), encoding="utf-8")
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'key = "educhat-math"\nrepo = "EduChat-Math"\nlicense = "mit"\n[[files]]\npath = "{data}"\n'
                        'format = "jsonl"\nrepo_name = "EduChat-Math"\ncategory = "Math"\nquestion = "question"\n'
                        'gold = "answer"\ngold_format = "number"\nnative_id = "id"\n', encoding="utf-8")
    monkeypatch.setattr(ingest, "manifest_for", lambda key: parse_manifest(manifest))
    assert _materialize("educhat-math", warehouse, instance).success
    count = "select count(*) from raw_prompts where source_key = 'educhat-math'"
    assert query(warehouse, count) == [(3,)]
    for broken in (b"", b"\n\n", None):  # emptied, blank, vanished
        data.unlink(missing_ok=True)
        if broken is not None:
            data.write_bytes(broken)
        result = dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key="educhat-math",
                                resources=resources_for(warehouse), instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.event_specific_data.error.message
        assert str(data.name) in message and str(manifest) in message and message.count("\n") <= 1, message
        assert ("source file not found" if broken is None else "no records") in message
        assert query(warehouse, count) == [(3,)]  # the partition keeps what it had
