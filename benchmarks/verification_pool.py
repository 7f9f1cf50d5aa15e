"""Math-Verify throughput: the process pool (all cores) against a plain one-process loop.

Builds realistic rows (a few hundred characters of Chinese reasoning-style answer text with
inline LaTeX, ending in ``\\boxed{...}``; golds mixing ints, fractions, mixed numbers,
decimals, percents and option letters; about 1/4 wrong, a few percent with no box; the text
varies row to row so Math-Verify's lru caches do not make it trivial), verifies them both
ways and prints one JSON object.

Both sides are timed the same way: each trial runs in a fresh Python process, and the time
counts importing Math-Verify and verifying every row (the pool's workers import it
themselves; a plain script has to as well). Trials alternate which side goes first; the figures are the
medians. ``parallel_ceiling_*`` measures what the machine gives to perfectly parallel
pure-Python work at that moment (a busy or shared host lowers it).

    python benchmarks/verification_pool.py --rows 20000 --trials 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dagster_project.lib.verify.gold import normalize_gold  # noqa: E402
from dagster_project.lib.verify.pool import (  # noqa: E402
    MATH_VERIFY_VERSION,
    VerifyItem,
    verify_items,
)

NAMES = ["小明", "小红", "王老师", "李叔叔", "甲车", "乙队", "一个工程队", "果园"]
THINGS = ["苹果", "铅笔", "图书", "零件", "树苗", "练习本", "学生", "千克大米"]
UNITS = ["个", "厘米", "元", "千克", "米", "本", ""]
STEPS = [
    "首先，根据题意，{n}共有 ${a}$ 个{t}，每次用去 ${b}$ 个。",
    "设所求的量为 $x$，列方程 ${a}x + {b} = {c}$，移项得 ${a}x = {d}$。",
    "由比例关系可知 $\\frac{{{a}}}{{{b}}} = \\frac{{x}}{{{c}}}$，交叉相乘即可。",
    "其次，{n}第二次又买了 ${c}$ 个{t}，所以总数变为 ${a} + {c} = {e}$。",
    "检查一下：把结果代回原式，左边等于 ${d}$，右边也等于 ${d}$，说明计算无误。",
    "注意单位换算：$1$ 米 $= 100$ 厘米，所以 ${a}$ 米等于 ${f}$ 厘米。",
    "这里容易出错的地方是把 ${b}\\%$ 当成 ${b}$，需要先化成小数 ${g}$。",
]


def gold_and_answers(rng: random.Random) -> tuple[str, str, str, str]:
    """(raw gold, gold_format, correct boxed content, wrong boxed content)."""
    kind = rng.choice(["int", "int", "fraction", "mixed", "decimal", "percent", "letter"])
    if kind == "int":
        v = rng.randint(1, 99999)
        raw = f"{v:,}" if v >= 1000 and rng.random() < 0.3 else str(v)
        unit = rng.choice(UNITS)
        return raw, "number", f"{v}{unit}", f"{v + rng.choice([-1, 1, 10])}{unit}"
    if kind == "fraction":
        q = rng.randint(2, 60)
        p = rng.randint(1, q - 1)
        value = Fraction(p, q)
        shown = rng.choice([f"\\dfrac{{{value.numerator}}}{{{value.denominator}}}", f"\\frac{{{value.numerator}}}{{{value.denominator}}}"])
        wrong = value + Fraction(1, value.denominator)
        return f"({p}/{q})", "ape210k", shown, f"\\frac{{{wrong.numerator}}}{{{wrong.denominator}}}"
    if kind == "mixed":
        w, q = rng.randint(1, 50), rng.randint(2, 12)
        p = rng.randint(1, q - 1)
        value = w + Fraction(p, q)
        return f"{w}({p}/{q})", "ape210k", f"\\frac{{{value.numerator}}}{{{value.denominator}}}", f"{w + 1}\\frac{{{p}}}{{{q}}}"
    if kind == "decimal":
        v = Fraction(rng.randint(1, 99999), 100)
        text = f"{float(v):.2f}".rstrip("0").rstrip(".")
        return text, "number", text, f"{float(v) + 0.5:.2f}"
    if kind == "percent":
        v = Fraction(rng.randint(1, 1999), 20)
        text = f"{float(v):g}"
        correct = rng.choice([f"{text}\\%", f"{float(v) / 100:g}"])
        return f"{text}%", "ape210k", correct, f"{float(v) + 1:g}\\%"
    letters = "ABCD"
    gold = rng.choice(letters)
    shown = rng.choice([gold, f"\\text{{{gold}}}", f"({gold})", gold.lower()])
    return gold, "choice_letter", shown, rng.choice([x for x in letters if x != gold])


def answer_text(rng: random.Random, i: int, boxed: str | None) -> str:
    values = {
        "n": rng.choice(NAMES), "t": rng.choice(THINGS), "a": rng.randint(2, 999), "b": rng.randint(1, 99),
        "c": rng.randint(100, 9999), "d": rng.randint(1, 99999), "e": rng.randint(100, 20000),
        "f": rng.randint(200, 99900), "g": f"0.{rng.randint(1, 99):02d}",
    }
    steps = [rng.choice(STEPS).format(**values) for _ in range(rng.randint(3, 6))]
    body = f"**解答**（第{i}题）\n\n" + "\n".join(f"{k + 1}. {s}" for k, s in enumerate(steps))
    if boxed is None:
        return body + f"\n\n综上所述，答案是 {values['d']}。"
    return body + f"\n\n综上所述，最终答案为 $\\boxed{{{boxed}}}$。"


def build_rows(n: int, seed: int = 20250214) -> list[VerifyItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        raw, fmt, correct, wrong = gold_and_answers(rng)
        roll = rng.random()
        boxed = None if roll < 0.03 else (wrong if roll < 0.28 else correct)
        reasoning = f"<think>\n嗯，我先理解题意……第{i}题需要仔细计算，试一下 $x={rng.randint(1, 99)}$。\n</think>\n\n"
        items.append(VerifyItem(f"bench-{i}", normalize_gold(raw, fmt), reasoning + answer_text(rng, i, boxed)))
    return items


def _burn(n: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - started


def parallel_ceiling(workers: int, n: int = 8_000_000) -> float:
    """Speedup the machine gives right now to perfectly parallel pure-Python work."""
    import multiprocessing as mp

    single = _burn(n)
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_burn, [1000] * workers)  # start-up outside the measurement
        started = time.perf_counter()
        pool.map(_burn, [n] * workers)
        parallel = time.perf_counter() - started
    return workers * single / parallel


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_side(side: str, rows_file: str, args: argparse.Namespace) -> dict:
    """One trial of one side, in this fresh process: verify every row, time it.

    The one-process side imports Math-Verify before loading the rows (timed on its own and
    added): that order is its faster one (a large heap at import slows the loop by ~3%).
    """
    import_seconds = 0.0
    if side == "serial":
        started = time.perf_counter()
        from dagster_project.lib.verify.checker import check_one

        import_seconds = time.perf_counter() - started
        logging.getLogger("math_verify").setLevel(logging.ERROR)
    with open(rows_file, "rb") as f:
        items = pickle.load(f)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    if side == "pool":
        results = list(verify_items(items, workers=args.workers, item_timeout_s=args.item_timeout,
                                    chunk_size=args.chunk_size, start_method=args.start_method))
        statuses = {r.completion_id: r.status for r in results}
        max_item = max(r.seconds for r in results)
    else:
        statuses, max_item = {}, 0.0
        for item in items:
            item_started = time.perf_counter()
            statuses[item.completion_id] = check_one(item.gold, item.answer, 5, 5).status if item.gold else "no_gold"
            max_item = max(max_item, time.perf_counter() - item_started)
    return {"seconds": import_seconds + time.perf_counter() - started,
            "cpu_seconds": import_seconds + _cpu_seconds() - cpu_before,
            "max_item_seconds": max_item, "statuses": statuses}


def trial(side: str, rows_file: str, argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--side", side, "--rows-file", rows_file, *argv],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="0 = all cores")
    parser.add_argument("--item-timeout", type=float, default=20.0)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--start-method", choices=["spawn", "forkserver"], default="spawn")
    parser.add_argument("--side", choices=["pool", "serial"], help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.rows_file, args)))
        return
    side_argv = ["--workers", str(args.workers), "--item-timeout", str(args.item_timeout),
                 "--chunk-size", str(args.chunk_size), "--start-method", args.start_method]
    workers = args.workers or os.cpu_count() or 1
    ceiling_before = parallel_ceiling(workers)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = os.path.join(tmp, "rows.pickle")
        with open(rows_file, "wb") as f:
            pickle.dump(build_rows(args.rows), f)
        trials = []
        for t in range(args.trials):
            order = ("pool", "serial") if t % 2 == 0 else ("serial", "pool")
            trials.append({side: trial(side, rows_file, side_argv) for side in order})
    pool_s = statistics.median(t["pool"]["seconds"] for t in trials)
    serial_s = statistics.median(t["serial"]["seconds"] for t in trials)
    last = trials[-1]
    statuses = Counter(last["pool"]["statuses"].values())
    disagreements = sum(
        t["pool"]["statuses"][cid] != status for t in trials for cid, status in t["serial"]["statuses"].items()
    )
    print(json.dumps({
        "rows": args.rows,
        "trials": args.trials,
        "results": len(last["pool"]["statuses"]),
        "pool_seconds": round(pool_s, 2),
        "pool_rows_per_s": round(args.rows / pool_s, 1),
        "serial_seconds": round(serial_s, 2),
        "serial_rows_per_s": round(args.rows / serial_s, 1),
        "speedup": round(serial_s / pool_s, 2),
        "speedup_per_trial": [round(t["serial"]["seconds"] / t["pool"]["seconds"], 2) for t in trials],
        "pool_cpu_seconds": round(statistics.median(t["pool"]["cpu_seconds"] for t in trials), 2),
        "serial_cpu_seconds": round(statistics.median(t["serial"]["cpu_seconds"] for t in trials), 2),
        "max_item_seconds": round(max(t["pool"]["max_item_seconds"] for t in trials), 3),
        "item_timeout_s": args.item_timeout,
        "timeouts": statuses.get("timeout", 0),
        "status_counts": dict(sorted(statuses.items())),
        "pool_vs_serial_disagreements": disagreements,
        "workers": workers,
        "chunk_size": args.chunk_size,
        "start_method": args.start_method,
        "timing": "each side in a fresh process; seconds include importing Math-Verify",
        "cpu_count": os.cpu_count(),
        "parallel_ceiling_before": round(ceiling_before, 2),
        "parallel_ceiling_after": round(parallel_ceiling(workers), 2),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "math_verify": MATH_VERIFY_VERSION,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
