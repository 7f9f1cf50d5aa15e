"""The `verifications` asset stores what it compared; `judge_scores` reports its agreement with it."""

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from dagster_project import definitions
from dagster_project.lib.verify.checker import VERIFIER_VERSION
from dagster_project.partitions import source_partitions
from dagster_project.scoring.judging import AUDIT_SQL, audit_metadata
from dagster_project.scoring.verification import SCHEMA
from tests.helpers import query, resources_for

PARTITION = "m-a-p-coig-cqia"
NEW_COLUMNS = {"parsed_answer", "method", "answer_source", "rules", "verifier_version"}
ROWS = [  # (completion_id, content, gold_answer, gold_format)
    ("c1", "<think>试 \\boxed{41}</think>…得到 \\boxed{41}，……最终答案为 \\boxed{42}", "42", "number"),
    ("c2", "<think>嗯</think>**答案：C**", "……故本题选C。", "cqia_answer_tail"),
    ("c3", "<think>嗯</think>\\boxed{16，17}", "$16，17$", "latex"),
    ("c4", "<think>嗯</think>\\boxed{3\\text{万}}", "3", "number"),
    ("c5", "<think>嗯</think>\\boxed{错误}", "错误\n\n依照我国继承法……", "cqia_answer_tail"),
    ("c6", "<think>嗯</think>\\boxed{1,3,4}", "(1)(3)(4)", "latex"),
]


def setup_inputs(warehouse, *, old_table: bool) -> None:
    with warehouse.get_connection() as con:
        con.execute("CREATE TABLE r1_completions (completion_id VARCHAR, prompt_id VARCHAR, content VARCHAR, "
                    "source_key VARCHAR, status VARCHAR)")
        con.execute("CREATE TABLE prompt_selection (prompt_id VARCHAR, gold_answer VARCHAR, gold_format VARCHAR, "
                    "scoring VARCHAR)")
        for cid, content, gold, fmt in ROWS:
            con.execute("INSERT INTO r1_completions VALUES (?, ?, ?, ?, 'ok')", [cid, f"p{cid}", content, PARTITION])
            con.execute("INSERT INTO prompt_selection VALUES (?, ?, ?, 'math_verify')", [f"p{cid}", gold, fmt])
        if old_table:  # a warehouse written before the audit columns existed, with another partition's row
            old = pa.schema([f for f in SCHEMA if f.name not in NEW_COLUMNS])
            con.register("old_rows", pa.Table.from_pylist(
                [{"completion_id": "old", "source_key": "meta-math-gsm8k-zh", "status": "correct", "cache_key": "k"}],
                schema=old))
            con.execute("CREATE TABLE verifications AS SELECT * FROM old_rows")


def materialize(warehouse, instance):
    result = dg.materialize(definitions.defs.assets, selection=["verifications"], partition_key=PARTITION,
                            resources=resources_for(warehouse), instance=instance)
    assert result.success
    return result.asset_materializations_for_node("verifications")[0].metadata


@pytest.mark.parametrize("old_table", [False, True])
def test_every_row_says_what_was_compared(warehouse, instance, old_table):
    setup_inputs(warehouse, old_table=old_table)
    metadata = materialize(warehouse, instance)
    got = {r[0]: r[1:] for r in query(warehouse, """
        SELECT completion_id, status, extracted_answer, parsed_answer, parsed_gold, method, answer_source, rules,
               verifier_version
        FROM verifications WHERE source_key = ? ORDER BY 1""", [PARTITION])}
    assert got["c1"] == ("correct", "42", "42", "42", "math_verify", "box", None, VERIFIER_VERSION)
    assert got["c2"][:6] == ("correct", "C", "{C}", "{C}", "option_set", "phrase")
    assert got["c3"][:6] == ("correct", "16，17", "16 | 17", "16 | 17", "math_verify_parts", "box")
    assert got["c4"][0] == "unextractable" and got["c4"][4] is None and got["c4"][6] == "magnitude"
    assert got["c5"][:5] == ("correct", "错误", "错误", "错误", "true_false")
    assert got["c6"][:5] == ("correct", "1,3,4", "(1)(3)(4)", "(1)(3)(4)", "statement_set")
    assert metadata["by_method"].value["option_set"] == 1
    assert metadata["verifier_version"].value == VERIFIER_VERSION
    if old_table:  # the other partition's row is kept, its new columns empty
        assert query(warehouse, "SELECT status, method FROM verifications WHERE completion_id = 'old'") == [("correct", None)]
    # a second run reuses every result: same answer, gold and versions
    assert materialize(warehouse, instance)["reused_from_cache"].value == len(ROWS)


def audit_tables() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE verifications AS SELECT * FROM (VALUES "
                "('a1', 'correct', 'math_verify'), ('a2', 'incorrect', 'math_verify'), ('a3', 'correct', 'option_set'), "
                "('a4', 'correct', 'option_set'), ('r1', 'unextractable', NULL)) t(completion_id, status, method)")
    con.execute("CREATE TABLE int_judge_queue AS SELECT * FROM (VALUES "
                "('a1', true), ('a2', true), ('a3', true), ('a4', true), ('r1', false)) t(completion_id, is_audit)")
    con.execute("CREATE TABLE judge_scores AS SELECT * FROM (VALUES "
                "('a1', 's', 'correctness', 'scored', true), ('a2', 's', 'correctness', 'scored', true), "
                "('a3', 's', 'correctness', 'scored', true), ('a4', 's', 'correctness', 'unscored', NULL), "
                "('r1', 's', 'correctness', 'scored', false)) t(completion_id, source_key, judge_kind, status, verdict)")
    return con


def test_the_judge_audit_reports_its_agreement_with_the_verifier():
    rows = audit_tables().execute(AUDIT_SQL, ["s"]).fetchall()
    assert sorted(rows) == [("math_verify", 2, 1), ("option_set", 1, 1)]  # routed and unscored rows are not audits
    meta = audit_metadata(rows)
    assert (meta["verifier_audit_rows"], meta["verifier_audit_agreements"]) == (3, 2)
    assert meta["verifier_audit_agreement_rate"].value == 0.667
    assert "| math_verify | 2 | 1 | 0.500 |" in meta["verifier_audit_by_method"].value
    assert audit_metadata([]) == {"verifier_audit_rows": 0, "verifier_audit_agreements": 0}


def test_the_pipeline_run_stores_the_audit_columns_and_figures(pipeline_run):
    wh = pipeline_run.warehouse
    undocumented = query(wh, "SELECT count(*) FROM verifications WHERE status IN ('correct', 'incorrect') "
                             "AND (method IS NULL OR parsed_answer IS NULL OR answer_source IS NULL)")
    assert undocumented == [(0,)]
    assert query(wh, "SELECT count(*) FROM verifications WHERE status = 'unextractable' AND error IS NULL") == [(0,)]
    audited = {}
    with dg.DagsterInstance.from_config(str(pipeline_run.home)) as instance:
        for key in source_partitions.get_partition_keys():
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("judge_scores"), asset_partitions=[key]), limit=1).records
            if records:
                metadata = records[0].asset_materialization.metadata
                audited[key] = (metadata["verifier_audit_rows"].value, metadata["verifier_audit_agreements"].value)
    assert audited
    for key, (rows, agreements) in audited.items():
        expected = query(wh, AUDIT_SQL, [key])
        assert rows == sum(n for _, n, _ in expected) and agreements == sum(a for _, _, a in expected), key
