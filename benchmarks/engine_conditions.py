"""The engine under the conditions users meet: clean, noisy faults, a capped provider, an rpm-limited one.

Each condition starts the project's simulator as a subprocess (2 s per request, streamed in paced
chunks) and runs the engine in a fresh child process, so that CPU time and peak RSS belong to that
run alone. Prints one JSON object: per condition the achieved rate against the ideal, the share of
attempts answered 429, CPU per request, peak RSS and whether every prompt was answered exactly once
(the simulator's per-prompt counters).

    python benchmarks/engine_conditions.py                       # all conditions, 6000 requests each
    python benchmarks/engine_conditions.py --conditions clean,capped --requests 2000
    python benchmarks/engine_conditions.py --engine-src /path/to/other/checkout   # e.g. an older engine

`--engine-src` runs the engine (and journal) of another checkout against this checkout's simulator,
with the same settings: how the "before" figures are measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The fault mix of the issue: 10 % of first attempts fail, a fifth of them with a 429.
FAULTS = {"p_429": 0.02, "p_500": 0.02, "p_503": 0.02, "p_drop": 0.02, "p_malformed": 0.02, "fault_max_attempt": 1}


def conditions(args: argparse.Namespace) -> dict[str, dict]:
    """name -> (simulator settings, ideal requests per second)."""
    ideal = args.concurrency / args.latency
    return {
        "clean": {"sim": {}, "ideal_rps": ideal},
        "faults": {"sim": dict(FAULTS), "ideal_rps": ideal},
        "capped": {"sim": {"max_concurrency": args.cap}, "ideal_rps": min(ideal, args.cap / args.latency)},
        "rpm": {"sim": {"rpm_limit": args.rpm}, "ideal_rps": min(ideal, args.rpm / 60.0)},
        "rpm_headers": {"sim": {"rpm_limit": args.rpm, "rate_limit_headers": True}, "ideal_rps": min(ideal, args.rpm / 60.0)},
    }


# ---- the child: one engine run --------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.engine_src)
    from dagster_project.lib.llm.engine import run_requests_sync
    from dagster_project.lib.llm.journal import Journal, JournalWriter
    from dagster_project.lib.llm.types import EndpointConfig, LLMRequest

    try:
        from dagster_project.lib.llm.tokens import shutdown_token_helper
    except ImportError:
        shutdown_token_helper = None

    def requests(n: int):
        for i in range(n):
            yield LLMRequest.from_prompt(f"bench-{i}", "bench", f"第{i}题：计算 {i} + {i * 7} 的值。")

    # Settings both the old and the new engine accept; a generous attempt budget so that nothing
    # gives up against a capped provider.
    cfg = EndpointConfig(base_url=args.base_url, model="deepseek-r1", concurrency=args.concurrency, stream=True,
                         max_attempts=50, backoff_base_seconds=0.5, backoff_max_seconds=10.0)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as root:
        ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        with JournalWriter(Journal(root), "r1") as writer:
            summary = run_requests_sync(requests(args.requests), cfg, writer, run_id="bench")
        elapsed = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        if shutdown_token_helper is not None:
            shutdown_token_helper()
        helper = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = Journal(root).read_sql("r1", "bench", "SELECT count(*) FILTER (WHERE is_final) AS n FROM j")
        finals = rows.column("n")[0].as_py()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(json.dumps({
        "elapsed_s": round(elapsed, 3),
        "by_status": summary.by_status,
        "attempts": summary.attempts,
        "http_429": summary.http_429,
        "journal_finals": finals,
        "cpu_s_per_request": round(cpu / args.requests, 6),
        "token_helper_cpu_s_per_request": round((helper.ru_utime + helper.ru_stime) / args.requests, 6),
        "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1),
        "lowest_concurrency_limit": summary.lowest_concurrency_limit,
        "latency_p50_s": summary.latency_p50_s,
    }))


# ---- the parent: simulator + one child per condition -------------------------------------------------
def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_condition(args: argparse.Namespace, name: str, spec: dict, n: int) -> dict:
    sys.path.insert(0, ROOT)
    from dagster_project.simulator.server import SimulatorSettings, start_simulator_process

    ttft = min(args.ttft, args.latency)
    settings = SimulatorSettings(ttft_s=ttft, request_s=args.latency, latency_scale=1.0, chunk_tokens=args.chunk_tokens,
                                 reasoning_chars=(300, 1200), answer_chars=(80, 300), retry_after_s=1.0,
                                 **spec["sim"])  # fmt: skip
    with start_simulator_process(settings) as sim:
        sim_cpu0 = _proc_cpu_s(sim.proc.pid)
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--base-url", sim.base_url, "--requests", str(n),
               "--concurrency", str(args.concurrency), "--engine-src", args.engine_src]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": args.engine_src}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        sim_cpu = _proc_cpu_s(sim.proc.pid) - sim_cpu0
        stats = sim.stats()
    ok_counts = stats["ok_per_prompt"]
    faults = stats["faults"]
    answered_429 = faults.get("429", 0) + faults.get("capacity_429", 0) + faults.get("rpm_429", 0)
    achieved = n / out["elapsed_s"]
    return {
        "requests": n,
        "ideal_rps": round(spec["ideal_rps"], 2),
        "achieved_rps": round(achieved, 2),
        "ratio": round(achieved / spec["ideal_rps"], 3),
        "server_attempts": stats["total_requests"],
        "server_429": answered_429,
        "share_429": round(answered_429 / max(1, stats["total_requests"]), 4),
        "every_prompt_answered_once": len(ok_counts) == n and set(ok_counts.values()) == {1},
        "journal_finals": out["journal_finals"],
        "by_status": out["by_status"],
        "server_max_in_flight": stats["max_in_flight"],
        "engine_cpu_s_per_request": out["cpu_s_per_request"],
        "token_helper_cpu_s_per_request": out["token_helper_cpu_s_per_request"],
        "simulator_cpu_s_per_request": round(sim_cpu / max(1, stats["total_requests"]), 6),
        "peak_rss_mb": out["peak_rss_mb"],
        "lowest_concurrency_limit": out["lowest_concurrency_limit"],
        "elapsed_s": out["elapsed_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", default="clean,faults,capped,rpm,rpm_headers")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per request at the simulator")
    parser.add_argument("--ttft", type=float, default=0.5, help="seconds to the first streamed token")
    parser.add_argument("--chunk-tokens", type=int, default=16, help="tokens per streamed chunk")
    parser.add_argument("--cap", type=int, default=150, help="capped condition: requests in flight the server accepts")
    parser.add_argument("--rpm", type=int, default=4500, help="rpm condition: requests per minute the server accepts")
    parser.add_argument("--memory-requests", default="", help="e.g. 3000,30000: clean runs of these sizes for peak RSS")
    parser.add_argument("--max-rate", action="store_true", help="also the rate sustained at 1 s per request, clean")
    parser.add_argument("--engine-src", default=ROOT, help="checkout whose engine is measured")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        child(args)
        return
    table = conditions(args)
    load_before = os.getloadavg()
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "engine_src": "this checkout" if os.path.samefile(args.engine_src, ROOT) else "another checkout",
        "settings": {"concurrency": args.concurrency, "latency_s": args.latency, "ttft_s": args.ttft,
                     "chunk_tokens": args.chunk_tokens, "cap": args.cap, "rpm": args.rpm, "faults": FAULTS},
        "conditions": {},
    }  # fmt: skip
    for name in [c for c in args.conditions.split(",") if c]:
        result["conditions"][name] = run_condition(args, name, table[name], args.requests)
        print(json.dumps({name: result["conditions"][name]}), file=sys.stderr, flush=True)
    if args.memory_requests:
        result["memory"] = {}
        for n in (int(x) for x in args.memory_requests.split(",")):
            r = run_condition(args, "clean", table["clean"], n)
            result["memory"][str(n)] = {k: r.get(k) for k in ("peak_rss_mb", "ratio", "every_prompt_answered_once", "error")}
            print(json.dumps({f"memory_{n}": result["memory"][str(n)]}), file=sys.stderr, flush=True)
    if args.max_rate:
        fast = argparse.Namespace(**{**vars(args), "latency": 1.0})
        r = run_condition(fast, "clean", conditions(fast)["clean"], args.requests)
        result["max_rate_1s"] = {k: r.get(k) for k in ("achieved_rps", "ideal_rps", "ratio", "engine_cpu_s_per_request",
                                                        "simulator_cpu_s_per_request", "every_prompt_answered_once", "error")}
    result["load_average"] = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
