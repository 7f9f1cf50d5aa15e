"""Verdict accuracy on the hand-labelled set: the project's verifier against plain Math-Verify.

Reads ``tests/fixtures/verify/labelled/labelled_set.jsonl`` (real golds, hand-written R1-style
answers, one label each: correct / incorrect / ambiguous) and prints one JSON object with, per
class and overall, for both verifiers:

``false_correct``    decided correct, labelled incorrect (a wrong answer would ship)
``false_incorrect``  decided incorrect, labelled correct (a good, paid answer is thrown away)
``decided_ambiguous`` decided either way although the label says only a judge can tell
``routed``           not decided (goes to the judge), among rows labelled correct/incorrect
``right``            decided as labelled

The project side is the path the ``verifications`` asset takes: ``normalize_gold(gold_raw,
gold_format)`` and ``verify_items`` (the process pool) over each completion. The baseline is
plain Math-Verify on the answer part (after ``</think>``): ``verify(parse(gold), parse(answer))``
with default configurations, where ``gold`` is the reference as a person reads it
(``gold_answer``: the number after ``####``, the stated option letter...); it routes when either
side has no sympy form. ``routed_share_with_marker`` is the share of routed rows among labelled
correct/incorrect rows whose answer part carries a box or a final-answer phrase (target <= 0.10).

    python benchmarks/verification_accuracy.py [--workers 2] [--out benchmarks/results/verification_accuracy.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dagster_project.lib.verify.answer import final_answer  # noqa: E402
from dagster_project.lib.verify.checker import VERIFIER_VERSION  # noqa: E402
from dagster_project.lib.verify.gold import normalize_gold  # noqa: E402
from dagster_project.lib.verify.pool import MATH_VERIFY_VERSION, VerifyItem, verify_items  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "fixtures" / "verify" / "labelled" / "labelled_set.jsonl"
# Independent of the extractor: does the answer part visibly end in a box or a final-answer phrase?
MARKER = re.compile(r"\\boxed|\\fbox|答案|答\s*[:：]|[故应]选|本题选|所以选|选项为|(?i:final answer)")


def load(path: Path = LABELLED) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def project_verdicts(rows: list[dict], workers: int) -> dict[str, dict]:
    """id -> {"verdict": correct|incorrect|routed, "status", "method", "why"} via the asset's path."""
    items = [VerifyItem(r["id"], normalize_gold(r["gold_raw"], r["gold_format"]), r["completion"]) for r in rows]
    out = {}
    for res in verify_items(items, workers=workers, item_timeout_s=20.0, parse_timeout_s=5):
        verdict = res.status if res.status in ("correct", "incorrect") else "routed"
        out[res.completion_id] = {"verdict": verdict, "status": res.status, "method": res.method, "why": res.error}
    return out


def baseline_verdicts(rows: list[dict]) -> dict[str, dict]:
    """Plain Math-Verify: parse(gold), parse(answer part), verify(gold, answer); routed without sympy."""
    import sympy
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)

    def readable(parsed) -> bool:
        return any(isinstance(x, (sympy.Basic, sympy.MatrixBase)) for x in parsed)

    out = {}
    for r in rows:
        gold, answer = parse(r["gold_answer"]), parse(final_answer(r["completion"]))
        if not (readable(gold) and readable(answer)):
            out[r["id"]] = {"verdict": "routed"}
        else:
            out[r["id"]] = {"verdict": "correct" if verify(gold, answer) else "incorrect"}
    return out


def score(rows: list[dict], verdicts: dict[str, dict]) -> dict:
    """Per class and overall counts; see the module docstring."""
    table: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        v, label = verdicts[r["id"]]["verdict"], r["label"]
        marked = bool(MARKER.search(final_answer(r["completion"])))
        for key in (r["class"], "ALL"):
            c = table[key]
            c["rows"] += 1
            c[f"labelled_{label}"] += 1
            if label == "ambiguous":
                c["decided_ambiguous" if v != "routed" else "routed_ambiguous"] += 1
                continue
            c["false_correct"] += v == "correct" and label == "incorrect"
            c["false_incorrect"] += v == "incorrect" and label == "correct"
            c["right"] += v == label
            c["routed"] += v == "routed"
            c["with_marker"] += marked
            c["routed_with_marker"] += marked and v == "routed"
    out = {}
    for key, c in table.items():
        decidable = c["labelled_correct"] + c["labelled_incorrect"]
        row = {k: c[k] for k in ("rows", "labelled_correct", "labelled_incorrect", "labelled_ambiguous", "right",
                                 "false_correct", "false_incorrect", "decided_ambiguous", "routed")}
        row["routed_share"] = round(c["routed"] / decidable, 3) if decidable else None
        row["routed_share_with_marker"] = round(c["routed_with_marker"] / c["with_marker"], 3) if c["with_marker"] else None
        out[key] = row
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "ALL", kv[0])))


def wrong_rows(rows: list[dict], verdicts: dict[str, dict]) -> list[dict]:
    """Every wrong verdict of the project's verifier, with what it said (for the results file)."""
    bad = []
    for r in rows:
        v = verdicts[r["id"]]
        wrong = (r["label"] == "ambiguous" and v["verdict"] != "routed") or (
            r["label"] != "ambiguous" and v["verdict"] not in ("routed", r["label"]))
        if wrong:
            bad.append({"id": r["id"], "label": r["label"], **v})
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="verifier worker processes, 0 = all cores")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    rows = load()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    project = project_verdicts(rows, args.workers)
    project_s = time.perf_counter() - started
    started = time.perf_counter()
    baseline = baseline_verdicts(rows)
    baseline_s = time.perf_counter() - started
    routed_why = Counter((v["status"], (v["why"] or "").split(":")[0][:60]) for v in project.values() if v["verdict"] == "routed")
    result = {
        "labelled_set": str(LABELLED.relative_to(ROOT)),
        "rows": len(rows),
        "project": score(rows, project),
        "baseline_plain_math_verify": score(rows, baseline),
        "project_wrong_verdicts": wrong_rows(rows, project),
        "project_methods": dict(Counter(v["method"] or "routed" for v in project.values()).most_common()),
        "project_routed_reasons": [{"status": s, "why": w, "rows": n} for (s, w), n in routed_why.most_common()],
        "seconds": {"project": round(project_s, 2), "baseline": round(baseline_s, 2)},
        "verifier_version": VERIFIER_VERSION,
        "math_verify": MATH_VERIFY_VERSION,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
