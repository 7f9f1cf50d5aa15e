"""Asset checks on the final SFT rows. Blocking: a failed check stops the export in that run."""

import dagster as dg

from dagster_project.config import config
from dagster_project.lib.secrets import find_secrets, holds_value
from dagster_project.resources import WarehouseResource

TARGET = dg.AssetKey("sft_balanced")
MIX_TOLERANCE = 0.02  # absolute share; one row of rounding is also allowed
SCAN_BATCH_ROWS = 1024  # rows per fetchmany in no_secrets


def _check(name: str, description: str):
    return dg.asset_check(asset=TARGET, name=name, description=description, blocking=True)


def _result(failures: list, what: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not failures, severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(failures)} {what}" if failures else f"no {what}",
        metadata={"failures": len(failures), "examples": dg.MetadataValue.json([str(f) for f in failures[:10]]),
                  **metadata})


@_check("unique_completions", "Every SFT row is a distinct completion and a distinct prompt.")
def unique_completions(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection(purpose="check unique_completions") as con:
        dup = con.execute("SELECT completion_id, count(*) FROM sft_balanced GROUP BY 1 HAVING count(*) > 1 "
                          "UNION ALL SELECT prompt_id, count(*) FROM sft_balanced GROUP BY 1 "
                          "HAVING count(*) > 1").fetchall()
    return _result(dup, "duplicated ids")


@_check("well_formed_output", "No empty instruction or answer; every output starts with '<think>\\n' and has "
                              "exactly one '</think>'.")
def well_formed_output(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection(purpose="check well_formed_output") as con:
        bad = con.execute("""
            SELECT completion_id,
                   CASE WHEN trim(coalesce(question_text, '')) = '' THEN 'empty instruction'
                        WHEN trim(coalesce(content, '')) = '' THEN 'empty answer'
                        WHEN NOT starts_with(sft_output, '<think>' || chr(10)) THEN 'does not start with <think>'
                        ELSE 'not exactly one </think>' END
            FROM sft_balanced
            WHERE trim(coalesce(question_text, '')) = '' OR trim(coalesce(content, '')) = ''
               OR NOT starts_with(sft_output, '<think>' || chr(10))
               OR len(string_split(sft_output, '</think>')) <> 2
        """).fetchall()
    return _result(bad, "malformed rows")


@_check("score_in_range", "Every score is between 0 and 10 and meets its category's min_score.")
def score_in_range(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection(purpose="check score_in_range") as con:
        bad = con.execute("""
            SELECT b.completion_id, b.score FROM sft_balanced AS b JOIN seed_category_targets AS t USING (category)
            WHERE b.score IS NULL OR b.score < 0 OR b.score > 10 OR b.score < t.min_score
        """).fetchall()
    return _result(bad, "scores out of range")


@_check("category_mix", "In `ratios` mode, each category's share is within tolerance of its target share "
                        "(categories with no rows are reported as shortfalls, not failures).")
def category_mix(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection(purpose="check category_mix") as con:
        rows = con.execute("""
            WITH present AS (SELECT * FROM sft_category_balance WHERE available > 0),
                 actual AS (SELECT category, count(*) AS n FROM sft_balanced GROUP BY 1)
            SELECT p.category, p.target_rows / sum(p.target_rows) OVER () AS target_share,
                   coalesce(a.n, 0) / greatest(sum(coalesce(a.n, 0)) OVER (), 1) AS actual_share,
                   sum(coalesce(a.n, 0)) OVER () AS total
            FROM present AS p LEFT JOIN actual AS a USING (category)
        """).fetchall()
        shortfalls = con.execute("SELECT category, shortfall FROM sft_category_balance WHERE shortfall > 0").fetchall()
    if config().curation.balance_mode != "ratios":
        return dg.AssetCheckResult(passed=True, description="balance_mode is counts: mix not enforced",
                                   metadata={"shortfalls": dg.MetadataValue.json(dict(shortfalls))})
    off = [(c, round(t, 4), round(a, 4)) for c, t, a, total in rows
           if abs(t - a) > MIX_TOLERANCE + 1.0 / max(total, 1)]
    return _result(off, "categories off their target share",
                   shares=dg.MetadataValue.json({c: {"target": round(t, 4), "actual": round(a, 4)}
                                                 for c, t, a, _ in rows}),
                   shortfalls=dg.MetadataValue.json(dict(shortfalls)))


@_check("no_secrets", "No API key or secret-looking string (full-width or zero-width disguises included) in any "
                      "text that will be exported.")
def no_secrets(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from dagster_project.ingest.assets import configured_secret_values

    keys = configured_secret_values()
    hits = []
    with warehouse.get_connection(purpose="check no_secrets") as con:
        con.execute("SELECT completion_id, question_text, reasoning, content, repo_name FROM sft_balanced")
        while rows := con.fetchmany(SCAN_BATCH_ROWS):  # the texts are long: never hold all of them
            for completion_id, *texts in rows:
                found = sum(len(find_secrets(text or "")) + holds_value(text or "", keys) for text in texts)
                if found:
                    hits.append(f"{completion_id}: {found} secret-looking string(s)")
    return _result(hits, "rows with secret-looking strings")


ALL_CHECKS = [unique_completions, well_formed_output, score_in_range, category_mix, no_secrets]
