"""Engine throughput against the simulator (subprocess) with a fixed per-request latency.

Prints one JSON object. The engine runs in a fresh child process per measured run so that
CPU time and peak RSS belong to that run alone; the small run (--compare-requests) shows
whether memory stays flat as the number of requests grows.

    python benchmarks/engine_throughput.py --requests 30000 --concurrency 300 --latency 1.0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dagster_project.lib.llm.engine import run_requests_sync  # noqa: E402
from dagster_project.lib.llm.journal import Journal, JournalWriter  # noqa: E402
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest  # noqa: E402
from dagster_project.simulator.server import (  # noqa: E402
    SimulatorSettings,
    start_simulator_process,
)


def _requests(n: int):
    for i in range(n):
        yield LLMRequest.from_prompt(f"bench-{i}", "bench", f"第{i}题：计算 {i} + {i * 7} 的值。")


def measure(base_url: str, n: int, concurrency: int, stream: bool, token_counts: bool = True) -> dict:
    """Run n requests through engine + journal in this process and measure it."""
    cfg = EndpointConfig(base_url=base_url, model="deepseek-r1", concurrency=concurrency, stream=stream,
                         max_attempts=3, backoff_base_seconds=0.1)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as root:
        ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        with JournalWriter(Journal(root), "r1", count_tokens=token_counts) as writer:
            summary = run_requests_sync(_requests(n), cfg, writer, run_id="bench")
        elapsed = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        helper = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = Journal(root).read_sql("r1", "bench", "SELECT count(*) AS n FROM j").column("n")[0].as_py()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {
        "requests": n,
        "ok": summary.by_status.get("ok", 0),
        "journal_rows": rows,
        "elapsed_s": round(elapsed, 3),
        "achieved_rps": round(n / elapsed, 2),
        "cpu_s_per_request": round(cpu / n, 6),
        "token_helper_cpu_s_per_request": round((helper.ru_utime + helper.ru_stime) / n, 6),
        "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1),
        "latency_p50_s": summary.latency_p50_s,
        "latency_p99_s": summary.latency_p99_s,
    }


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of another process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(args: argparse.Namespace, n: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--base-url", args.base_url, "--requests", str(n),
           "--concurrency", str(args.concurrency)] + ([] if args.stream else ["--no-stream"]) + (
           [] if args.token_counts else ["--no-token-counts"])  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--compare-requests", type=int, default=3000, help="smaller run for memory flatness; 0 = skip")
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--latency", type=float, default=1.0, help="fixed simulated seconds per request")
    parser.add_argument("--no-stream", dest="stream", action="store_false")
    parser.add_argument("--no-token-counts", dest="token_counts", action="store_false",
                        help="skip the journal's offline token counting (to isolate its cost)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        print(json.dumps(measure(args.base_url, args.requests, args.concurrency, args.stream, args.token_counts)))
        return
    settings = SimulatorSettings(ttft_s=args.latency, tokens_per_s=0, latency_scale=1.0,
                                 reasoning_chars=(300, 1200), answer_chars=(80, 300))  # fmt: skip
    with start_simulator_process(settings) as sim:
        args.base_url = sim.base_url
        small = _child(args, args.compare_requests) if args.compare_requests else None
        sim.reset()
        sim_cpu0 = _proc_cpu_s(sim.proc.pid)
        big = _child(args, args.requests)
        sim_cpu = _proc_cpu_s(sim.proc.pid) - sim_cpu0
        stats = sim.stats()
    ideal = args.concurrency / args.latency
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "stream": args.stream,
        "token_counts": args.token_counts,
        "elapsed_s": big["elapsed_s"],
        "achieved_rps": big["achieved_rps"],
        "ideal_rps": ideal,
        "ratio": round(big["achieved_rps"] / ideal, 3),
        "engine_cpu_s_per_request": big["cpu_s_per_request"],
        "token_helper_cpu_s_per_request": big["token_helper_cpu_s_per_request"],
        "peak_rss_mb": big["peak_rss_mb"],
        "ok": big["ok"],
        "journal_rows": big["journal_rows"],
        "server_max_in_flight": stats["max_in_flight"],
        "simulator_cpu_s_per_request": round(sim_cpu / args.requests, 6),
        "small_run": small,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
