"""Runs whose process died: found, ended, and their pool slots freed.

A run worker killed with SIGKILL (or a machine that lost power) never reports its end: the run
stays STARTED in the instance and keeps its concurrency-pool slots, and
`free_slots_after_run_end_seconds` never applies to a run that never ends. Every event of a
run carries the pid of the process that wrote it; when that process is gone from this machine,
the run is reported failed (a PIPELINE_FAILURE event, as the UI's "terminate" would) and its
slots are freed. `distill` does this before it launches anything, and the `dead_run_reaper`
sensor does it every 30 seconds while `dagster dev` runs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from dagster_project.lib.processes import process_alive

ACTIVE = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
HOST_TAG = "distill/host"
PID_TAG = "distill/pid"  # the process that drives a backfill launched by `distill`


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    pid: int


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started the run (its first event with a pid)."""
    for of_type in (DagsterEventType.RUN_START, DagsterEventType.RUN_STARTING, DagsterEventType.ENGINE_EVENT):
        records = instance.get_records_for_run(run_id, of_type=of_type, limit=1).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.pid:
                return int(event.pid)
    return None


def dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Active runs of this machine whose worker process no longer exists."""
    out = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=RunsFilter(statuses=ACTIVE)):
        if run.tags.get(HOST_TAG, host) != host:
            continue  # launched elsewhere: its pid means nothing here
        pid = _worker_pid(instance, run.run_id)
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            out.append(DeadRun(run.run_id, run.job_name, pid))
    return out


def reap_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """End every dead run (reported failed) and free the pool slots it held."""
    reaped = dead_runs(instance)
    for dead in reaped:
        run = instance.get_run_by_id(dead.run_id)
        if run is None or run.status not in ACTIVE:
            continue
        instance.report_run_failed(run, message=f"the run's process (pid {dead.pid}) is gone: it was killed or "
                                                "crashed; the run is ended so its pool slots free themselves")
        instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)
    return reaped


def cancel_orphaned_backfills(instance: dg.DagsterInstance) -> list[str]:
    """Cancel backfills that a `distill` process of this machine was driving when it died, so that
    no daemon started later resumes (and pays for) work nobody is watching."""
    host, out = socket.gethostname(), []
    for backfill in instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])):
        pid = backfill.tags.get(PID_TAG)
        if pid and backfill.tags.get(HOST_TAG) == host and int(pid) != os.getpid() and not process_alive(int(pid)):
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
            out.append(backfill.backfill_id)
    return out


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Ends runs whose process died (killed or crashed) so their concurrency-pool slots free "
                       "themselves; a killed run would otherwise hold the duckdb or endpoint pool forever.")
def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    canceled = cancel_orphaned_backfills(context.instance)
    if canceled:
        context.log.warning(f"canceled {len(canceled)} backfill(s) whose distill process died")
    if reaped:
        context.log.warning(f"ended {len(reaped)} dead run(s): {', '.join(d.run_id[:8] for d in reaped)}")
        return dg.SkipReason(f"ended {len(reaped)} dead run(s)")
    return dg.SkipReason("no dead runs")
