"""The whole pipeline at full size against the simulator (a subprocess, zero latency), measured per stage.

Generates synthetic sources (benchmarks/generate_sources.py) unless --sources names a generated
folder, points the settings at them and at a temporary warehouse and DAGSTER_HOME, and runs every
stage job as `distill run --stage JOB` does (one asset backfill each, real Dagster runs). Prints
one JSON object per stage as it finishes, then the whole result; --out also writes it to a file.

    python benchmarks/full_run.py --scale 1.0 --out benchmarks/results/full_run.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The simulator's lengths: R1 reasoning of a few thousand characters, answers of a few hundred.
REASONING_CHARS = (1500, 6000)
ANSWER_CHARS = (200, 900)

STAGE_ROWS = {  # per stage job: the rows it ends with
    "load_sources": "SELECT count(*) FROM raw_prompts",
    "select_prompts": "SELECT count(*) FROM prompt_selection WHERE decision = 'selected'",
    "generate_and_score": "SELECT count(*) FROM r1_completions",
    "curate_and_export": "SELECT count(*) FROM sft_balanced",
}
STEP_ROWS = {  # per asset: the rows it ends with (steps of the generate_and_score job)
    "r1_completions": "SELECT count(*) FROM r1_completions",
    "verifications": "SELECT count(*) FROM verifications",
    "int_judge_queue": "SELECT count(*) FROM int_judge_queue",
    "judge_scores": "SELECT count(*) FROM judge_scores",
}


def machine_info() -> dict:
    """CPU, memory, versions and date, recorded next to the numbers."""
    import duckdb

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        pass
    return {
        "cpu_count": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(), "duckdb": duckdb.__version__, "platform": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _tree_rss_bytes(root: int, per_process: dict[str, int] | None = None) -> int:
    """RSS of a process and all its descendants (Linux /proc); `per_process` collects each one's peak."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
        if per_process is not None and pid in rss:
            name = _process_name(pid, root)
            per_process[name] = max(per_process.get(name, 0), rss[pid])
    return total


def _process_name(pid: int, root: int) -> str:
    if pid == root:
        return "pipeline"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    for key, name in (("simulator", "simulator"), ("spawn_main", "worker processes"), ("watch_orphans", "dagster log watchers")):
        if key in cmd:
            return name
    return "other"


class RssSampler(threading.Thread):
    """Samples the RSS of this process tree every `interval` seconds; `peak()` since the last reset."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval, self._peak, self._stop = interval, 0, threading.Event()
        self.by_process: dict[str, int] = {}

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _tree_rss_bytes(os.getpid(), self.by_process))

    def reset(self) -> tuple[int, dict[str, float]]:
        """(peak tree RSS, peak RSS per kind of process) since the last reset."""
        peak, self._peak = self._peak, _tree_rss_bytes(os.getpid())
        by_process, self.by_process = self.by_process, {}
        return peak, {k: _mb(v) for k, v in sorted(by_process.items())}

    def stop(self) -> None:
        self._stop.set()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def _emit(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def step_seconds(instance, backfill_id: str) -> dict[str, float]:
    """Seconds spent in each asset's steps over the backfill's runs (summed across partitions)."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    out: dict[str, float] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})):
        for record in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records:
            event = record.event_log_entry.dagster_event
            out[event.step_key] = round(out.get(event.step_key, 0.0) + event.event_specific_data.duration_ms / 1000, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 110,000 distinct prompts")
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    parser.add_argument("--sources", type=Path, help="a folder written by generate_sources.py (default: generate)")
    parser.add_argument("--workdir", type=Path, help="where the warehouse and DAGSTER_HOME go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="distill-full-run-"))
    work.mkdir(parents=True, exist_ok=True)
    sampler = RssSampler()
    sampler.start()
    result: dict = {"benchmark": "full_run", "scale": args.scale, "machine": machine_info(), "stages": []}
    t_start = time.perf_counter()
    from benchmarks.generate_sources import generate

    if args.sources is None:
        t0 = time.perf_counter()
        gen = generate(work / "sources_data", args.scale, seed=20250219)
        args.sources = work / "sources_data"
        result["generate_sources"] = {"seconds": round(time.perf_counter() - t0, 2),
                                      "rows_written": gen["rows_written"], "distinct_prompts": gen["distinct_prompts"],
                                      "planted": gen["planted"], "bytes_written": gen["bytes_written"]}
        _emit({"generate_sources": result["generate_sources"]})

    # Settings are read at import time (partitions come from the manifests): set them first.
    os.environ["DISTILL_SOURCES__MANIFESTS"] = str((args.sources / "sources").resolve())
    os.environ["DISTILL_WAREHOUSE__DIR"] = str(work / "warehouse")
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
    os.environ.setdefault("R1_API_KEY", "sk-simulated")
    os.environ.setdefault("JUDGE_API_KEY", "sk-simulated")
    (work / "dagster_home").mkdir(parents=True, exist_ok=True)

    import duckdb

    from dagster_project.config import config, reload_config
    from dagster_project.simulator.answer_key import answer_key
    from dagster_project.simulator.server import SimulatorSettings, start_simulator_process

    t0 = time.perf_counter()
    key = answer_key()
    sim_settings = SimulatorSettings(seed=3, latency_scale=0.0, reasoning_chars=REASONING_CHARS,
                                     answer_chars=ANSWER_CHARS)
    sim = start_simulator_process(sim_settings, key)
    result["simulator"] = {"reasoning_chars": list(REASONING_CHARS), "answer_chars": list(ANSWER_CHARS),
                           "latency_scale": 0.0, "answer_key_entries": len(key),
                           "startup_seconds": round(time.perf_counter() - t0, 2)}
    # What `distill run --stage JOB` does, one stage job after another, with the endpoints on the simulator.
    os.environ["DISTILL_GENERATION__BASE_URL"] = sim.base_url
    os.environ["DISTILL_JUDGE__BASE_URL"] = sim.base_url
    reload_config()
    shutil.copy(ROOT / "dagster_project" / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
    from dagster_project.cli.backfills import cli_instance, run_backfill, stage_jobs

    sampler.reset()
    try:
        for job, assets in stage_jobs().items():
            cpu0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            state = run_backfill(sources=None, assets=assets, title=f"full_run: {job}", log_level="WARNING")
            seconds = time.perf_counter() - t0
            if state.status.value != "COMPLETED_SUCCESS" or state.runs_failed:
                raise SystemExit(f"{job}: backfill {state.backfill_id} ended {state.status.value} "
                                 f"({state.runs_failed} runs failed)")
            with duckdb.connect(str(config().database_path), read_only=True) as con:
                rows = con.execute(STAGE_ROWS[job]).fetchone()[0]
                steps = {name: {"rows": con.execute(sql).fetchone()[0]} for name, sql in STEP_ROWS.items()
                         if job == "generate_and_score"}
            with cli_instance() as instance:
                for name, seconds_in_step in step_seconds(instance, state.backfill_id).items():
                    steps.setdefault(name, {})["step_seconds"] = seconds_in_step
            peak, by_process = sampler.reset()
            entry = {
                "stage": job, "rows": rows, "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds, 1) if seconds else None, "dagster_runs": state.runs,
                "steps": steps,
                "cpu_s_self": round(_cpu(resource.RUSAGE_SELF) - cpu0[0], 2),
                "cpu_s_reaped_children": round(_cpu(resource.RUSAGE_CHILDREN) - cpu0[1], 2),
                "peak_rss_tree_mb": _mb(peak), "peak_rss_by_process_mb": by_process,
                "warehouse_mb": _mb(_size(config().database_path)), "journal_mb": _mb(_size(config().journal_dir)),
            }
            result["stages"].append(entry)
            _emit(entry)
        with duckdb.connect(str(config().database_path), read_only=True) as con:
            result["counts"] = {
                "decisions": dict(con.execute("SELECT decision, count(*) FROM prompt_selection GROUP BY 1 ORDER BY 1").fetchall()),
                "rejected_rows": con.execute("SELECT count(*) FROM rejected_rows").fetchone()[0],
                "verify_status": dict(con.execute("SELECT status, count(*) FROM verifications GROUP BY 1 ORDER BY 1").fetchall()),
                "sft_by_category": dict(con.execute("SELECT category, count(*) FROM sft_balanced GROUP BY 1 ORDER BY 1").fetchall()),
                "avg_reasoning_chars": round(con.execute("SELECT avg(length(reasoning)) FROM r1_completions").fetchone()[0], 1),
                "avg_content_chars": round(con.execute("SELECT avg(length(content)) FROM r1_completions").fetchone()[0], 1),
            }
        sim_stats = sim.stats()
        result["simulator"]["requests"] = sim_stats["total_requests"]
    finally:
        sim.close()
        sampler.stop()
    total = sum(s["seconds"] for s in result["stages"])
    ru_self, ru_child = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["totals"] = {
        "pipeline_seconds": round(total, 1), "pipeline_minutes": round(total / 60, 2),
        "wall_seconds_including_generation": round(time.perf_counter() - t_start, 1),
        "peak_rss_tree_mb": max(s["peak_rss_tree_mb"] for s in result["stages"]),
        "maxrss_self_mb": _mb(ru_self.ru_maxrss * 1024), "maxrss_largest_child_mb": _mb(ru_child.ru_maxrss * 1024),
        "warehouse_mb": _mb(_size(config().database_path)), "journal_mb": _mb(_size(config().journal_dir)),
        "exports_mb": _mb(_size(config().exports_dir)),
    }
    _emit({"totals": result["totals"]})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
