"""`verifications`: the rule verifier (Math-Verify + answer-form rules) on Math/Exam completions.

Runs in a process pool with hard timeouts. Every row says what was compared: ``extracted_answer``
(the text taken as the final answer), ``answer_source`` (box, boxes, phrase, whole, ambiguous,
none), ``parsed_answer`` / ``parsed_gold`` (both sides as read), ``method`` (math_verify,
math_verify_parts, option_set, statement_set, statement_sequence, true_false, duration) and
``rules`` (rewrites applied: fold, unit, magnitude, thousands, condition, duration).
"""

import hashlib
from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa

from dagster_project.common.derived import derived_config
from dagster_project.common.metadata import source_version, table_result
from dagster_project.config import VerificationSettings, config
from dagster_project.lib.verify.checker import VERIFIER_VERSION
from dagster_project.lib.verify.gold import normalize_gold
from dagster_project.lib.verify.pool import (
    MATH_VERIFY_VERSION,
    VerifyItem,
    verify_items,
)
from dagster_project.lib.warehouse import (
    describe_table,
    replace_partition,
    table_exists,
)
from dagster_project.partitions import source_partitions
from dagster_project.resources import VERIFY_POOL, WarehouseResource

SCHEMA = pa.schema([
    ("completion_id", pa.string()), ("source_key", pa.string()), ("prompt_id", pa.string()),
    ("status", pa.string()), ("extracted_answer", pa.string()), ("parsed_gold", pa.string()),
    ("gold_normalized", pa.string()), ("cache_key", pa.string()), ("seconds", pa.float64()),
    ("error", pa.string()), ("math_verify_version", pa.string()),
    ("verified_at", pa.timestamp("us", tz="UTC")),
    ("parsed_answer", pa.string()), ("method", pa.string()), ("answer_source", pa.string()),
    ("rules", pa.string()), ("verifier_version", pa.string()),
])

VerifyConfig = derived_config(
    "VerifyConfig", VerificationSettings, config().verification,
    ["workers", "item_timeout_seconds", "parse_timeout_seconds"],
    "Math-Verify worker processes and time limits (defaults: `[verification]` in distill.toml).")

_INPUT_SQL = """
    SELECT c.completion_id, c.prompt_id, c.content, p.gold_answer, p.gold_format
    FROM r1_completions AS c
    JOIN prompt_selection AS p USING (prompt_id)
    WHERE c.source_key = ? AND c.status = 'ok' AND p.scoring = 'math_verify'
    ORDER BY c.completion_id
"""


def cache_key(content: str, gold: str | None) -> str:
    """A result is reused while the answer, the gold, Math-Verify and the verifier's rules are unchanged."""
    key = f"{MATH_VERIFY_VERSION}\x1f{VERIFIER_VERSION}\x1f{gold}\x1f{content}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


# What decides a verdict: a change in any of these re-verifies (the cache key also holds the version).
VERIFIER_MODULES = ("dagster_project.lib.verify.answer", "dagster_project.lib.verify.reading",
                    "dagster_project.lib.verify.checker", "dagster_project.lib.verify.gold")


@dg.asset(
    partitions_def=source_partitions,
    deps=["r1_completions", "prompt_selection"],
    pool=VERIFY_POOL,
    group_name="scoring",
    code_version=source_version(*VERIFIER_MODULES),
    kinds={"duckdb", "python"},
    owners=["team:ml"],
    description=(
        "Rule verification of the answer part (after </think>) against the normalized gold, for Math and "
        "Exam completions: the last box (or a final-answer phrase), read as option letters, statements, "
        "true/false or maths (Math-Verify compares every mathematical part). Statuses: correct, incorrect, "
        "unextractable, no_gold, timeout, error; extracted_answer, parsed_answer, parsed_gold, method and "
        "rules say what was compared. Runs in worker processes with a hard per-item time limit; results "
        "are cached by answer + gold + Math-Verify and verifier versions."
    ),
)
def verifications(context: dg.AssetExecutionContext, config: VerifyConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection(purpose=f"verifications[{key}] read") as con:
        rows = con.execute(_INPUT_SQL, [key]).fetchall()
        cached: dict[str, dict] = {}
        if table_exists(con, "verifications"):
            prev = con.sql("SELECT * FROM verifications WHERE source_key = $1", params=[key]).to_arrow_table()
            cached = {r["cache_key"]: r for r in prev.to_pylist()}
    now = datetime.now(timezone.utc)
    out: list[dict] = []
    todo: list[VerifyItem] = []
    meta: dict[str, tuple[str, str | None, str]] = {}
    for completion_id, prompt_id, content, gold_raw, gold_format in rows:
        gold = normalize_gold(gold_raw, gold_format) if gold_raw else None
        ck = cache_key(content, gold)
        if ck in cached and cached[ck]["completion_id"] == completion_id:
            out.append(cached[ck])
            continue
        meta[completion_id] = (prompt_id, gold, ck)
        todo.append(VerifyItem(completion_id, gold, content))
    context.log.info(f"verifications[{key}]: {len(rows)} completions, {len(out)} cached, {len(todo)} to verify")

    last_logged = [0]

    def progress(done: int, total: int) -> None:
        if done - last_logged[0] >= 500 or done == total:
            last_logged[0] = done
            context.log.info(f"verifications[{key}]: {done}/{total} verified")

    for res in verify_items(todo, workers=config.workers, item_timeout_s=config.item_timeout_seconds,
                            parse_timeout_s=config.parse_timeout_seconds, progress=progress):
        prompt_id, gold, ck = meta[res.completion_id]
        out.append({"completion_id": res.completion_id, "source_key": key, "prompt_id": prompt_id,
                    "status": res.status, "extracted_answer": res.extracted_answer, "parsed_gold": res.parsed_gold,
                    "gold_normalized": gold, "cache_key": ck, "seconds": res.seconds, "error": res.error,
                    "math_verify_version": MATH_VERIFY_VERSION, "verified_at": now,
                    "parsed_answer": res.parsed_answer, "method": res.method, "answer_source": res.answer_source,
                    "rules": res.rules, "verifier_version": VERIFIER_VERSION})
    table = pa.Table.from_pylist(out, schema=SCHEMA)
    with warehouse.get_connection(purpose=f"verifications[{key}] write") as con:
        replace_partition(con, "verifications", "source_key", key, table)
        info = describe_table(con, "verifications", "source_key = ?", [key])
        by_status = dict(con.execute("SELECT status, count(*) FROM verifications WHERE source_key = ? GROUP BY 1",
                                     [key]).fetchall())
        slowest = con.execute("SELECT max(seconds) FROM verifications WHERE source_key = ?", [key]).fetchall()[0][0]
        by_method = dict(con.execute(
            "SELECT coalesce(method, 'undecided: ' || coalesce(answer_source, 'no gold')), count(*) FROM verifications "
            "WHERE source_key = ? GROUP BY 1 ORDER BY 2 DESC", [key]).fetchall())
    return table_result("verifications", info, partitioned=True, **{
        "by_status": dg.MetadataValue.json(by_status),
        "by_method": dg.MetadataValue.json(by_method),
        "verified_this_run": len(todo),
        "reused_from_cache": len(rows) - len(todo),
        "slowest_item_s": round(slowest or 0.0, 3),
        "math_verify_version": MATH_VERIFY_VERSION,
        "verifier_version": VERIFIER_VERSION,
    })
