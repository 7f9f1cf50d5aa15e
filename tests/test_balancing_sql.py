"""Category balancing in SQL (sft_category_balance, sft_balanced) on hand-made candidates."""

from pathlib import Path

import duckdb
import pytest

from dagster_project.sql_models import discover_models, set_variables

MODELS = {m.name: m for m in discover_models(Path(__file__).resolve().parents[1] / "sql")}
TARGETS = {"Math": 40, "Exam": 10, "STEM": 20, "General": 30}


def build(available: dict[str, int], mode: str, seed: str = "7", repos: int = 2) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE seed_category_targets (category VARCHAR, target_rows BIGINT, min_score BIGINT)")
    con.executemany("INSERT INTO seed_category_targets VALUES (?, ?, 0)", list(TARGETS.items()))
    con.execute("""CREATE TABLE int_sft_candidates (completion_id VARCHAR, prompt_id VARCHAR, category VARCHAR,
                   repo_name VARCHAR, score DOUBLE, keep BOOLEAN)""")
    con.execute("CREATE TABLE r1_completions (completion_id VARCHAR, prompt_id VARCHAR, reasoning VARCHAR, content VARCHAR)")
    con.execute("CREATE TABLE prompt_selection (prompt_id VARCHAR, question VARCHAR)")
    rows = []
    for category, n in available.items():
        for i in range(n):
            rows.append((f"{category}-{i}", f"p-{category}-{i}", category, f"{category}/repo{i % repos}",
                         float(10 - (i // 10) % 4), True))
        rows.append((f"{category}-dropped", f"p-{category}-dropped", category, "r", 10.0, False))
    con.executemany("INSERT INTO int_sft_candidates VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO r1_completions VALUES (?, ?, ?, ?)",
                    [(r[0], r[1], f"想法{r[0]}", f"答案{r[0]}") for r in rows])
    con.executemany("INSERT INTO prompt_selection VALUES (?, ?)", [(r[1], f"问题{r[0]}") for r in rows])
    set_variables(con, {"balance_mode": mode, "balance_seed": seed})
    for name in ("sft_category_balance", "sft_balanced"):
        con.execute(f'CREATE TABLE "{name}" AS {MODELS[name].sql}')
    return con


def plan(con) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in con.execute(
        "SELECT category, available, wanted_rows, selected_rows, shortfall FROM sft_category_balance").fetchall()}


def test_ratios_keep_the_target_distribution_scaled_to_the_scarcest_category():
    con = build({"Math": 100, "Exam": 5, "STEM": 50, "General": 100}, "ratios")
    # Exam limits: 5 of 10 -> every target halves.
    assert plan(con) == {"Math": (100, 20, 20, 0), "Exam": (5, 5, 5, 0), "STEM": (50, 10, 10, 0),
                         "General": (100, 15, 15, 0)}
    counts = dict(con.execute("SELECT category, count(*) FROM sft_balanced GROUP BY 1").fetchall())
    assert counts == {"Math": 20, "Exam": 5, "STEM": 10, "General": 15}
    assert con.execute("SELECT count(*) FROM sft_balanced WHERE completion_id LIKE '%dropped'").fetchall()[0][0] == 0
    # the texts are joined back by completion and prompt, never mixed up
    texts = con.execute("SELECT completion_id, question_text, reasoning, content FROM sft_balanced").fetchall()
    assert texts and all((q, r, a) == (f"问题{c}", f"想法{c}", f"答案{c}") for c, q, r, a in texts)


def test_counts_mode_reports_a_shortfall():
    con = build({"Math": 100, "Exam": 5, "STEM": 50, "General": 100}, "counts")
    assert plan(con)["Exam"] == (5, 10, 5, 5)
    assert plan(con)["Math"] == (100, 40, 40, 0)


def test_an_empty_category_is_a_shortfall_not_a_zero_dataset():
    con = build({"Math": 100, "Exam": 0, "STEM": 50, "General": 100}, "ratios")
    p = plan(con)
    assert p["Exam"][2] == 0 and p["Exam"][3] == p["Exam"][1] > 0
    assert p["Math"][2] > 0


def test_higher_scores_first_spread_across_repos_and_seeded():
    con = build({"Math": 100, "Exam": 5, "STEM": 50, "General": 100}, "ratios")
    worst_kept = con.execute("SELECT min(score) FROM sft_balanced WHERE category = 'Math'").fetchall()[0][0]
    best_left = con.execute("""SELECT max(score) FROM int_sft_candidates WHERE keep AND category = 'Math'
                               AND completion_id NOT IN (SELECT completion_id FROM sft_balanced)""").fetchall()[0][0]
    assert worst_kept >= best_left
    repos = dict(con.execute("SELECT repo_name, count(*) FROM sft_balanced WHERE category = 'Math' "
                             "GROUP BY 1").fetchall())
    assert sorted(repos.values()) == [10, 10]
    same = build({"Math": 100, "Exam": 5, "STEM": 50, "General": 100}, "ratios")
    other = build({"Math": 100, "Exam": 5, "STEM": 50, "General": 100}, "ratios", seed="8")
    q = "SELECT completion_id FROM sft_balanced ORDER BY 1"
    assert con.execute(q).fetchall() == same.execute(q).fetchall()
    assert con.execute(q).fetchall() != other.execute(q).fetchall()


@pytest.mark.parametrize("mode", ["ratios", "counts"])
def test_sft_output_matches_the_python_normalization(mode):
    from dagster_project.lib.llm.parsing import sft_output
    con = build({"Math": 10, "Exam": 1, "STEM": 5, "General": 10}, mode)
    for reasoning, content, output in con.execute("SELECT reasoning, content, sft_output FROM sft_balanced").fetchall():
        assert output == sft_output(reasoning, content)
