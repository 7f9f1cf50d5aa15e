"""`distill plan` and `distill status`: what the current parameters still need, from the journal."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from dagster_project.config import config


@dataclass
class SourcePlan:
    source: str
    category: str
    selected: int
    requests: int
    in_journal: int
    to_send: int
    input_tokens: int


def r1_plan(sources: list[str] | None, wait_s: float, count_input_tokens: bool = True) -> list[SourcePlan]:
    """Per source and category: the requests the current [generation] settings make, and how many of
    them the journal already answers (the same request hash; max_tokens rules as in a run)."""
    from dagster_project.generation.requests import generation_requests
    from dagster_project.lib.llm.journal import Journal, plan
    from dagster_project.lib.llm.tokens import count_tokens
    from dagster_project.lib.query import run_query
    from dagster_project.partitions import manifest_for, source_partitions

    cfg = config().generation
    keys = sources or source_partitions.get_partition_keys()
    for key in keys:
        manifest_for(key)
    journal = Journal(config().journal_dir)
    out = []
    for key in keys:
        res = run_query("SELECT prompt_id, prompt_text, category FROM prompt_selection "
                        "WHERE source_key = ? AND decision = 'selected' ORDER BY prompt_id",
                        config().database_path, config().journal_dir, wait_s=wait_s, max_rows=10**9, params=[key])
        by_cat: dict[str, list[tuple[str, str]]] = {}
        for pid, text, category in res.rows:
            by_cat.setdefault(category, []).append((pid, text))
        for category, prompts in sorted(by_cat.items()):
            requests = generation_requests(prompts, key, cfg.samples_per_prompt)
            to_send, reused = plan(cfg, requests, journal, stage="r1")
            tokens = sum(count_tokens([r.messages[0][1] for r in to_send])) if to_send and count_input_tokens else 0
            out.append(SourcePlan(key, category, len(prompts), len(requests), len(reused), len(to_send), tokens))
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    """Dry run before a paid run: per source and category, the prompts selected, already in the journal,
    still to send, and the estimated input/output tokens and cost from the price config."""
    from dagster_project.cli.commands import print_table

    cfg = config().generation
    rows, totals = [], [0, 0, 0, 0, 0, 0, 0.0]
    for p in r1_plan(args.source, args.wait):
        out_tok = cfg.expected_output_tokens * p.to_send
        cost = (p.input_tokens * cfg.price_input_per_mtok + out_tok * cfg.price_output_per_mtok) / 1e6
        rows.append((p.source, p.category, p.selected, p.requests, p.in_journal, p.to_send, p.input_tokens, out_tok,
                     round(cost, 2)))
        for i, v in enumerate((p.selected, p.requests, p.in_journal, p.to_send, p.input_tokens, out_tok)):
            totals[i] += v
        totals[6] += cost
    rows.append(("TOTAL", "", *totals[:6], round(totals[6], 2)))
    print_table(["source", "category", "selected", "requests", "in_journal", "to_send", "est_input_tokens",
                 "est_output_tokens", f"est_cost_{cfg.currency}"], rows)
    print(f"model {cfg.model} at {cfg.base_url}; prices {cfg.price_input_per_mtok}/{cfg.price_output_per_mtok} "
          f"{cfg.currency} per M input/output tokens; output estimated at {cfg.expected_output_tokens} tokens per "
          "request ([generation] expected_output_tokens).")
    caps = [f"max_requests_per_run={cfg.max_requests_per_run}" if cfg.max_requests_per_run else "",
            f"max_cost_per_run={cfg.max_cost_per_run}" if cfg.max_cost_per_run else ""]
    print("spending guard: " + (", ".join(c for c in caps if c) or "none (set [generation] max_cost_per_run)"))
    return 0


def _journal_activity(stage: str) -> dict[str, tuple]:
    """Per partition: ok, failed, attempts, finished in the last 5 minutes, spend, last activity, simulated."""
    import duckdb

    from dagster_project.lib.llm.journal import LATEST_FINAL, Journal

    journal = Journal(config().journal_dir)
    with journal.reading(stage):  # a compaction may not delete parts this query reads
        if not journal.has_files(stage):
            return {}
        con = duckdb.connect(":memory:")
        try:
            rows = con.sql(f"""
                WITH j AS (SELECT * FROM {journal.relation_sql(stage)}),
                finals AS (SELECT * FROM j WHERE {LATEST_FINAL}),
                spend AS (SELECT partition, count(*) AS attempts, sum(coalesce(cost, 0)) AS spend FROM j GROUP BY 1)
                SELECT f.partition, count(*) FILTER (WHERE f.status = 'ok'), count(*) FILTER (WHERE f.status <> 'ok'),
                       any_value(s.attempts), count(*) FILTER (WHERE f.finished_at > now() - INTERVAL 5 MINUTE),
                       round(any_value(s.spend), 4), max(f.finished_at)::VARCHAR, bool_or(f.simulated)
                FROM finals AS f JOIN spend AS s USING (partition) GROUP BY f.partition
            """).fetchall()
        finally:
            con.close()
    return {r[0]: r[1:] for r in rows}


def _judge_to_go(wait_s: float) -> dict[str, int]:
    """Judge queue rows with no reusable answer from the current judge model in the journal."""
    import duckdb

    from dagster_project.lib.llm.journal import LATEST_FINAL, REUSED_ALWAYS, Journal
    from dagster_project.lib.query import run_query
    from dagster_project.lib.warehouse import WarehouseBusy

    cfg = config().judge
    journal = Journal(config().journal_dir)
    try:
        queue = run_query("SELECT source_key, completion_id FROM int_judge_queue", config().database_path,
                          config().journal_dir, wait_s=wait_s, max_rows=10**9).rows
    except (WarehouseBusy, duckdb.Error):
        return {}
    answered: set[str] = set()
    if journal.has_files("judge"):
        model = cfg.model.replace("'", "''")
        reusable = ", ".join(f"'{s}'" for s in REUSED_ALWAYS)
        table = journal.read_sql("judge", None, f"SELECT prompt_id FROM j WHERE {LATEST_FINAL} AND model = '{model}' "
                                                f"AND status IN ({reusable})")
        answered = set(table.column("prompt_id").to_pylist()) if table is not None else set()
    out: dict[str, int] = {}
    for source, completion_id in queue:
        out[source] = out.get(source, 0) + (completion_id not in answered)
    return out


def cmd_status(args: argparse.Namespace) -> int:
    """Where the LLM stages stand, per source, for the CURRENT parameters: requests still to go (what a
    run would send now), done and failed (from the journal, readable while runs are going), attempts,
    rate over the last 5 minutes, ETA, spend and last activity; then active backfills and recent runs."""
    import dagster as dg
    import duckdb
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    from dagster_project.cli.commands import print_table
    from dagster_project.lib.warehouse import WarehouseBusy

    try:
        plans = r1_plan(None, wait_s=2, count_input_tokens=False)
    except (WarehouseBusy, duckdb.Error):
        plans = None  # the warehouse is busy or not built yet
    to_go = {"r1": {}, "judge": _judge_to_go(wait_s=2)}
    for p in plans or []:
        to_go["r1"][p.source] = to_go["r1"].get(p.source, 0) + p.to_send
    for stage in ("r1", "judge"):
        activity = _journal_activity(stage)
        sources = sorted(set(activity) | set(to_go[stage]))
        if not sources:
            print(f"{stage}: nothing journaled yet")
            continue
        table = []
        for source in sources:
            ok, failed, attempts, recent, spend, last, simulated = activity.get(source, (0, 0, 0, 0, 0.0, "", False))
            remaining = to_go[stage].get(source)
            rate = recent / 300.0
            eta = ("-" if remaining == 0 else "?" if remaining is None or not rate
                   else f"{remaining / rate / 60:.0f} min")
            table.append((source, "?" if remaining is None else remaining, ok, failed, attempts, round(rate, 2), eta,
                          spend, last, simulated))
        print(f"{stage} ({config().generation.model if stage == 'r1' else config().judge.model})")
        print_table(["source", "to_go", "ok", "failed", "attempts", "per_s_5min", "eta", "spend", "last_activity",
                     "simulated"], table)
        print()
    with dg.DagsterInstance.get() as instance:
        active = instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]))
        if active:
            print("active backfills")
            print_table(["backfill", "title", "started"],
                        [(b.backfill_id, b.title or "", b.backfill_timestamp) for b in active])
            print()
        runs = instance.get_runs(limit=args.runs)
        rows = [(r.run_id[:8], r.status.value, r.job_name, r.tags.get("dagster/partition", ""),
                 r.tags.get("dagster/backfill", "")) for r in runs]
    print(f"recent Dagster runs ({os.environ['DAGSTER_HOME']})")
    print_table(["run", "status", "job", "partition", "backfill"], rows)
    return 0
