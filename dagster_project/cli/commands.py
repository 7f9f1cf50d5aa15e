"""The `distill` subcommands. Each function's docstring is its --help description."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dagster_project.cli.publish import COMMAND as PUBLISH
from dagster_project.cli.run import SIMULATED_BANNER, cmd_demo, cmd_run, simulator_settings
from dagster_project.cli.status import cmd_plan, cmd_status
from dagster_project.config import SettingsError, config


def print_table(columns: list[str], rows: list[tuple]) -> None:
    from dagster_project.lib.query import QueryResult, format_result
    print(format_result(QueryResult(columns, rows, False)))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the OpenAI-compatible R1/judge simulator in the foreground (Ctrl-C to stop). Point
    [generation] and [judge] base_url at it to use it from `dagster dev`."""
    import asyncio
    import errno

    from dagster_project.simulator.answer_key import answer_key
    from dagster_project.simulator.server import Simulator, start_site

    port = args.port if args.port is not None else config().simulator.port
    host = config().simulator.host

    async def serve() -> None:
        runner, url = await start_site(Simulator(simulator_settings(args), answer_key()), host, port)
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
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"{host}:{port} is already in use; pick another port with --port (0 = any free "
                                "port) or stop what listens there") from None
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one SQL query over the warehouse and print it. The journal is always available as the
    views r1_ledger and judge_ledger. Waits at most --wait seconds for a running pipeline's short
    transactions, then says the warehouse is busy."""
    import duckdb

    from dagster_project.lib.query import format_result, run_query

    if args.file:
        try:
            sql = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    elif args.query in (None, "-"):
        sql = sys.stdin.read()
    else:
        sql = args.query
    if not sql.strip():
        raise SettingsError("no SQL given (pass a query, -f FILE, or pipe it on stdin)")
    try:
        result = run_query(sql, config().database_path, config().journal_dir, wait_s=args.wait, max_rows=args.max_rows)
    except duckdb.Error as exc:
        print(f"distill: SQL error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(format_result(result, args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a new versioned export of the current SFT views (JSONL + Parquet, manifest.json, dataset card) by
    materializing `sft_export`, which refuses unless the checks of the SFT rows passed on the current data."""
    import dagster as dg

    from dagster_project.cli.backfills import run_backfill
    from dagster_project.cli.run import print_failures
    from dagster_project.lib.export.writer import read_latest

    before = read_latest(config().exports_dir)
    state = run_backfill(sources=None, assets=[dg.AssetKey("sft_export")], title="distill export",
                         op_config={"sft_export": {"config": {"version": args.version or "",
                                                              "overwrite": bool(args.overwrite)}}})
    latest = read_latest(config().exports_dir)
    if state.runs_failed or latest == before and not args.overwrite:
        print_failures(state.backfill_id)
        return 1
    manifest = json.loads((config().exports_dir / latest / "manifest.json").read_text(encoding="utf-8"))
    print(f"export {latest}: {config().exports_dir / latest}")
    for name, info in manifest["tables"].items():
        print(f"  {name}: {info['rows']} rows")
    if manifest.get("simulated"):
        print(SIMULATED_BANNER)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective configuration (distill.toml plus DISTILL_* overrides, defaults filled in) and its
    hash, which every run and export records. Secrets are never part of it: only variable names."""
    cfg = config()
    sections = cfg.effective()
    if args.section:
        if args.section not in sections:
            raise SettingsError(f"unknown section [{args.section}]; sections: {', '.join(sections)}")
        sections = {args.section: sections[args.section]}
    print(json.dumps({"config_hash": cfg.hash(), **sections}, indent=2, ensure_ascii=False))
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="KEY", help="only this source repo (repeatable)")
    p.add_argument("--stage", action="append", metavar="JOB",
                   help="only this stage job (repeatable): load_sources, select_prompts, generate_and_score, "
                        "curate_and_export")
    p.add_argument("--verbose", action="store_true", help="show Dagster's INFO logs of every run")


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


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("section", nargs="?", help="only this section, e.g. generation")


COMMANDS = {
    "demo": (cmd_demo, "run the whole pipeline on the bundled samples against the simulator", _demo_args),
    "run": (cmd_run, "run the pipeline against the configured endpoints", _run_args),
    "simulate": (cmd_simulate, "serve the OpenAI-compatible R1/judge simulator", _sim_args),
    "plan": (cmd_plan, "dry run: what would be sent, and the estimated tokens and cost", _plan_args),
    "status": (cmd_status, "what the current parameters still need, progress and spend per source", _status_args),
    "sql": (cmd_sql, "ad-hoc SQL over the warehouse and the journal", _sql_args),
    "export": (cmd_export, "write a new versioned export of the SFT dataset", _export_args),
    "publish": PUBLISH,
    "config": (cmd_config, "print the effective configuration and its hash", _config_args),
}
