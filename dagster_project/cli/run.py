"""`distill demo` and `distill run`: one asset backfill, with a live progress line and a summary."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from dagster_project.cli.backfills import BackfillProgress, run_backfill, stage_jobs
from dagster_project.config import SettingsError, config, reload_config
from dagster_project.lib import progress as live

SIMULATED_BANNER = "SIMULATED: responses come from the built-in R1/judge simulator, not from DeepSeek-R1."
LLM_JOBS = {"generate_and_score"}
REFRESH_S = 0.5


class ProgressLine:
    """One live line on a terminal (a line per change otherwise): runs done, what runs, LLM progress."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.state: BackfillProgress | None = None
        self.started = time.monotonic()
        self._last_printed = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress-line", daemon=True)

    def __enter__(self) -> "ProgressLine":
        import dagster as dg

        self._listener = live.Listener().__enter__()
        self._instance = dg.DagsterInstance.get()  # its own, for reading while the main thread runs
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._render(final=True)
        self._listener.__exit__()
        self._instance.dispose()

    def update(self, state: BackfillProgress) -> None:
        self.state = state
        self._render()

    def _loop(self) -> None:
        from dagster_project.cli.backfills import progress

        while not self._stop.wait(REFRESH_S):
            if self.state is not None and not self.state.done:
                try:
                    self.state = progress(self._instance, self.state.backfill_id, self.started)
                except Exception:  # a transient storage error: show the last state
                    pass
            self._render()

    def line(self) -> str:
        s = self.state
        elapsed = time.monotonic() - self.started
        if s is None:
            return f"[{elapsed:6.1f}s] loading the code location ..."
        head = f"[{elapsed:6.1f}s] assets {s.materialized}/{s.targeted}, runs {s.runs_done}"
        if s.failed or s.runs_failed:
            head += f" ({s.runs_failed} failed, {s.failed} assets not built)"
        llm = live.latest()
        if llm is not None:
            return f"{head} | {llm[0]} {llm[1]}"
        return f"{head} | {s.current}" if s.current else head

    def _render(self, final: bool = False) -> None:
        text = self.line()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text[: os.get_terminal_size(self.stream.fileno()).columns - 1]
                              + ("\n" if final else ""))
            self.stream.flush()
        elif text.split("] ", 1)[-1] != self._last_printed.split("] ", 1)[-1]:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last_printed = text


def selected_assets(stages: list[str] | None):
    """The asset keys of the named stage jobs (all assets when none is named)."""
    if not stages:
        return None, set()
    jobs = stage_jobs()
    unknown = [s for s in stages if s not in jobs]
    if unknown:
        raise SettingsError(f"unknown stage {unknown[0]!r}; stages: {', '.join(jobs)}")
    return sorted({k for s in stages for k in jobs[s]}, key=lambda k: k.to_user_string()), set(stages)


def run_pipeline(args: argparse.Namespace, *, simulated: bool) -> int:
    from dagster_project.lib.preflight import check_endpoint
    from dagster_project.partitions import manifest_errors, manifest_for

    assets, stages = selected_assets(args.stage)
    for source in args.source or []:
        manifest_for(source)  # an unknown or broken source is one line before anything starts
    for line in manifest_errors():
        print(f"distill: source manifest not loaded (its source is left out): {line}", file=sys.stderr)
    if not simulated and (not stages or stages & LLM_JOBS):
        for endpoint in (config().generation, config().judge):
            check_endpoint(endpoint)
    sources = args.source or None
    title = f"distill {'demo' if simulated else 'run'}: " + (", ".join(sources) if sources else "all sources")
    if stages:
        title += f" ({', '.join(sorted(stages))})"
    print(f"backfill \"{title}\" (Dagster UI: Overview > Backfills; DAGSTER_HOME={os.environ['DAGSTER_HOME']})",
          flush=True)
    with ProgressLine() as line:
        state = run_backfill(sources=sources, assets=assets, title=title, on_progress=line.update,
                             log_level="INFO" if args.verbose else "CRITICAL")
    failed = state.status.value not in ("COMPLETED_SUCCESS", "COMPLETED") or state.runs_failed > 0
    print(f"{'FAILED' if failed else 'done'}: backfill {state.backfill_id} {state.status.value.lower()} in "
          f"{state.elapsed_s:.1f}s, {state.runs} runs ({state.runs_failed} failed), "
          f"{state.materialized}/{state.targeted} asset partitions", flush=True)
    if failed:
        print_failures(state.backfill_id)
    summary(simulated)
    return 1 if failed else 0


def print_failures(backfill_id: str) -> None:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id},
                                                           statuses=[dg.DagsterRunStatus.FAILURE,
                                                                     dg.DagsterRunStatus.CANCELED])):
            keys = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or []))
            part = run.tags.get("dagster/partition", "")
            print(f"  run {run.run_id[:8]} {run.status.value.lower()}: {keys}{f'[{part}]' if part else ''}: "
                  f"{_failure_message(instance, run.run_id)}", file=sys.stderr)


def _failure_message(instance, run_id: str) -> str:
    from dagster._core.events import DagsterEventType

    for of_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for record in instance.get_records_for_run(run_id, of_type=of_type, limit=1).records:
            event = record.event_log_entry.dagster_event
            data = getattr(event, "event_specific_data", None)
            error = getattr(data, "error", None)
            if error is not None:
                return _one_line(error)
            if event is not None and event.message:
                return event.message.strip().splitlines()[0]
    return "see the run in the Dagster UI"


def _one_line(error) -> str:
    """The innermost user-facing message of a serialized error (a Failure's description first)."""
    from dagster_project.cli.backfills import INTERRUPT_ERRORS

    if error.cls_name in INTERRUPT_ERRORS:
        return "interrupted (Ctrl-C or SIGTERM)"
    while error.cause is not None and error.cls_name != "Failure":
        error = error.cause
    text = error.message.strip().splitlines()[-1] if error.message.strip() else error.cls_name or "error"
    return text.removeprefix("dagster._core.definitions.events.Failure: ")


def summary(simulated: bool) -> None:
    from dagster_project.cli.commands import print_table
    from dagster_project.lib.export.writer import read_latest
    from dagster_project.lib.query import run_query

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
            res = run_query(sql, config().database_path, config().journal_dir, wait_s=30)
        except Exception as exc:  # a stage was not run: say so, keep going
            print(f"{title}: not available ({str(exc).splitlines()[0]})")
            continue
        print(title)
        print_table(res.columns, res.rows)
        print()
    latest = read_latest(config().exports_dir)
    if latest:
        path = config().exports_dir / latest
        print(f"Latest export {latest}: {path}")
        print(f"Dataset card:  {path / 'README.md'}")
    if simulated:
        print(SIMULATED_BANNER)


def simulator_settings(args: argparse.Namespace):
    changes = {k: getattr(args, k, None) for k in ("reasoning_format", "latency_scale")}
    return config().simulator.behaviour().updated(**{k: v for k, v in changes.items() if v is not None})


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline, end to end, on the bundled sample rows against the built-in R1/judge simulator
    (started on a free loopback port and stopped at the end): one Dagster asset backfill over every
    source, shown in the UI under its title. Re-running reuses the journal: nothing is bought twice."""
    from dagster_project.simulator.answer_key import answer_key
    from dagster_project.simulator.server import start_simulator_process

    print(SIMULATED_BANNER)
    sim = start_simulator_process(simulator_settings(args), answer_key())
    try:
        os.environ["DISTILL_GENERATION__BASE_URL"] = sim.base_url
        os.environ["DISTILL_JUDGE__BASE_URL"] = sim.base_url
        reload_config()
        print(f"simulator at {sim.base_url}")
        return run_pipeline(args, simulated=True)
    finally:
        sim.close()


def cmd_run(args: argparse.Namespace) -> int:
    """The pipeline (or the --stage jobs) for the --source repos (default: all) against the endpoints in
    distill.toml, as one Dagster asset backfill: partitioned stages once per source, the shared models and
    the export once. Checks the API keys and that the endpoints answer before anything is sent; the
    spending guard in [generation] applies. With `dagster dev` running, its daemon executes the backfill
    and this command follows it."""
    return run_pipeline(args, simulated=False)
