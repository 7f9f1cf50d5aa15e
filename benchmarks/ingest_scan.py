"""Ingestion and the secret scan: load_source on synthetic full-size sources, find_secrets on texts.

Generates sources in every repo's native schema (benchmarks/generate_sources.py) unless --sources
names a generated folder, loads each manifest with `load_source` (the library call the
`raw_prompts` asset makes, checks included: secrets, invisible-only and control characters,
types, length) and checks records = loaded + rejected per file. Then times `find_secrets` on
simulator-style R1 reasoning and answers (the export's no_secrets check) and on the real rows
bundled in assets/samples and tests/fixtures. Prints one JSON object; --out also writes it.

    python benchmarks/ingest_scan.py --scale 1.0 --out benchmarks/results/ingest_scan.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from full_run import machine_info  # noqa: E402
from generate_sources import generate  # noqa: E402

from dagster_project.config import config  # noqa: E402
from dagster_project.lib.secrets import find_secrets  # noqa: E402
from dagster_project.lib.sources.loader import load_source  # noqa: E402
from dagster_project.lib.sources.manifest import load_manifests  # noqa: E402
from dagster_project.simulator.text import r1_answer, think_block  # noqa: E402
from tests.real_texts import bundled_paths  # noqa: E402
from tests.real_texts import texts as real_texts  # noqa: E402


def bench_load(sources: Path) -> dict:
    manifests = load_manifests(sources / "sources")
    assert not manifests.errors, manifests.error_lines()
    per_source, rows, rejected, cpu = {}, 0, 0, 0.0
    for key, manifest in sorted(manifests.manifests.items()):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = load_source(manifest, ROOT / "assets", ROOT, max_question_chars=config().sources.max_question_chars,
                             secret_values=["benchmark-configured-key-0000"])
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        for c in result.counts:
            assert c.records == c.loaded + c.rejected, c
        per_source[key] = {"rows": result.prompts.num_rows, "rejected": result.rejected.num_rows,
                           "seconds": round(seconds, 2), "rows_per_s": round(result.prompts.num_rows / seconds)}
        rows, rejected, cpu = rows + result.prompts.num_rows, rejected + result.rejected.num_rows, cpu + cpu_s
    seconds = sum(s["seconds"] for s in per_source.values())
    return {"rows": rows, "rejected": rejected, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
            "rows_per_s": round(rows / seconds), "per_source": per_source}


def bench_scan(texts: list[str], repeat: int) -> dict:
    chars = sum(map(len, texts))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        hits = sum(1 for t in texts if find_secrets(t))
        best = min(best, time.perf_counter() - start)
    return {"texts": len(texts), "mchars": round(chars / 1e6, 2), "seconds": round(best, 3),
            "mchars_per_s": round(chars / 1e6 / best, 1), "us_per_text": round(best / len(texts) * 1e6, 1),
            "texts_with_hits": hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 110,000 distinct prompts")
    parser.add_argument("--sources", type=Path, help="a folder written by generate_sources.py (default: generate)")
    parser.add_argument("--scan-rows", type=int, default=20000, help="simulated SFT rows for the scan")
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest-scan-") as tmp:
        sources = args.sources
        if sources is None:
            sources = Path(tmp)
            start = time.perf_counter()
            generate(sources, args.scale, 20250219)
            generated_s = round(time.perf_counter() - start, 1)
        else:
            generated_s = None
        load = bench_load(sources)
    rng = random.Random(7)
    sft = [t for _ in range(args.scan_rows)
           for t in (think_block(rng, rng.randint(1500, 6000)), r1_answer(rng, "42", rng.randint(200, 900), 0.8, 0.1))]
    result = {
        "benchmark": "ingest_scan", "scale": args.scale, "machine": machine_info(),
        "load_average": os.getloadavg(), "generated_s": generated_s, "load_source": load,
        "find_secrets_sft_texts": bench_scan(sft, 3), "find_secrets_real_rows": bench_scan(real_texts(bundled_paths()), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
