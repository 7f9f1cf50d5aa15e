"""The SQL layer alone at 1x and 10x rows: how each model's cost grows with size.

Builds synthetic inputs directly in a fresh DuckDB file - `raw_prompts` and the seed, then the
Python-asset tables (`prompt_near_duplicates`, `prompt_contamination`, `r1_completions`,
`verifications`, `judge_scores`, `response_near_duplicates`) just before the first model that
reads them - and runs every `sql/**/*.sql` model in dependency order exactly as the asset factory
does (`set_variables`, then `CREATE OR REPLACE TABLE|VIEW ... AS <model>`). Only the models are
timed. Prints one JSON line per model and a summary; --out writes the whole result.

    python benchmarks/sql_scaling.py --scales 1 10 --out benchmarks/results/sql_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from benchmarks.full_run import machine_info  # noqa: E402
from dagster_project.lib.warehouse import connection_config  # noqa: E402
from dagster_project.sql_models import discover_models, set_variables  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_ROWS = 110_000
# published mix: Math 36,568 / Exam 2,432 / STEM 12,648 / General 58,352 (cumulative shares)
CATEGORY_SQL = """case
    when i % 110000 < 36568 then 'Math' when i % 110000 < 39000 then 'Exam'
    when i % 110000 < 51648 then 'STEM' else 'General' end"""
TEXT = ("嗯，我现在要解决这个问题。首先，我需要明确题目给出的条件，把已知量和未知量分别列出来。然后，我应该考虑一下有没有"
        "什么公式可以直接用上。这里可能需要分情况讨论，先看第一种情况。不过，我是不是漏掉了什么？再检查一下题目的条件。"
        "等等，刚才那一步好像有问题，我重新算一遍。接下来，把前面得到的式子代入，化简一下。让我换一个角度来思考。") * 4


def _text(seed: str, lo: int, hi: int) -> str:
    """SQL for a Chinese text of lo..hi characters that varies with `seed` (an integer expression)."""
    return (f"substr(repeat('{TEXT}', 1 + {hi} // {len(TEXT)}), 1 + ({seed} * 7919) % 97, "
            f"{lo} + ({seed} * 104729) % {hi - lo + 1})")


def inputs(n: int, factor: int, reasoning: tuple[int, int]) -> dict[str, str]:
    """SQL that creates each input table, keyed by table name."""
    exact, near = n // 50, n // 100  # 2% exact duplicates (extra rows), 1% near-duplicates
    return {
        "seed_category_targets": f"""
            CREATE OR REPLACE TABLE seed_category_targets AS
            SELECT category, target_rows * {factor} AS target_rows, prompt_quota * {factor} AS prompt_quota,
                   min_score, append_math_suffix, scoring
            FROM read_csv('{REPO_ROOT / "assets/seeds/category_targets.csv"}', header = true)""",
        "raw_prompts": f"""
            CREATE OR REPLACE TABLE raw_prompts AS
            WITH base AS (SELECT range AS i, range AS q FROM range({n})
                          UNION ALL SELECT {n} + range, (range * 37) % {n} FROM range({exact}))
            SELECT printf('p%012d', i) AS prompt_id, 'src-' || (i % 7) AS source_key,
                   'repo/' || (i % 17) AS repo_name, '' AS subset, {CATEGORY_SQL.replace('i %', 'hash(q) %')} AS category,
                   {_text('q', 20, 400)} || '第' || q || '题' || CASE WHEN i >= {n} THEN '　' ELSE '' END AS question,
                   CASE WHEN hash(q) % 110000 < 39000 THEN CAST(q % 1000 AS VARCHAR) END AS gold_answer,
                   CASE WHEN hash(q) % 110000 < 39000 THEN 'number' ELSE 'none' END AS gold_format,
                   CAST(i AS VARCHAR) AS native_id, 'data/src-' || (i % 7) || '.jsonl' AS source_file,
                   i AS source_line, '{{"id": ' || i || '}}' AS native_record, now() AS loaded_at
            FROM base""",
        "prompt_near_duplicates": f"""
            CREATE OR REPLACE TABLE prompt_near_duplicates AS
            SELECT printf('p%012d', range * 97 + 1) AS duplicate_id, printf('p%012d', range * 97) AS kept_id,
                   0.85 AS similarity FROM range({near})""",
        "prompt_contamination": f"""
            CREATE OR REPLACE TABLE prompt_contamination AS
            SELECT printf('p%012d', range * 997 + 5) AS prompt_id, 'gsm8k_test' AS eval_set,
                   CAST(range AS VARCHAR) AS eval_id, 0.6 AS overlap, '某个重叠的片段' AS matched_ngram
            FROM range({n // 1000})""",
        "r1_completions": f"""
            CREATE OR REPLACE TABLE r1_completions AS
            SELECT md5(prompt_id) AS completion_id, prompt_id, source_key, 0::INTEGER AS sample_index,
                   'deepseek-r1' AS model, CASE WHEN h % 200 = 0 THEN 'error' ELSE 'ok' END AS status,
                   'stop' AS finish_reason, {_text('h', *reasoning)} AS reasoning,
                   {_text('h + 3', 200, 900)} || ' 最终答案是 $\\boxed{{' || (h % 1000) || '}}$。' AS content,
                   (h % 300 + 20)::INTEGER AS prompt_tokens_len, (h % 3000 + 800)::INTEGER AS reasoning_tokens_len,
                   (h % 400 + 100)::INTEGER AS content_tokens_len, (h % 300 + 25)::BIGINT AS usage_prompt_tokens,
                   (h % 3400 + 900)::BIGINT AS usage_completion_tokens, 0.05 AS cost, 'CNY' AS currency,
                   1.5 AS latency_s, 0.3 AS ttft_s, 1::BIGINT AS attempts, NULL::VARCHAR AS error_type,
                   NULL::VARCHAR AS error_message, true AS simulated, now() AS finished_at, 'bench' AS run_id
            FROM (SELECT *, CAST(hash(prompt_id) % 1000003 AS BIGINT) AS h FROM prompt_selection WHERE decision = 'selected')""",
        "verifications": """
            CREATE OR REPLACE TABLE verifications AS
            SELECT c.completion_id, c.source_key, c.prompt_id,
                   CASE WHEN hash(c.completion_id) % 10 < 7 THEN 'correct' WHEN hash(c.completion_id) % 10 < 9
                        THEN 'incorrect' ELSE 'unextractable' END AS status,
                   '$42$' AS extracted_answer, '42' AS parsed_gold, '$' || p.gold_answer || '$' AS gold_normalized,
                   md5(c.completion_id || 'v') AS cache_key, 0.01 AS seconds, NULL::VARCHAR AS error,
                   '0.7.0' AS math_verify_version, now() AS verified_at
            FROM r1_completions AS c JOIN prompt_selection AS p USING (prompt_id)
            WHERE c.status = 'ok' AND p.scoring = 'math_verify'""",
        "judge_scores": """
            CREATE OR REPLACE TABLE judge_scores AS
            SELECT completion_id, source_key, judge_kind, 'scored' AS status,
                   CASE judge_kind WHEN 'correctness' THEN 10.0 * (hash(completion_id) % 2)
                        ELSE 5.0 + hash(completion_id) % 6 END AS score,
                   8.0 AS harmlessness, 8.0 AS helpfulness, 7.0 AS correctness, NULL::BOOLEAN AS verdict,
                   '回答结构清晰，内容基本准确。' AS reason, 'json' AS parse_method, 'qwen2.5-72b-instruct' AS judge_model,
                   1::INTEGER AS rounds, md5(completion_id || 'j') AS request_hash, '{"score": 8}' AS raw_excerpt,
                   0.01 AS cost, true AS simulated
            FROM int_judge_queue""",
        "response_near_duplicates": """
            CREATE OR REPLACE TABLE response_near_duplicates AS
            SELECT a.completion_id AS duplicate_id, b.completion_id AS kept_id, 0.93 AS similarity
            FROM (SELECT completion_id, row_number() OVER (ORDER BY completion_id) AS r FROM scores) AS a
            JOIN (SELECT completion_id, row_number() OVER (ORDER BY completion_id) AS r FROM scores) AS b
              ON b.r = a.r + 1
            WHERE a.r % 200 = 0""",
    }


def variables() -> dict[str, object]:
    """The same getvariable() values the code location sets (from distill.toml)."""
    from dagster_project.definitions import sql_variables

    return {name: getattr(v.values, v.field) for name, v in sql_variables().items()}


def ordered_models() -> list:
    """Models in dependency order (a model after every model it reads)."""
    models = {m.name: m for m in discover_models(REPO_ROOT / "sql")}
    done: list = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in models:
            return
        seen.add(name)
        for dep in sorted(models[name].tables):
            visit(dep)
        done.append(models[name])

    for name in sorted(models):
        visit(name)
    return done


def run_scale(factor: int, workdir: Path, reasoning: tuple[int, int], memory_limit: str, threads: int,
              base_rows: int = BASE_ROWS) -> dict:
    n = base_rows * factor
    db = workdir / f"sql_scaling_{factor}x.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db), config=connection_config(memory_limit, threads))  # the project's own config
    builders = inputs(n, factor, reasoning)
    built: dict[str, float] = {}

    def build(table: str) -> None:
        if table in builders and table not in built:
            t0 = time.perf_counter()
            con.execute(builders[table])
            built[table] = round(time.perf_counter() - t0, 2)

    build("seed_category_targets")
    build("raw_prompts")
    set_variables(con, variables())
    per_model = []
    for model in ordered_models():
        for table in sorted(model.tables):
            build(table)
        t0 = time.perf_counter()
        con.execute(f'CREATE OR REPLACE {model.materialized.upper()} "{model.name}" AS\n{model.sql}')
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows = con.execute(f'SELECT count(*) FROM "{model.name}"').fetchone()[0]
        entry = {"scale": factor, "model": model.name, "materialized": model.materialized, "rows": rows,
                 "seconds": round(seconds, 3)}
        if model.materialized == "view":  # a view costs nothing to create; reading it is the work
            entry["count_seconds"] = round(time.perf_counter() - t1, 3)
        per_model.append(entry)
        print(json.dumps(entry, ensure_ascii=False), flush=True)
    con.close()
    result = {
        "scale": factor, "prompts": n, "input_build_seconds": built,
        "models": per_model,
        "total_seconds": round(sum(m["seconds"] + m.get("count_seconds", 0) for m in per_model), 2),
        "database_mb": round(db.stat().st_size / 2**20, 1),
    }
    db.unlink(missing_ok=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="multiples of 110,000 prompts")
    parser.add_argument("--reasoning-chars", type=int, nargs=2, default=[1500, 6000])
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit (distill.toml default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base-rows", type=int, default=BASE_ROWS, help="rows at scale 1 (default 110,000)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("DISTILL_WAREHOUSE__DIR", str(args.workdir / "sql-scaling-unused"))
    runs = [run_scale(f, args.workdir, tuple(args.reasoning_chars), args.memory_limit, args.threads, args.base_rows)
            for f in args.scales]
    summary = {r["scale"]: r["total_seconds"] for r in runs}
    result = {"benchmark": "sql_scaling", "machine": machine_info(), "memory_limit": args.memory_limit,
              "threads": args.threads, "reasoning_chars": args.reasoning_chars, "runs": runs,
              "total_seconds_by_scale": summary}
    if len(runs) > 1:
        result["growth"] = round(runs[-1]["total_seconds"] / max(runs[0]["total_seconds"], 1e-9), 2)
    print(json.dumps({"total_seconds_by_scale": summary, "growth": result.get("growth")}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
