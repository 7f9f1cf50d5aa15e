"""The whole pipeline against the simulator over loopback HTTP: results, resume, routing, secrets, export."""

import json

import dagster as dg
import pyarrow.parquet as pq

from dagster_project.curation import checks
from tests.helpers import query
from tests.pipeline_fixture import FAKE_KEY


def test_every_stage_ran_and_every_selected_prompt_has_one_completion(pipeline_run):
    wh = pipeline_run.warehouse
    selected = query(wh, "SELECT count(*) FROM prompt_selection WHERE decision = 'selected'")[0][0]
    completions = query(wh, "SELECT count(*), count(DISTINCT prompt_id) FROM r1_completions")[0]
    assert completions == (selected, selected)
    assert query(wh, "SELECT count(*) FROM r1_completions WHERE NOT simulated")[0][0] == 0
    # The simulator counted every request: no prompt (R1 or judge) was answered twice.
    stats = pipeline_run.simulator.stats()
    assert stats["ok_per_prompt"] and max(stats["ok_per_prompt"].values()) == 1
    assert stats["responses_200"] == len(stats["ok_per_prompt"])
    assert "done: backfill" in pipeline_run.output and "(0 failed)" in pipeline_run.output


def test_one_backfill_ran_each_partition_once_and_the_shared_work_once(pipeline_run):
    from dagster_project.partitions import source_partitions

    with dg.DagsterInstance.from_config(str(pipeline_run.home)) as instance:
        backfills = instance.get_backfills()
        assert len(backfills) == 1 and backfills[0].title == "distill run: all sources"
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfills[0].backfill_id}))
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        built: dict[str, list[str | None]] = {}
        for run in runs:
            for key in run.asset_selection or []:
                built.setdefault(key.to_user_string(), []).append(run.tags.get("dagster/partition"))
    sources = sorted(source_partitions.get_partition_keys())
    for asset in ("raw_prompts", "r1_completions", "verifications", "int_judge_queue", "judge_scores"):
        assert sorted(built[asset]) == sources, asset
    for asset in ("prompt_selection", "scores", "sft_balanced", "sft_export"):
        assert built[asset] == [None], asset


def test_a_second_run_buys_nothing(pipeline_run, tmp_path):
    before = pipeline_run.simulator.stats()["total_requests"]
    out = pipeline_run.distill("run", "--stage", "generate_and_score")
    assert out.returncode == 0, out.stdout + out.stderr
    assert pipeline_run.simulator.stats()["total_requests"] == before


def test_scores_route_unextractable_math_to_the_correctness_judge(pipeline_run):
    wh = pipeline_run.warehouse
    rows = query(wh, """SELECT s.verify_status, s.score_source, count(*) FROM scores s
                        WHERE s.scoring = 'math_verify' GROUP BY ALL""")
    by = {(v, src): n for v, src, n in rows}
    assert by.get(("correct", "math_verify"), 0) > 0 and by.get(("incorrect", "math_verify"), 0) > 0
    assert by.get(("unextractable", "judge_correctness"), 0) > 0
    assert not any(src == "math_verify" for (v, src) in by if v == "unextractable")
    # STEM/General rows are scored 0-10 by the quality judge; nothing is scored outside 0-10.
    assert query(wh, "SELECT count(*) FROM scores WHERE category IN ('STEM', 'General') "
                     "AND score_source <> 'judge_quality'")[0][0] == 0
    assert query(wh, "SELECT count(*) FROM scores WHERE score < 0 OR score > 10")[0][0] == 0
    # every completion has a score or says why not
    assert query(wh, "SELECT count(*) FROM scores WHERE score IS NULL AND unscored_reason IS NULL")[0][0] == 0


def test_exported_files_equal_the_views(pipeline_run):
    wh = pipeline_run.warehouse
    export_root = pipeline_run.root / "warehouse" / "exports"
    version = (export_root / "LATEST").read_text().strip()
    folder = export_root / version
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["simulated"] is True
    for name, view in (("raw", "sft_raw"), ("sft", "sft_alpaca")):
        parquet = pq.read_table(folder / f"{name}.parquet").to_pylist()
        jsonl = [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        with wh.get_connection() as con:
            expected = con.sql(f"SELECT * FROM {view}").to_arrow_table().to_pylist()
        assert parquet == expected and jsonl == expected and manifest["tables"][name]["rows"] == len(expected)
    assert list(json.loads((folder / "sft.jsonl").read_text(encoding="utf-8").splitlines()[0])) == [
        "instruction", "input", "output", "repo_name", "prompt_tokens_len", "reasoning_content_tokens_len",
        "content_tokens_len", "score"]
    assert (folder / "README.md").exists() and any((folder / "plots").glob("*.png"))


def test_the_api_key_is_nowhere(pipeline_run):
    needle = FAKE_KEY.encode()
    for path in (pipeline_run.root).rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), f"API key found in {path}"


def _check_results(wh):
    return {next(iter(c.check_keys)).name: c(warehouse=wh) for c in checks.ALL_CHECKS}


def test_checks_pass_on_the_pipeline_output(pipeline_run):
    for name, result in _check_results(pipeline_run.warehouse).items():
        assert result.passed, (name, result.description)


def test_checks_fail_on_planted_bad_rows(pipeline_run, tmp_path):
    import shutil

    from dagster_project.lib.warehouse import connection_config
    from dagster_project.resources import WarehouseResource
    copy = tmp_path / "w.duckdb"
    shutil.copy(pipeline_run.warehouse.database, copy)
    wh = WarehouseResource(database=str(copy), connection_config=connection_config())
    with wh.get_connection() as con:
        con.execute("""
            INSERT INTO sft_balanced BY NAME
            SELECT * REPLACE ('' AS content, 11 AS score, 'no think' AS sft_output) FROM sft_balanced LIMIT 1;
            INSERT INTO sft_balanced BY NAME
            SELECT * REPLACE ('my key is sk-abcdefghijklmnopqrstuvwxyz123456' AS reasoning) FROM sft_balanced
            WHERE category = 'General' LIMIT 1;
        """)
    results = _check_results(wh)
    failed = {name for name, r in results.items() if not r.passed}
    assert {"unique_completions", "well_formed_output", "score_in_range", "no_secrets"} <= failed


def test_a_partition_with_nothing_journaled_loads_an_empty_table(tmp_path):
    import pyarrow as pa

    from dagster_project.common.llm_stage import final_rows
    from dagster_project.generation.assets import completions_table
    from dagster_project.lib.llm.journal import Journal
    wanted = pa.table({"request_hash": pa.array([], pa.string()), "prompt_id": pa.array([], pa.string()),
                       "sample_index": pa.array([], pa.int32()), "purpose": pa.array([], pa.string())})
    table = completions_table(final_rows(Journal(tmp_path), "r1", "educhat-math", wanted), "educhat-math")
    assert table.num_rows == 0 and {"model", "status", "attempts", "cost"} <= set(table.column_names)
