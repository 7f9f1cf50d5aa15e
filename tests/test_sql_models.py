"""The SQL model layer: dependency inference, load-time errors, and the prompt models."""

from pathlib import Path

import dagster as dg
import pytest

from dagster_project import definitions
from dagster_project.sql_models import (
    SqlModelError,
    build_sql_assets,
    discover_models,
    referenced_tables,
)
from tests.helpers import load_all_sources, query, resources_for

SQL_ROOT = Path(__file__).resolve().parents[1] / "sql"


def test_dependencies_come_from_the_sql_not_the_cte_names():
    models = {m.name: m for m in discover_models(SQL_ROOT)}
    assert models["stg_prompts"].tables == {"raw_prompts", "seed_category_targets"}
    assert models["int_prompts_deduped"].tables == {"stg_prompts"}
    assert {"int_prompts_deduped", "prompt_near_duplicates", "prompt_contamination",
            "seed_category_targets"} <= models["prompt_selection"].tables
    # CTE names such as `ranked` or `flagged` are never mistaken for tables.
    assert not {"source", "ranked", "flagged", "eligible"} & set().union(*(m.tables for m in models.values()))


def test_asset_graph_matches_the_sql():
    graph = definitions.defs.resolve_asset_graph()
    deps = {k.to_user_string() for k in graph.get(dg.AssetKey("stg_prompts")).parent_keys}
    assert deps == {"raw_prompts", "seed_category_targets"}


def test_table_functions_and_subqueries():
    sql = "with a as (select * from read_parquet('x/*.parquet')) select * from a join (select * from t2) b using (id)"
    assert referenced_tables(sql, Path("m.sql")) == {"t2"}


def test_unknown_table_fails_at_load_with_file_and_name(tmp_path):
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "stg_bad.sql").write_text("select * from raw_promts")
    with pytest.raises(SqlModelError, match=r"stg_bad.sql: unknown table 'raw_promts'"):
        build_sql_assets(tmp_path, {"raw_prompts": dg.AssetKey("raw_prompts")}, {})


def test_a_model_must_be_one_select(tmp_path):
    (tmp_path / "m.sql").write_text("delete from raw_prompts")
    with pytest.raises(SqlModelError, match="exactly one SELECT"):
        discover_models(tmp_path)


def test_prompt_models_normalize_dedup_and_select(warehouse, instance):
    load_all_sources(warehouse, instance)
    loaded = query(warehouse, "select count(*) from raw_prompts")[0][0]
    decided = query(warehouse, "select decision, count(*) from prompt_selection group by 1")
    assert sum(n for _, n in decided) == loaded  # every loaded prompt has exactly one decision

    # Cross-source duplicate: the neo row differs only by spacing and a half-width comma.
    rows = query(warehouse, """
        select p.source_key, p.decision, w.source_key
        from prompt_selection p join prompt_selection w on w.prompt_id = p.replaced_by
        where p.decision = 'exact_duplicate' and p.source_key <> w.source_key""")
    assert rows == [("m-a-p-neo-sft-phase2", "exact_duplicate", "m-a-p-coig-cqia")]

    # Decontamination: the bundled kaoyan rows 15-17 overlap the LIMO kaoyan evaluation set.
    rows = query(warehouse, """
        select matched_eval_item from prompt_selection where decision = 'contaminated' order by 1""")
    assert len(rows) == 3 and all(r[0].startswith("limo_kaoyan:") for r in rows)

    # The math suffix is added to the request only, for the categories that ask for it.
    suffix = "请一步步推理，并把最终答案放到 \\boxed{}。"
    rows = query(warehouse, "select category, question, prompt_text from stg_prompts")
    for category, question, prompt_text in rows:
        assert suffix not in question
        assert prompt_text.endswith(suffix) == (category in ("Math", "Exam"))

    # Normalization folds full-width forms, whitespace and invisible characters for matching.
    assert query(warehouse, "select count(*) from stg_prompts where question_norm ~ '[\\s\\x{200B}，]'")[0][0] == 0


def test_quota_is_respected_and_deterministic(warehouse, instance, tmp_path):
    load_all_sources(warehouse, instance)
    with warehouse.get_connection() as con:
        con.execute("update seed_category_targets set prompt_quota = 5 where category = 'General'")
    result = dg.materialize(definitions.defs.assets, selection=["prompt_selection"],
                            resources=resources_for(warehouse), instance=instance)
    assert result.success
    first = query(warehouse, "select prompt_id from prompt_selection where category = 'General' "
                             "and decision = 'selected' order by 1")
    assert len(first) == 5
    # Spread across repos: 5 picks from 5+ General repos take one from each before any repeats.
    repos = query(warehouse, "select count(distinct repo_name) from prompt_selection where category = 'General' "
                             "and decision = 'selected'")[0][0]
    assert repos == 5
    dg.materialize(definitions.defs.assets, selection=["prompt_selection"],
                   resources=resources_for(warehouse), instance=instance)
    assert query(warehouse, "select prompt_id from prompt_selection where category = 'General' "
                            "and decision = 'selected' order by 1") == first
