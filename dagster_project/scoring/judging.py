"""`judge_scores`: the LLM judge for what Math-Verify could not decide, and for STEM/General rows."""

from collections.abc import Sequence

import dagster as dg
import pyarrow as pa

from dagster_project.common.derived import derived_config
from dagster_project.common.llm_stage import run_stage, summary_metadata
from dagster_project.common.metadata import table_result
from dagster_project.config import JudgeSettings, config
from dagster_project.lib.judge.parse import parse_correctness, parse_quality
from dagster_project.lib.judge.prompts import (
    correctness_messages,
    excerpt_cuts,
    quality_messages,
    response_format,
)
from dagster_project.lib.llm.types import LLMRequest
from dagster_project.lib.warehouse import describe_table, replace_partition, table_exists
from dagster_project.partitions import source_partitions
from dagster_project.resources import JUDGE_POOL, JudgeEndpoint, WarehouseResource

JudgeConfig = derived_config(
    "JudgeConfig", JudgeSettings, config().judge, ["structured_output", "reasoning_excerpt_tokens"],
    "How the judge is asked (defaults: `[judge]` in distill.toml).")

EXCERPT_BATCH = 256  # reasonings whose excerpt cut points are found in one parallel tokenizer batch
QUEUE_SQL = """
    SELECT q.*, c.content AS answer, c.reasoning
    FROM int_judge_queue AS q JOIN r1_completions AS c USING (completion_id)
    WHERE q.source_key = $1 ORDER BY q.completion_id
"""
PARSE_ROUNDS = 2  # an unparseable or out-of-range answer is asked again once, then recorded as unscored
# Verifier-decided rows the judge also scored (the seeded audit sample of int_judge_queue), by verifier method.
AUDIT_SQL = """
    SELECT coalesce(v.method, '?') AS method, count(*) AS audited,
           count(*) FILTER (WHERE j.verdict = (v.status = 'correct')) AS agreements
    FROM judge_scores AS j
    JOIN int_judge_queue AS q USING (completion_id)
    JOIN verifications AS v USING (completion_id)
    WHERE j.source_key = $1 AND q.is_audit AND j.judge_kind = 'correctness'
      AND j.status = 'scored' AND j.verdict IS NOT NULL
    GROUP BY 1 ORDER BY 2 DESC
"""

SCHEMA = pa.schema([
    ("completion_id", pa.string()), ("source_key", pa.string()), ("judge_kind", pa.string()),
    ("status", pa.string()), ("score", pa.float64()), ("harmlessness", pa.float64()),
    ("helpfulness", pa.float64()), ("correctness", pa.float64()), ("verdict", pa.bool_()),
    ("reason", pa.string()), ("parse_method", pa.string()), ("judge_model", pa.string()),
    ("rounds", pa.int32()), ("request_hash", pa.string()), ("raw_excerpt", pa.string()),
    ("cost", pa.float64()), ("simulated", pa.bool_()),
])


def judge_request(row: dict, partition: str, round_: int, endpoint: JudgeConfig, reasoning_cuts) -> LLMRequest:
    """The judge request for one queue row; ``reasoning_cuts`` from `excerpt_cuts`."""
    budget, cuts = endpoint.reasoning_excerpt_tokens, reasoning_cuts
    if row["judge_kind"] == "correctness":
        messages = correctness_messages(row["question"], row["reference_answer"] or "", row["answer"] or "",
                                        row["reasoning"], reasoning_tokens=budget, reasoning_cuts=cuts)
    else:
        messages = quality_messages(row["question"], row["answer"] or "", row["reasoning"], reasoning_tokens=budget,
                                    reasoning_cuts=cuts)
    return LLMRequest(
        prompt_id=row["completion_id"], partition=partition, sample_index=round_,
        messages=tuple((m["role"], m["content"]) for m in messages), purpose=row["judge_kind"],
        response_format=response_format(row["judge_kind"]) if endpoint.structured_output else None,
    )


def build_requests(rows: Sequence[dict], partition: str, round_: int, endpoint: JudgeConfig) -> list[LLMRequest]:
    """`judge_request` for many rows; the reasonings' cut points are found in parallel batches."""
    out: list[LLMRequest] = []
    for i in range(0, len(rows), EXCERPT_BATCH):
        chunk = rows[i : i + EXCERPT_BATCH]
        cuts = excerpt_cuts([r["reasoning"] for r in chunk], endpoint.reasoning_excerpt_tokens)
        out.extend(judge_request(r, partition, round_, endpoint, c) for r, c in zip(chunk, cuts))
    return out


def score_row(row: dict, final: dict | None) -> dict:
    """One judge_scores row from the queue row and its latest final journal row (None: not answered)."""
    out = {"completion_id": row["completion_id"], "judge_kind": row["judge_kind"], "status": "pending"}
    if final is None:
        return out
    out.update(judge_model=final["model"], request_hash=final["request_hash"], cost=final["total_cost"],
               simulated=final["simulated"], raw_excerpt=(final["content"] or "")[:500])
    if final["status"] != "ok":
        out.update(status="error", reason=f"{final['status']}: {final['error_type'] or ''} {final['error_message'] or ''}".strip())
        return out
    if row["judge_kind"] == "correctness":
        verdict = parse_correctness(final["content"])
        if verdict is not None:
            out.update(status="scored", score=float(verdict.score), verdict=verdict.correct,
                       reason=verdict.reason, parse_method=verdict.method)
    else:
        quality = parse_quality(final["content"])
        if quality is not None:
            out.update(status="scored", score=float(quality.score), harmlessness=quality.harmlessness,
                       helpfulness=quality.helpfulness, correctness=quality.correctness,
                       reason=quality.reason, parse_method=quality.method)
    if out["status"] != "scored":
        out.update(status="unscored", reason="no score in 0-10 could be read from the judge's answer")
    return out


def judge_rounds(context: dg.AssetExecutionContext, judge: JudgeEndpoint, asked: JudgeConfig, partition: str,
                 queue: Sequence[dict]) -> tuple[list[dict], list]:
    """Ask the judge; re-ask (a new sample) only for answers with no readable score."""
    results: dict[str, dict] = {}
    runs = []
    todo = list(queue)
    for round_ in range(PARSE_ROUNDS):
        if not todo:
            break
        run = run_stage(context, judge.settings(), "judge", partition, build_requests(todo, partition, round_, asked))
        runs.append(run)
        finals = {f["prompt_id"]: f for f in run.finals.to_pylist()}
        for row in todo:
            scored = score_row(row, finals.get(row["completion_id"]))
            scored["rounds"] = round_ + 1
            results[row["completion_id"]] = scored
        todo = [r for r in todo if results[r["completion_id"]]["status"] == "unscored"]
    return list(results.values()), runs


@dg.asset(
    partitions_def=source_partitions,
    deps=["int_judge_queue"],
    pool=JUDGE_POOL,
    group_name="scoring",
    kinds={"openai", "duckdb", "python"},
    owners=["team:ml"],
    description=(
        "Judge scores (Qwen2.5-72B-Instruct by default): 10/0 correctness against the reference for Math/Exam "
        "rows Math-Verify could not decide, 0-10 harmlessness / helpfulness / correctness and overall for the "
        "rest. Unreadable scores are asked again once, then recorded as unscored - never invented."
    ),
)
def judge_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 judge: JudgeEndpoint, config: JudgeConfig) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection(purpose=f"judge_scores[{key}] read") as con:
        queue = con.sql(QUEUE_SQL, params=[key]).to_arrow_table().to_pylist()
    rows, runs = judge_rounds(context, judge, config, key, queue)
    for r in rows:
        r["source_key"] = key
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with warehouse.get_connection(purpose=f"judge_scores[{key}] write") as con:
        replace_partition(con, "judge_scores", "source_key", key, table)
        info = describe_table(con, "judge_scores", "source_key = ?", [key])
        by_status = {f"{k}/{s}": n for k, s, n in con.execute(
            "SELECT judge_kind, status, count(*) FROM judge_scores WHERE source_key = ? GROUP BY 1, 2 ORDER BY 1, 2",
            [key]).fetchall()}
        histogram = con.execute(
            "SELECT judge_kind, score, count(*) FROM judge_scores WHERE source_key = ? AND status = 'scored' "
            "GROUP BY 1, 2 ORDER BY 1, 2", [key]).fetchall()
        audit = con.execute(AUDIT_SQL, [key]).fetchall() if table_exists(con, "verifications") else []
    metadata = {"by_kind_and_status": dg.MetadataValue.json(by_status),
                "score_histogram": dg.MetadataValue.md(
                    "| judge | score | rows |\n|---|---:|---:|\n"
                    + "\n".join(f"| {k} | {s:g} | {n} |" for k, s, n in histogram))}
    metadata.update(audit_metadata(audit))
    if runs:
        metadata.update(summary_metadata(runs[0]))
    return table_result("judge_scores", info, partitioned=True, **metadata)


def audit_metadata(rows: Sequence[tuple[str, int, int]]) -> dict:
    """How often the judge agrees with the verifier on the audit sample: rows, agreements, rate, by method."""
    audited = sum(n for _, n, _ in rows)
    agreements = sum(a for _, _, a in rows)
    out = {"verifier_audit_rows": audited, "verifier_audit_agreements": agreements}
    if audited:  # no rate at all rather than a made-up one
        out["verifier_audit_agreement_rate"] = dg.MetadataValue.float(round(agreements / audited, 3))
        out["verifier_audit_by_method"] = dg.MetadataValue.md(
            "| verifier method | audited | agree | rate |\n|---|---:|---:|---:|\n"
            + "\n".join(f"| {m} | {n} | {a} | {a / n:.3f} |" for m, n, a in rows))
    return out
