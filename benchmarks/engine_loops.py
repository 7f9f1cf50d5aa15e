"""The loop detector: false positives on real long texts, and tokens saved on a run with looping samples.

Prints one JSON object:
  * `false_positives`: every string of at least 300 characters in the bundled samples and test
    fixtures (and, when DISTILL_PUBLIC_DATA names a folder of the full public source files, those, and any
    `--texts` JSONL file of {"text": ...} rows), checked with the default settings; flagged texts are
    listed by their first characters.
  * `run`: the same requests against the simulator with `p_loop` of the samples looping until
    max_tokens, once with detection off and once on; tokens are those the simulator streamed out
    (what a provider bills), slot-seconds the summed attempt latencies.

    python benchmarks/engine_loops.py --requests 2000 --p-loop 0.02
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_project.lib.llm.engine import run_requests_sync  # noqa: E402
from dagster_project.lib.llm.journal import Journal, JournalWriter  # noqa: E402
from dagster_project.lib.llm.repetition import find_loop  # noqa: E402
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest  # noqa: E402
from dagster_project.simulator import text as sim_text  # noqa: E402
from dagster_project.simulator.server import SimulatorSettings, start_simulator_process  # noqa: E402
from tests.real_texts import texts as real_texts  # noqa: E402

MIN_CHARS = 300


def corpora(extra: list[str]) -> dict[str, list[Path]]:
    found = {
        "bundled samples": sorted((ROOT / "assets" / "samples").rglob("*.json*")),
        "test fixtures": sorted((ROOT / "tests" / "fixtures").rglob("*.json*")),
    }
    public = Path(os.environ.get("DISTILL_PUBLIC_DATA", "")) if os.environ.get("DISTILL_PUBLIC_DATA") else None
    if public is not None and public.is_dir():
        found["public source files"] = sorted(p for p in public.rglob("*.json*") if "xverify" not in p.parts)
    if extra:
        found["--texts"] = [Path(p) for p in extra]
    return found


def synthetic_reasoning(n: int = 1000) -> list[str]:
    """Long R1-style reasoning drawn from the simulator's small pool of sentences: lots of repeated
    sentences, never one passage back to back (a stress test for false positives)."""
    rng = random.Random(11)
    return [sim_text.think_block(rng, rng.randint(2000, 30000)) for _ in range(n)]


def false_positives(cfg: EndpointConfig, extra: list[str]) -> dict:
    result = {}
    named = {name: real_texts(paths, MIN_CHARS, lenient=True) for name, paths in corpora(extra).items()}
    named["simulator reasoning (synthetic)"] = synthetic_reasoning()
    for name, texts in named.items():
        t0 = time.perf_counter()
        flagged = [t for t in texts if find_loop(t, cfg.loop_window_chars, cfg.loop_min_repeats, cfg.loop_min_chars)]
        seconds = time.perf_counter() - t0
        chars = sum(map(len, texts))
        result[name] = {
            "texts": len(texts),
            "texts_over_2000_chars": sum(len(t) > 2000 for t in texts),
            "longest_chars": max(map(len, texts), default=0),
            "flagged": len(flagged),
            "false_positive_rate": round(len(flagged) / max(1, len(texts)), 5),
            "flagged_starts": [t[:60] for t in flagged[:10]],
            "check_us_per_kchar": round(seconds / max(1, chars) * 1e9, 2),
        }
    return result


def one_run(base_url: str, n: int, detection: bool, max_tokens: int, sim) -> dict:
    sim.reset()
    cfg = EndpointConfig(base_url=base_url, model="deepseek-r1", concurrency=300, max_tokens=max_tokens,
                         loop_detection=detection, price_output_per_mtok=16.0, price_input_per_mtok=4.0)  # fmt: skip
    reqs = [LLMRequest.from_prompt(f"loop-{i}", "bench", f"第{i}题：计算 {i} + {i * 7} 的值。") for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="bench-loops-") as root:
        t0 = time.perf_counter()
        with JournalWriter(Journal(root), "r1", count_tokens=False) as writer:
            summary = run_requests_sync(reqs, cfg, writer, run_id="loops")
        elapsed = time.perf_counter() - t0
        slot_s = Journal(root).read_sql("r1", "bench", "SELECT sum(latency_s) AS s FROM j").column("s")[0].as_py()
    stats = sim.stats()
    return {
        "loop_detection": detection,
        "elapsed_s": round(elapsed, 2),
        "by_status": summary.by_status,
        "loops_cut": summary.loops,
        "reasks": summary.reasks,
        "tokens_streamed_by_server": stats["completion_tokens_sent"],
        "completion_tokens_billed": summary.completion_tokens,
        "cost": round(summary.cost, 4),
        "slot_seconds": round(slot_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--p-loop", type=float, default=0.02)
    parser.add_argument("--max-tokens", type=int, default=32768)
    parser.add_argument("--tokens-per-s", type=float, default=4000.0, help="simulated generation speed")
    parser.add_argument("--texts", action="append", default=[], help="more JSONL files to check for false positives")
    parser.add_argument("--no-run", action="store_true", help="only the false-positive check")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = EndpointConfig()
    result: dict = {"settings": {"loop_window_chars": cfg.loop_window_chars, "loop_min_repeats": cfg.loop_min_repeats,
                                 "loop_min_chars": cfg.loop_min_chars},
                    "false_positives": false_positives(cfg, args.texts)}  # fmt: skip
    if not args.no_run:
        settings = SimulatorSettings(p_loop=args.p_loop, latency_scale=1.0, ttft_s=0.5, tokens_per_s=args.tokens_per_s,
                                     chunk_tokens=8, seed=3)  # fmt: skip
        with start_simulator_process(settings) as sim:
            off = one_run(sim.base_url, args.requests, False, args.max_tokens, sim)
            on = one_run(sim.base_url, args.requests, True, args.max_tokens, sim)
        saved = off["tokens_streamed_by_server"] - on["tokens_streamed_by_server"]
        result["run"] = {
            "requests": args.requests, "p_loop": args.p_loop, "max_tokens": args.max_tokens,
            "tokens_per_s": args.tokens_per_s, "off": off, "on": on,
            "tokens_saved": saved,
            "tokens_saved_share": round(saved / max(1, off["tokens_streamed_by_server"]), 3),
            "tokens_saved_per_loop_cut": round(saved / max(1, on["loops_cut"]), 1),
            "slot_seconds_saved": round(off["slot_seconds"] - on["slot_seconds"], 1),
        }  # fmt: skip
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
