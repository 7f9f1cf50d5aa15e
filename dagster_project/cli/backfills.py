"""Launch an asset backfill, as the UI's "Materialize" with chosen partitions does, and see it through.

The backfill is an ordinary Dagster asset backfill over the code location (it shows in the UI
under its title, its runs grouped under it): the partitioned stages run once per chosen source,
the shared SQL models and the export once after them. When a Dagster daemon is running
(`dagster dev`), it executes the backfill and this module only follows it. Otherwise the CLI
runs Dagster's own backfill iteration itself, without the daemon's 30-second tick, and executes
each run in this process, so Ctrl-C reaches the run that is working and nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_jobs
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster._time import get_current_timestamp
from dagster._utils.hosted_user_process import recon_job_from_origin

from dagster_project.common.runs import HOST_TAG, PID_TAG, cancel_orphaned_backfills, reap_dead_runs
from dagster_project.config import REPO_ROOT, SettingsError, config

LOCATION_NAME = "r1_distill"  # the code location's name in pyproject.toml
DAEMON_FRESH_S = 60.0
POLL_S = 0.25
DONE = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
        BulkActionStatus.FAILED, BulkActionStatus.CANCELED}
IN_PROCESS = {
    "run_launcher": {"module": "dagster_project.cli.backfills", "class": "InProcessRunLauncher"},
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
}


class InProcessRunLauncher(RunLauncher, ConfigurableClass):
    """Launching a run queues it; `execute_launched` runs the queue in this process and thread.

    The backfill iteration submits its runs from inside an event loop; executing them there
    would nest event loops and keep the backfill's state unsaved while a long run works. They
    run right after the iteration instead, in the main thread, where Ctrl-C reaches them.
    """

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        self._inst_data = inst_data
        self._queue: list[tuple[str, object]] = []
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> "InProcessRunLauncher":
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        self._queue.append((context.dagster_run.run_id, context.job_code_origin))

    def terminate(self, run_id: str) -> bool:
        return False

    def execute_launched(self) -> int:
        """Execute every queued run, in order; returns how many ran.

        A run ended by Ctrl-C or SIGTERM (Dagster records it as a failure) raises KeyboardInterrupt
        here, so the backfill stops instead of going on to the next run.
        """
        ran = 0
        while self._queue:
            run_id, origin = self._queue.pop(0)
            run = self._instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                execute_run(recon_job_from_origin(origin), run, self._instance)
                ran += 1
                if was_interrupted(self._instance, run_id):
                    raise KeyboardInterrupt(f"run {run_id[:8]} was interrupted")
        return ran

    def cancel_queued(self) -> None:
        """Mark the runs launched but not executed canceled (the backfill stops before them)."""
        while self._queue:
            run = self._instance.get_run_by_id(self._queue.pop(0)[0])
            if run is not None and not run.is_finished:
                self._instance.report_run_canceled(run, message="not started: the backfill was interrupted")


INTERRUPT_ERRORS = {"DagsterExecutionInterruptedError", "RunInterrupted", "KeyboardInterrupt"}


def was_interrupted(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether a finished run failed because a signal interrupted it."""
    from dagster._core.events import DagsterEventType

    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE, limit=1).records:
        error = getattr(record.event_log_entry.dagster_event.event_specific_data, "error", None)
        while error is not None:
            if error.cls_name in INTERRUPT_ERRORS:
                return True
            error = error.cause
    return False


@dataclass(frozen=True)
class BackfillProgress:
    backfill_id: str
    status: BulkActionStatus
    targeted: int      # asset partitions the backfill targets
    materialized: int
    failed: int
    runs: int
    runs_done: int
    runs_failed: int   # a run fails when a step or a blocking check fails, even if its assets materialized
    current: str       # what runs now ("" when nothing)
    elapsed_s: float

    @property
    def done(self) -> bool:
        return self.status in DONE


@contextmanager
def cli_instance() -> Iterator[dg.DagsterInstance]:
    """The instance at $DAGSTER_HOME, launching runs in this process (the UI sees them all)."""
    ref = InstanceRef.from_dir(os.environ["DAGSTER_HOME"], overrides=IN_PROCESS)
    with dg.DagsterInstance.from_ref(ref) as instance:
        yield instance


@contextmanager
def workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The project's code location, loaded in this process."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="dagster_project.definitions",
                                                    working_directory=str(REPO_ROOT)),
        location_name=LOCATION_NAME)
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as ctx:
        error = ctx.create_request_context().get_code_location_error(LOCATION_NAME)
        if error is not None:
            raise SettingsError(f"the code location failed to load: {error.message.strip().splitlines()[-1]}")
        yield ctx


def stage_jobs() -> dict[str, list[dg.AssetKey]]:
    """The stage jobs of the code location (its asset jobs) and the assets each selects, in pipeline order."""
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    out = {}
    for job in defs.jobs or []:
        selection = getattr(job, "selection", None)  # op jobs (publish_to_hub) are not stages
        if selection is not None:
            out[job.name] = sorted(selection.resolve(graph), key=lambda k: k.to_user_string())
    return out


def target_subset(ctx: WorkspaceProcessContext, sources: Iterable[str] | None,
                  assets: Iterable[dg.AssetKey] | None = None) -> AssetGraphSubset:
    """Chosen sources of every partitioned asset, plus every shared asset (or only `assets`)."""
    graph = ctx.create_request_context().asset_graph
    wanted = set(assets) if assets is not None else set(graph.get_all_asset_keys())
    partitions: dict = {}
    shared: set[dg.AssetKey] = set()
    for key in wanted:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        if node.partitions_def is None:
            shared.add(key)
            continue
        known = node.partitions_def.get_partition_keys()
        chosen = list(sources) if sources else known
        for source in chosen:
            if source not in known:
                raise SettingsError(f"unknown source key {source!r}; known: {', '.join(known)}")
        partitions[key] = node.partitions_def.subset_with_partition_keys(chosen)
    return AssetGraphSubset(partitions_subsets_by_asset_key=partitions, non_partitioned_asset_keys=shared)


def launch(instance: dg.DagsterInstance, ctx: WorkspaceProcessContext, *, sources: Iterable[str] | None,
           assets: Iterable[dg.AssetKey] | None = None, title: str, tags: dict[str, str] | None = None,
           log_level: str = "CRITICAL", op_config: dict | None = None) -> str:
    """Record a new asset backfill (status REQUESTED) and return its id."""
    backfill_id = make_new_backfill_id()
    run_tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), "distill/config_hash": config().hash(),
                **(tags or {})}
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id, backfill_timestamp=get_current_timestamp(), tags=run_tags,
        dynamic_partitions_store=instance, asset_graph_subset=target_subset(ctx, sources, assets),
        title=title, description=f"launched by `distill` (config {config().hash()})",
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}},
                    **({"ops": op_config} if op_config else {})})
    instance.add_backfill(backfill)
    return backfill_id


def daemon_running(instance: dg.DagsterInstance) -> bool:
    beat = instance.get_daemon_heartbeats().get("BACKFILL")
    return beat is not None and time.time() - beat.timestamp < DAEMON_FRESH_S


def progress(instance: dg.DagsterInstance, backfill_id: str, started: float) -> BackfillProgress:
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None
    data = backfill.asset_backfill_data
    count = (lambda s: sum(1 for _ in s.iterate_asset_partitions())) if data else (lambda s: 0)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    finished = [r for r in runs if r.is_finished]
    active = [r for r in runs if not r.is_finished]
    current = ""
    if active:
        run = next((r for r in active if r.status == dg.DagsterRunStatus.STARTED), active[-1])
        keys = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or []))
        part = run.tags.get("dagster/partition")
        current = f"{keys}[{part}]" if part else keys
    return BackfillProgress(
        backfill_id, backfill.status, count(data.target_subset) if data else 0,
        count(data.materialized_subset) if data else 0, count(data.failed_and_downstream_subset) if data else 0,
        len(runs), len(finished), sum(r.status != dg.DagsterRunStatus.SUCCESS for r in finished), current,
        time.monotonic() - started)


def run_to_completion(instance: dg.DagsterInstance, ctx: WorkspaceProcessContext, backfill_id: str,
                      on_progress: Callable[[BackfillProgress], None] = lambda p: None) -> BackfillProgress:
    """Drive (or, with a live daemon, follow) this one backfill until it ends.

    Interrupted (Ctrl-C, SIGTERM), the backfill is canceled before the interrupt propagates, so
    no daemon started later picks it up and spends on it.
    """
    started = time.monotonic()
    log = logging.getLogger("dagster_project.backfill")
    try:
        while True:
            state = progress(instance, backfill_id, started)
            on_progress(state)
            if state.done:
                return state
            if daemon_running(instance):
                time.sleep(POLL_S * 4)
                continue
            backfill = instance.get_backfill(backfill_id)
            for error in execute_backfill_jobs(ctx, log, [backfill]):
                if error is not None:
                    log.warning("backfill %s: %s", backfill_id, error.message.strip().splitlines()[-1])
                    time.sleep(POLL_S)
            instance.run_launcher.execute_launched()
    except BaseException:
        if isinstance(instance.run_launcher, InProcessRunLauncher):
            instance.run_launcher.cancel_queued()
        backfill = instance.get_backfill(backfill_id)
        if backfill is not None and backfill.status not in DONE:
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
        raise


def run_backfill(*, sources: Iterable[str] | None, assets: Iterable[dg.AssetKey] | None, title: str,
                 on_progress: Callable[[BackfillProgress], None] = lambda p: None,
                 tags: dict[str, str] | None = None, log_level: str = "CRITICAL",
                 op_config: dict | None = None) -> BackfillProgress:
    """End dead runs, launch a backfill of `assets` (default: all) for `sources`, see it through."""
    with cli_instance() as instance:
        reap_dead_runs(instance)
        cancel_orphaned_backfills(instance)
        with workspace(instance) as ctx:
            backfill_id = launch(instance, ctx, sources=sources, assets=assets, title=title, tags=tags,
                                 log_level=log_level, op_config=op_config)
            return run_to_completion(instance, ctx, backfill_id, on_progress)
