"""Kill and resume at high throughput: responses bought twice, and processes left behind.

A child process plans against the journal and runs the engine against the simulator
(subprocess, fixed latency). It is SIGKILLed at random moments while requests are in flight,
restarted, and finally left to finish. The simulator counts the 200 responses it completed
per prompt, so a prompt answered twice is a response bought twice. Prints one JSON object.

    python benchmarks/journal_kill_resume.py --requests 3000 --concurrency 250 --latency 1.0 --kills 3

Per kill it reports what the server had in flight just before the kill, what it completed
after that snapshot (responses the killed client could not have received), and the processes
carrying this run's marker environment variable that survived the kill.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.full_run import machine_info  # noqa: E402
from dagster_project.lib.llm.engine import run_requests_sync  # noqa: E402
from dagster_project.lib.llm.journal import Journal, JournalWriter, plan  # noqa: E402
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest  # noqa: E402
from dagster_project.simulator.server import (  # noqa: E402
    SimulatorSettings,
    start_simulator_process,
)
from tests.process_tree import kill_all, marked_processes, new_marker, wait_until  # noqa: E402

SETTLE_S = 3.0  # how long a killed run's helpers get to exit on their own before they count as left behind


def requests(n: int) -> list[LLMRequest]:
    return [LLMRequest.from_prompt(f"k{i}", "bench", f"第{i}题：计算 {i} + {i * 7} 的值。") for i in range(n)]


def endpoint(base_url: str, concurrency: int) -> EndpointConfig:
    return EndpointConfig(base_url=base_url, model="deepseek-r1", concurrency=concurrency,
                          min_concurrency=concurrency, max_attempts=3, backoff_base_seconds=0.1)  # fmt: skip


def child(base_url: str, root: str, n: int, concurrency: int) -> None:
    cfg, journal = endpoint(base_url, concurrency), Journal(root)
    to_send, _ = plan(cfg, requests(n), journal)
    with JournalWriter(journal, "r1") as writer:
        run_requests_sync(to_send, cfg, writer, run_id=uuid.uuid4().hex)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=250)
    parser.add_argument("--latency", type=float, default=1.0, help="fixed simulated seconds per request")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--kill-after", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"),
                        help="each kill lands this many seconds (uniform) after the child's first request")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("BASE_URL", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        child(args.child[0], args.child[1], args.requests, args.concurrency)
        return
    rng = random.Random(args.seed)
    load_before = [round(x, 2) for x in os.getloadavg()]
    settings = SimulatorSettings(ttft_s=args.latency, tokens_per_s=0, latency_scale=1.0,
                                 reasoning_chars=(300, 1200), answer_chars=(80, 300))  # fmt: skip
    marker, env = new_marker()
    kills: list[dict] = []
    with start_simulator_process(settings) as sim, tempfile.TemporaryDirectory(prefix="bench-kill-") as root:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", sim.base_url, root,
               "--requests", str(args.requests), "--concurrency", str(args.concurrency)]  # fmt: skip
        for _ in range(args.kills):
            before = sim.stats()["total_requests"]
            proc = subprocess.Popen(cmd, env=env)
            wait_until(lambda: sim.stats()["total_requests"] > before or proc.poll() is not None, 120, "first request")
            started, offset = time.monotonic(), rng.uniform(*args.kill_after)
            r200_start = sim.stats()["responses_200"]
            while time.monotonic() - started < offset and proc.poll() is None:
                time.sleep(0.01)
            if proc.poll() is not None:
                raise SystemExit("the run finished before the kill: raise --requests")
            snap, snap_at = sim.stats(), time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            # the server notices the dropped connections when it next writes to them
            wait_until(lambda: sim.stats()["in_flight"] == 0, 30, "the server to drop the killed requests")
            after = sim.stats()
            try:
                wait_until(lambda: not marked_processes(marker), SETTLE_S, "the killed run's processes to exit")
            except AssertionError:
                pass
            survivors = marked_processes(marker)
            kills.append({
                "offset_s": round(offset, 2),
                "rps_before_kill": round((snap["responses_200"] - r200_start) / (snap_at - started), 1),
                "in_flight_at_kill": snap["in_flight"],
                "completed_after_snapshot": after["responses_200"] - snap["responses_200"],
                "survivors": [{**p, "cmd": _program(p["cmd"])} for p in survivors],
            })
            kill_all(survivors)  # clean up what the killed run left behind
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, check=True)
        final_run_s = time.monotonic() - t0
        left_after_clean_exit = marked_processes(marker)
        stats = sim.stats()
        journal = Journal(root)
        finals = journal.read_sql("r1", "bench", "SELECT count(DISTINCT request_hash) AS n, count(*) AS rows "
                                                 "FROM j WHERE is_final AND status = 'ok'").to_pylist()[0]
    rebought = sum(n - 1 for n in stats["ok_per_prompt"].values() if n > 1)
    print(json.dumps({
        "machine": machine_info(), "loadavg_before": load_before,
        "requests": args.requests, "concurrency": args.concurrency, "latency_s": args.latency, "seed": args.seed,
        "kills": kills,
        "rebought_responses": rebought,
        "in_flight_at_kills": sum(k["in_flight_at_kill"] for k in kills),
        "completed_after_snapshots": sum(k["completed_after_snapshot"] for k in kills),
        "survivors_per_kill": [len(k["survivors"]) for k in kills],
        "survivor_rss_mb_per_kill": [sum(p["rss_mb"] for p in k["survivors"]) for k in kills],
        "left_after_clean_exit": len(left_after_clean_exit),
        "prompts_answered": len(stats["ok_per_prompt"]),
        "journal_final_ok_requests": finals["n"], "journal_final_ok_rows": finals["rows"],
        "final_run_s": round(final_run_s, 1),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }))


def _program(cmd: str) -> str:
    """A command line without the directories of its executable (results carry no local paths)."""
    return re.sub(r"\S*/(?=[^/\s]+(\s|$))", "", cmd, count=1)


if __name__ == "__main__":
    main()
