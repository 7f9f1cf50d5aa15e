"""What journaling costs the engine: responses/s while requests run, the tail after the last
response (final fold, compaction), CPU per response and peak memory, with and without the
offline token counts. Prints one JSON object.

    python benchmarks/journal_wal_cost.py --requests 9000 --concurrency 300 --latency 1.0

Each configuration runs in a fresh child process against the simulator (a subprocess), so the
CPU and memory figures are the engine's and the journal's alone, helper processes included.
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

from benchmarks.full_run import machine_info  # noqa: E402
from dagster_project.lib.llm import tokens  # noqa: E402
from dagster_project.lib.llm.engine import run_requests_sync  # noqa: E402
from dagster_project.lib.llm.journal import Journal, JournalWriter  # noqa: E402
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest  # noqa: E402
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process  # noqa: E402


def _requests(n: int):
    for i in range(n):
        yield LLMRequest.from_prompt(f"wal-{i}", "bench", f"第{i}题：计算 {i} + {i * 7} 的值。")


def child(base_url: str, n: int, concurrency: int, token_counts: bool) -> dict:
    cfg = EndpointConfig(base_url=base_url, model="deepseek-r1", concurrency=concurrency, max_attempts=3,
                         backoff_base_seconds=0.1)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-wal-") as root:
        t0 = time.monotonic()
        writer = JournalWriter(Journal(root), "r1", count_tokens=token_counts)
        summary = run_requests_sync(_requests(n), cfg, writer, run_id="bench")
        writer.close()
        done = time.monotonic()
        # a journal that counted tokens in a helper process: reap it so its CPU is counted below
        getattr(tokens, "shutdown_token_helper", lambda: None)()
        rows = Journal(root).read_sql("r1", "bench", "SELECT count(*) AS n FROM j").column("n")[0].as_py()
    own, helpers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "ok": summary.by_status.get("ok", 0),
        "journal_rows": rows,
        "responses_per_s_while_running": round(n / summary.elapsed_s, 1),
        "tail_after_last_response_s": round(done - t0 - summary.elapsed_s, 2),
        "responses_per_s_overall": round(n / (done - t0), 1),
        "cpu_ms_per_response": round(1000 * (own.ru_utime + own.ru_stime + helpers.ru_utime + helpers.ru_stime) / n, 3),
        "helper_process_cpu_ms_per_response": round(1000 * (helpers.ru_utime + helpers.ru_stime) / n, 3),
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),
        "helper_peak_rss_mb": round(helpers.ru_maxrss / 1024, 1),
        "latency_p50_s": summary.latency_p50_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=9000)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--latency", type=float, default=1.0, help="fixed simulated seconds per request")
    parser.add_argument("--child", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--no-token-counts", dest="token_counts", action="store_false", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        print(json.dumps(child(args.child, args.requests, args.concurrency, args.token_counts)))
        return
    settings = SimulatorSettings(ttft_s=args.latency, tokens_per_s=0, latency_scale=1.0,
                                 reasoning_chars=(300, 1200), answer_chars=(80, 300))  # fmt: skip
    out: dict = {"machine": machine_info(), "requests": args.requests, "concurrency": args.concurrency,
                 "latency_s": args.latency, "ideal_responses_per_s": args.concurrency / args.latency}
    with start_simulator_process(settings) as sim:
        for label, flags in (("with_token_counts", []), ("without_token_counts", ["--no-token-counts"])):
            sim.reset()
            cmd = [sys.executable, os.path.abspath(__file__), "--child", sim.base_url, "--requests",
                   str(args.requests), "--concurrency", str(args.concurrency), *flags]  # fmt: skip
            load = os.getloadavg()[0]
            result = subprocess.run(cmd, check=True, capture_output=True, text=True)
            out[label] = {**json.loads(result.stdout.strip().splitlines()[-1]), "loadavg_1min_before": round(load, 2)}
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
