"""The `distill` subcommands. Each function's docstring is its --help description."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dagster_project.config import SettingsError, config, reload_config

SIMULATED_BANNER = "SIMULATED: responses come from the built-in R1/judge simulator, not from DeepSeek-R1."


def _print_table(columns: list[str], rows: list[tuple]) -> None:
    from dagster_project.lib.query import QueryResult, format_result
    print(format_result(QueryResult(columns, rows, False)))


def _simulator_settings(args: argparse.Namespace):
    changes = {k: getattr(args, k, None) for k in ("reasoning_format", "latency_scale")}
    return config().simulator.behaviour().updated(**{k: v for k, v in changes.items() if v is not None})


def _run(args: argparse.Namespace, *, simulated: bool) -> int:
    import dagster as dg

    from dagster_project import definitions
    from dagster_project.cli.pipeline import run_pipeline
    from dagster_project.lib.preflight import check_endpoint

    defs = definitions.defs
    if not simulated:
        for name in ("r1", "judge"):
            check_endpoint(defs.resources[name].settings())
    started = time.perf_counter()

    def on_stage(stage: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {stage} ...", flush=True)

    with dg.DagsterInstance.get() as instance:
        result = run_pipeline(defs, instance, partitions=args.source or None, on_stage=on_stage,
                              log_level="INFO" if args.verbose else "WARNING", stages=args.stage or None)
    print(f"[{result.seconds:6.1f}s] done: {len(result.timings)} stages, "
          f"{sum(t.runs for t in result.timings)} Dagster runs (history: `dagster dev`, DAGSTER_HOME="
          f"{os.environ['DAGSTER_HOME']})")
    _summary(simulated)
    return 0


def _summary(simulated: bool) -> None:
    from dagster_project.lib.export.writer import read_latest
    from dagster_project.lib.query import run_query

    def q(sql: str):
        return run_query(sql, config().database_path, config().journal_dir, wait_s=30)

    print()
    for title, sql in [
        ("R1 completions", "SELECT source_key, status, count(*) AS n, sum(usage_completion_tokens) AS completion_tokens "
                           "FROM r1_completions GROUP BY ALL ORDER BY ALL"),
        ("Scores", "SELECT category, score_source, count(*) AS n, round(avg(score), 2) AS avg_score "
                   "FROM scores GROUP BY ALL ORDER BY ALL"),
        ("SFT dataset", "SELECT category, target_rows, available, selected_rows, shortfall "
                        "FROM sft_category_balance ORDER BY category"),
    ]:
        try:
            res = q(sql)
        except Exception as exc:  # a stage was skipped: say so, keep going
            print(f"{title}: not available ({str(exc).splitlines()[0]})")
            continue
        print(title)
        _print_table(res.columns, res.rows)
        print()
    latest = read_latest(config().exports_dir)
    if latest:
        path = config().exports_dir / latest
        print(f"Export {latest}: {path}")
        print(f"Dataset card:  {path / 'README.md'}")
    if simulated:
        print(SIMULATED_BANNER)


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline, end to end, on the bundled sample rows against the built-in R1/judge simulator
    (started on a free loopback port and stopped at the end). Re-running reuses the journal."""
    from dagster_project.cli.pipeline import answer_key
    from dagster_project.simulator.server import start_simulator_process

    print(SIMULATED_BANNER)
    sim = start_simulator_process(_simulator_settings(args), answer_key())
    try:
        os.environ["DISTILL_GENERATION__BASE_URL"] = sim.base_url
        os.environ["DISTILL_JUDGE__BASE_URL"] = sim.base_url
        reload_config()
        print(f"simulator at {sim.base_url}")
        return _run(args, simulated=True)
    finally:
        sim.close()


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline (or --stage ones) against the endpoints in distill.toml. Checks the API keys and
    that both endpoints answer before anything is sent; the spending guard in [generation] applies."""
    return _run(args, simulated=False)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the OpenAI-compatible R1/judge simulator in the foreground (Ctrl-C to stop). Point
    [generation] and [judge] base_url at it to use it from `dagster dev`."""
    import asyncio

    from dagster_project.cli.pipeline import answer_key
    from dagster_project.simulator.server import Simulator, _start_site

    port = args.port if args.port is not None else config().simulator.port
    host = config().simulator.host

    async def serve() -> None:
        runner, url = await _start_site(Simulator(_simulator_settings(args), answer_key()), host, port)
        print(f"{SIMULATED_BANNER}\nserving {url} (models: any name; names starting 'qwen' answer as the judge)",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one SQL query over the warehouse and print it. The journal is always available as the
    views r1_ledger and judge_ledger. Waits at most --wait seconds for a running pipeline's short
    transactions, then says the warehouse is busy."""
    from dagster_project.lib.query import format_result, run_query

    if args.file:
        sql = Path(args.file).read_text(encoding="utf-8")
    elif args.query in (None, "-"):
        sql = sys.stdin.read()
    else:
        sql = args.query
    if not sql.strip():
        raise SettingsError("no SQL given (pass a query, -f FILE, or pipe it on stdin)")
    import duckdb
    try:
        result = run_query(sql, config().database_path, config().journal_dir, wait_s=args.wait, max_rows=args.max_rows)
    except duckdb.Error as exc:
        print(f"distill: SQL error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(format_result(result, args.format))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Dry run before a paid run: per source and category, the prompts selected, already in the journal,
    still to send, and the estimated input/output tokens and cost from the price config."""
    from dagster_project.generation.assets import generation_requests
    from dagster_project.lib.llm.journal import Journal, plan
    from dagster_project.lib.llm.tokens import count_tokens
    from dagster_project.lib.query import run_query
    from dagster_project.partitions import manifest_for, source_partitions
    r1 = config().generation
    cfg = r1
    keys = args.source or source_partitions.get_partition_keys()
    for key in keys:
        manifest_for(key)
    exp_out = float(r1.expected_output_tokens)
    journal = Journal(config().journal_dir)
    rows, totals = [], [0, 0, 0, 0, 0, 0, 0.0]
    for key in keys:
        res = run_query("SELECT prompt_id, prompt_text, category FROM prompt_selection "
                        "WHERE source_key = ? AND decision = 'selected' ORDER BY prompt_id",
                        config().database_path, config().journal_dir, wait_s=args.wait, max_rows=10**9, params=[key])
        by_cat: dict[str, list[tuple[str, str]]] = {}
        for pid, text, category in res.rows:
            by_cat.setdefault(category, []).append((pid, text))
        for category, prompts in sorted(by_cat.items()):
            requests = generation_requests(prompts, key, r1.samples_per_prompt)
            to_send, reused = plan(cfg, requests, journal, stage="r1")
            texts = {r.prompt_id: r.messages[0][1] for r in to_send}
            in_tok = sum(count_tokens([texts[r.prompt_id] for r in to_send])) if to_send else 0
            out_tok = int(exp_out * len(to_send))
            cost = (in_tok * cfg.price_input_per_mtok + out_tok * cfg.price_output_per_mtok) / 1e6
            rows.append((key, category, len(prompts), len(requests), len(reused), len(to_send), in_tok, out_tok,
                         round(cost, 2)))
            for i, v in enumerate((len(prompts), len(requests), len(reused), len(to_send), in_tok, out_tok)):
                totals[i] += v
            totals[6] += cost
    rows.append(("TOTAL", "", *totals[:6], round(totals[6], 2)))
    _print_table(["source", "category", "selected", "requests", "in_journal", "to_send", "est_input_tokens",
                  "est_output_tokens", f"est_cost_{cfg.currency}"], rows)
    print(f"model {cfg.model} at {cfg.base_url}; prices {cfg.price_input_per_mtok}/{cfg.price_output_per_mtok} "
          f"{cfg.currency} per M input/output tokens; output estimated at {exp_out:.0f} tokens per request "
          "([generation] expected_output_tokens).")
    caps = [f"max_requests_per_run={r1.max_requests_per_run}" if r1.max_requests_per_run else "",
            f"max_cost_per_run={r1.max_cost_per_run}" if r1.max_cost_per_run else ""]
    print("spending guard: " + (", ".join(c for c in caps if c) or "none (set [generation] max_cost_per_run)"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Progress of the LLM stages per source, from the journal (readable while runs are going):
    done, failed, still to go, attempts, rate over the last 5 minutes, ETA, spend, last activity;
    then recent Dagster runs. "to_go" needs the warehouse for a moment; when it is busy it shows '?'."""
    import dagster as dg
    import duckdb

    from dagster_project.lib.llm.journal import LATEST_FINAL, Journal

    journal = Journal(config().journal_dir)
    wanted = _status_targets()
    con = duckdb.connect(":memory:")
    try:
        for stage in ("r1", "judge"):
            if not journal.has_files(stage):
                print(f"{stage}: nothing journaled yet")
                continue
            rows = con.sql(f"""
                WITH j AS (SELECT * FROM {journal.relation_sql(stage)}),
                finals AS (SELECT * FROM j WHERE {LATEST_FINAL})
                SELECT f.partition AS source,
                       count(*) FILTER (WHERE f.status = 'ok') AS ok,
                       count(*) FILTER (WHERE f.status <> 'ok') AS not_ok,
                       (SELECT count(*) FROM j WHERE j.partition = f.partition) AS attempts,
                       round(count(*) FILTER (WHERE f.finished_at > now() - INTERVAL 5 MINUTE) / 300.0, 2)
                           AS per_s_5min,
                       round((SELECT sum(coalesce(cost, 0)) FROM j WHERE j.partition = f.partition), 4) AS spend,
                       max(f.finished_at)::VARCHAR AS last_activity,
                       bool_or(f.simulated) AS simulated
                FROM finals AS f GROUP BY f.partition ORDER BY f.partition
            """).fetchall()
            table = []
            for source, ok, not_ok, attempts, rate, spend, last, simulated in rows:
                target = wanted.get(stage, {}).get(source)
                to_go = None if target is None else max(0, target - ok - not_ok)
                eta = "-" if to_go == 0 else ("?" if not to_go or not rate else f"{to_go / rate / 60:.0f} min")
                table.append((source, ok, not_ok, "?" if to_go is None else to_go, attempts, rate, eta, spend,
                              last, simulated))
            print(f"{stage} journal ({journal.root / stage})")
            _print_table(["source", "ok", "not_ok", "to_go", "attempts", "per_s_5min", "eta", "spend",
                          "last_activity", "simulated"], table)
            print()
    finally:
        con.close()
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=args.runs)
        rows = [(r.run_id[:8], r.status.value, r.job_name, r.tags.get("dagster/partition", ""),
                 r.tags.get("distill/stage", "")) for r in runs]
    print(f"recent Dagster runs ({os.environ['DAGSTER_HOME']})")
    _print_table(["run", "status", "job", "partition", "stage"], rows)
    return 0


def _status_targets() -> dict[str, dict[str, int]]:
    """Requests each stage wants per source, from the warehouse; empty when it is busy or not built yet."""
    import duckdb

    from dagster_project.lib.query import run_query
    from dagster_project.lib.warehouse import WarehouseBusy

    samples = config().generation.samples_per_prompt
    queries = {"r1": f"SELECT source_key, count(*) * {samples} FROM prompt_selection "
                     "WHERE decision = 'selected' GROUP BY 1",
               "judge": "SELECT source_key, count(*) FROM int_judge_queue GROUP BY 1"}
    out: dict[str, dict[str, int]] = {}
    for stage, sql in queries.items():
        try:
            out[stage] = dict(run_query(sql, config().database_path, config().journal_dir, wait_s=2).rows)
        except (WarehouseBusy, duckdb.Error):
            pass
    return out


def cmd_export(args: argparse.Namespace) -> int:
    """Write (again) a versioned export of the current SFT views: JSONL + Parquet, manifest and dataset card."""
    from dagster_project.publish.assets import export_dataset
    from dagster_project.resources import warehouse_resource

    result = export_dataset(warehouse_resource(), version=args.version, overwrite=args.overwrite)
    print(f"export {result.version}: {result.path}")
    for name, info in result.manifest["tables"].items():
        print(f"  {name}: {info['rows']} rows")
    if result.manifest.get("simulated"):
        print(SIMULATED_BANNER)
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="KEY", help="only this source repo (repeatable)")
    p.add_argument("--stage", action="append", metavar="NAME", help="only this stage (repeatable), e.g. 'generate (R1)'")
    p.add_argument("--verbose", action="store_true", help="show Dagster's INFO logs (progress of LLM stages)")


def _demo_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--reasoning-format", choices=["reasoning_content", "reasoning", "inline"],
                   help="how the simulator returns the reasoning (default: [simulator] reasoning_format)")
    p.add_argument("--latency-scale", type=float, help="simulator latency: 0 = instant, 1 = R1-like")


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="port (default [simulator] port); 0 = any free port")
    p.add_argument("--reasoning-format", choices=["reasoning_content", "reasoning", "inline"])
    p.add_argument("--latency-scale", type=float, help="0 = instant, 1 = R1-like speeds")


def _sql_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="?", help="SQL text; '-' or nothing reads stdin")
    p.add_argument("-f", "--file", help="read the SQL from this file")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the warehouse (default 10)")
    p.add_argument("--max-rows", type=int, default=1000)


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="KEY", help="only this source repo (repeatable)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the warehouse")


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=10, help="how many recent Dagster runs to list")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", help="version folder name (default: UTC timestamp)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")


COMMANDS = {
    "demo": (cmd_demo, "run the whole pipeline on the bundled samples against the simulator", _demo_args),
    "run": (cmd_run, "run the pipeline against the configured endpoints", _run_args),
    "simulate": (cmd_simulate, "serve the OpenAI-compatible R1/judge simulator", _sim_args),
    "plan": (cmd_plan, "dry run: what would be sent, and the estimated tokens and cost", _plan_args),
    "status": (cmd_status, "progress and spend per source, from the journal", _status_args),
    "sql": (cmd_sql, "ad-hoc SQL over the warehouse and the journal", _sql_args),
    "export": (cmd_export, "write a new versioned export of the SFT dataset", _export_args),
    "publish": __import__("dagster_project.cli.publish", fromlist=["COMMAND"]).COMMAND,
}
