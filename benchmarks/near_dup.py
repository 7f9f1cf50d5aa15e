"""Benchmark find_near_duplicates on 110,000 synthetic Chinese prompts with planted near-duplicates.

Usage: python benchmarks/near_dup.py [--rows 110000] [--planted-share 0.02] [--seed 7] [--workers N]
Prints one JSON object (wall and CPU seconds of the find_near_duplicates call only; peak RSS of
the whole process, synthetic data included). ``recall_on_planted`` counts planted copies whose exact Jaccard with their
original is >= threshold (the others are reported as ``planted_below_threshold``);
``false_pairs`` are reported pairs that were not planted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.lib.dedup.near_dup import find_near_duplicates  # noqa: E402
from dagster_project.lib.dedup.shingles import (  # noqa: E402
    jaccard,
    ngram_set,
    normalize,
)

# ~2,500 common CJK characters, drawn from the unified block's densest region
_CHARS = [chr(cp) for cp in range(0x4E00, 0x4E00 + 2500)]
_PUNCT = "，。、；：？！"
_TEMPLATES = [
    "请解答下面的数学题：{body}",
    "{body}请一步步推理，并给出最终答案。",
    "阅读下面的材料，回答问题。{body}",
    "已知{body}，求{tail}。",
    "{body}",
]


def _words(rng: random.Random, vocab: list[str], count: int) -> str:
    parts = []
    for _ in range(count):
        parts.append(rng.choice(vocab))
        if rng.random() < 0.12:
            parts.append(rng.choice(_PUNCT))
    return "".join(parts)


def synth_prompt(rng: random.Random, vocab: list[str]) -> str:
    body = _words(rng, vocab, rng.randint(40, 120))
    number = f"{rng.randint(1, 999)}+{rng.randint(1, 999)}"
    return rng.choice(_TEMPLATES).format(body=body + number, tail=_words(rng, vocab, 4))


def near_copy(rng: random.Random, text: str) -> str:
    """A light edit: a few characters changed, punctuation/width/space noise, or a sentence added."""
    chars = list(text)
    kind = rng.randrange(3)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(_CHARS)
    elif kind == 1:
        chars = [chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in chars]  # full-width digits
        chars = ["," if c == "，" else "?" if c == "？" else c for c in chars]
        chars = [c + " " if rng.random() < 0.05 else c for c in chars]
    else:
        chars.append("请写出详细过程。")
    return "".join(chars)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=110_000)
    parser.add_argument("--planted-share", type=float, default=0.02)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="threads for MinHash (default: up to 4)")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    vocab = ["".join(rng.choices(_CHARS, k=rng.randint(1, 3))) for _ in range(20_000)]
    planted_count = int(args.rows * args.planted_share)
    texts = [synth_prompt(rng, vocab) for _ in range(args.rows - planted_count)]
    originals = rng.sample(range(len(texts)), planted_count)
    copies = [(orig, near_copy(rng, texts[orig])) for orig in originals]
    rows = [(f"p{i}", t) for i, t in enumerate(texts)]
    rows += [(f"c{j}", text) for j, (_, text) in enumerate(copies)]
    order = list(range(len(rows)))
    rng.shuffle(order)
    rows = [rows[i] for i in order]
    ids = [row_id for row_id, _ in rows]
    prompts = [text for _, text in rows]
    planted = {f"c{j}": f"p{orig}" for j, (orig, _) in enumerate(copies)}
    above = {
        copy_id
        for copy_id, (orig, text) in zip(planted, copies)
        if jaccard(ngram_set(normalize(texts[orig]), 5), ngram_set(normalize(text), 5)) >= args.threshold
    }

    start, cpu_start = time.perf_counter(), time.process_time()
    result = find_near_duplicates(ids, prompts, threshold=args.threshold, workers=args.workers)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start

    planted_pairs = {frozenset(pair) for pair in planted.items()}
    reported = {
        frozenset(pair)
        for pair in zip(result.column("duplicate_id").to_pylist(), result.column("kept_id").to_pylist())
    }
    found = sum(1 for copy_id in above if frozenset((copy_id, planted[copy_id])) in reported)
    print(
        json.dumps(
            {
                "rows": len(ids),
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                "rows_per_s": round(len(ids) / seconds),
                "planted": planted_count,
                "planted_below_threshold": planted_count - len(above),
                "found": found,
                "recall_on_planted": round(found / max(1, len(above)), 4),
                "false_pairs": len(reported - planted_pairs),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "mean_chars": round(sum(map(len, prompts)) / len(prompts)),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
