"""Shared plumbing for the LLM stages: plan against the journal, send, report progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.config import config
from dagster_project.lib import progress as live
from dagster_project.lib.llm.engine import (
    Budget,
    ProgressSnapshot,
    RunInterrupted,
    RunSummary,
    format_progress,
    run_requests_sync,
)
from dagster_project.lib.llm.journal import (
    JOURNAL_SCHEMA,
    LATEST_FINAL,
    Journal,
    JournalWriter,
    plan,
    request_hash,
)
from dagster_project.lib.llm.parsing import REPETITION
from dagster_project.lib.llm.types import (
    REASK_SAMPLE_OFFSET,
    EndpointConfig,
    LLMRequest,
    resolve_api_key,
)

LOG_EVERY_S = 10.0


@dataclass
class StageRun:
    requested: int
    reused: int
    sent: int
    summary: RunSummary | None
    finals: pa.Table  # latest final journal row per requested hash (and re-ask), plus `attempts` and `total_cost`


class ProgressReporter:
    """Progress to the run log every LOG_EVERY_S, and as a bar on a terminal."""

    def __init__(self, context: dg.AssetExecutionContext, label: str) -> None:
        self.context, self.label, self._last = context, label, 0.0
        self._tty = sys.stderr.isatty() and not live.listening()

    def __call__(self, snap: ProgressSnapshot) -> None:
        line = format_progress(snap)
        live.report(self.label, line)
        if self._tty:
            sys.stderr.write(f"\r{self.label} {line}")
            sys.stderr.flush()
        now = time.monotonic()
        if now - self._last >= LOG_EVERY_S or (snap.total and snap.done >= snap.total):
            self._last = now
            self.context.log.info(f"{self.label} {line}")

    def close(self) -> None:
        live.done(self.label)
        if self._tty:
            sys.stderr.write("\n")


def plan_with_reasks(cfg: EndpointConfig, requests: Sequence[LLMRequest], journal: Journal, stage: str,
                     partition: str) -> tuple[list[LLMRequest], list[LLMRequest], list[LLMRequest]]:  # fmt: skip
    """`journal.plan`, plus loops: a sample whose answer looped is never bought again, and its re-ask
    (the same prompt as another sample, `LLMRequest.reask`) is sent unless it is journaled already.
    Returns (to_send, reused, reasks) where `reasks` are every re-ask the partition has."""
    to_send, reused = plan(cfg, requests, journal, stage=stage)
    state = journal.final_state(stage, partition) if journal.has_files(stage, partition) else {}
    looped = {h for h, (status, _) in state.items() if status == REPETITION}
    if not looped:
        return to_send, reused, []
    again = [r for r in to_send if request_hash(cfg, r) in looped]
    to_send = [r for r in to_send if request_hash(cfg, r) not in looped]
    reused = reused + again
    reasks = [r.reask() for r in reused if not r.is_reask and request_hash(cfg, r) in looped] if cfg.loop_reask else []
    reask_send, _ = plan(cfg, reasks, journal, stage=stage)
    reask_send = [r for r in reask_send if request_hash(cfg, r) not in looped]
    return to_send + reask_send, reused, reasks


def run_stage(context: dg.AssetExecutionContext, cfg: EndpointConfig, stage: str, partition: str,
              requests: Sequence[LLMRequest], budget: Budget | None = None) -> StageRun:
    """Send what the journal does not already hold; return the final rows for `requests` (and re-asks).

    No warehouse connection is open here: callers read their inputs before and write after.
    SIGINT/SIGTERM stop the run within `shutdown_grace_seconds`; `RunInterrupted` is re-raised so
    that Dagster ends the run as interrupted (FAILURE, or CANCELED when it was asked to cancel).
    """
    journal = Journal(config().journal_dir)
    to_send, reused, _ = plan_with_reasks(cfg, requests, journal, stage, partition)
    summary = None
    if to_send:
        resolve_api_key(cfg)  # a missing key is one clear error before anything is sent
        context.log.info(f"{stage}[{partition}]: {len(to_send)} to send, {len(reused)} reused from the journal "
                         f"-> {cfg.model} at {cfg.describe_targets()} (concurrency "
                         f"{sum(t.concurrency for t in cfg.targets())})")
        reporter = ProgressReporter(context, f"{stage}[{partition}]")
        try:
            with JournalWriter(journal, stage) as writer:
                summary = run_requests_sync(to_send, cfg, writer, run_id=context.run_id, progress=reporter,
                                            budget=budget)
        except RunInterrupted as exc:
            context.log.error(f"{stage}[{partition}]: {exc}")
            raise
        finally:
            reporter.close()
        failed_all = summary.requests > 0 and set(summary.by_status) <= {"error"}
        if failed_all:
            raise dg.Failure(
                description=(f"{stage}[{partition}]: all {summary.requests} requests to {cfg.model} at "
                             f"{summary_url(cfg)} failed - is the endpoint up and the key valid? "
                             "Failures are journaled; fix the endpoint and re-run."),
                metadata={"by_status": dg.MetadataValue.json(summary.by_status)})
    else:
        context.log.info(f"{stage}[{partition}]: all {len(reused)} requests already in the journal; nothing sent")
    # every re-ask a request may have (made now or by an earlier run): the join keeps those that exist
    everything = list(requests) + ([r.reask() for r in requests if not r.is_reask] if cfg.loop_reask else [])
    wanted = pa.table({
        "request_hash": [request_hash(cfg, r) for r in everything],
        "prompt_id": [r.prompt_id for r in everything],
        "sample_index": pa.array([r.sample_index for r in everything], pa.int32()),
        "purpose": [r.purpose for r in everything],
    })
    return StageRun(len(requests), len(reused), len(to_send), summary, final_rows(journal, stage, partition, wanted))


def summary_url(cfg: EndpointConfig) -> str:
    return cfg.describe_targets()


def final_rows(journal: Journal, stage: str, partition: str, wanted: pa.Table) -> pa.Table:
    """Latest final journal row per wanted request hash, with attempt count and total cost.

    The latest attempt is chosen on narrow columns first; the wide ones (reasoning, content)
    are read only for the chosen rows, so no whole partition of text is held for the choice.
    """
    with journal.reading(stage):  # the files listed stay in place until the query is done
        return _final_rows(journal, stage, partition, wanted)


def _final_rows(journal: Journal, stage: str, partition: str, wanted: pa.Table) -> pa.Table:
    con = journal.connect()
    try:
        con.register("wanted", wanted)
        if journal.has_files(stage, partition):
            con.execute(f"CREATE TEMP VIEW j AS SELECT * FROM {journal.relation_sql(stage, partition, row_ids=True)}")
        else:  # nothing journaled yet: same columns, no rows
            empty = JOURNAL_SCHEMA.empty_table()
            con.register("j", empty.append_column("filename", pa.array([], pa.string()))
                         .append_column("file_row_number", pa.array([], pa.int64())))
        return con.sql(f"""
            WITH latest AS (
                SELECT request_hash, filename, file_row_number FROM j WHERE {LATEST_FINAL}
            ),
            attempts AS (
                SELECT request_hash, count(*) AS attempts, sum(coalesce(cost, 0)) AS total_cost FROM j GROUP BY 1
            ),
            finals AS (
                SELECT j.* EXCLUDE (prompt_id, sample_index, purpose, filename, file_row_number)
                FROM j JOIN latest USING (filename, file_row_number)
            )
            SELECT w.*, f.* EXCLUDE (request_hash), a.attempts, a.total_cost
            FROM wanted AS w
            JOIN finals AS f USING (request_hash)
            JOIN attempts AS a USING (request_hash)
        """).to_arrow_table()
    finally:
        con.close()


def summary_metadata(run: StageRun) -> dict:
    """Counts, tokens, cost and latency for the UI."""
    finals = run.finals
    answered = pc.sum(pc.less(finals.column("sample_index"), REASK_SAMPLE_OFFSET)).as_py() if finals.num_rows else 0
    out: dict = {"requests": run.requested, "reused_from_journal": run.reused, "sent_this_run": run.sent,
                 "pending": run.requested - (answered or 0)}
    if finals.num_rows:
        cols = finals.select(["status", "usage_prompt_tokens", "usage_completion_tokens", "total_cost",
                              "latency_s", "simulated", "currency"]).to_pydict()
        statuses: dict[str, int] = {}
        for s in cols["status"]:
            statuses[s] = statuses.get(s, 0) + 1
        lat = sorted(v for v in cols["latency_s"] if v is not None)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None

        out.update({
            "by_status": dg.MetadataValue.json(statuses),
            "prompt_tokens": int(sum(v or 0 for v in cols["usage_prompt_tokens"])),
            "completion_tokens": int(sum(v or 0 for v in cols["usage_completion_tokens"])),
            "cost": round(float(sum(v or 0 for v in cols["total_cost"])), 6),
            "currency": next((c for c in cols["currency"] if c), ""),
            "latency_p50_s": pct(0.5), "latency_p90_s": pct(0.9), "latency_p99_s": pct(0.99),
            "simulated": any(bool(v) for v in cols["simulated"]),
        })
    if run.summary is not None:
        out["this_run"] = dg.MetadataValue.json({k: v for k, v in run.summary.to_dict().items()
                                                 if k not in ("run_id",)})
    return out
