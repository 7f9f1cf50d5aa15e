"""Inputs the rules were not written for: harmless rewrites of labelled answers, and junk.

A harmless rewrite of an answer (full-width digits, bold, a `$` around the box, trailing
punctuation) may at most make a decided verdict undecided; it must never flip it.
"""

import json
import random
import re
from pathlib import Path

import pytest

from dagster_project.lib.verify.checker import check_one
from dagster_project.lib.verify.gold import normalize_gold
from dagster_project.lib.verify.pool import STATUSES

LABELLED = Path(__file__).resolve().parents[1] / "fixtures" / "verify" / "labelled" / "labelled_set.jsonl"
FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def last_box_rewrite(completion: str, rewrite) -> str:
    """Apply ``rewrite`` to the content of the last \\boxed{...} (simple, non-nested ones only)."""
    matches = list(re.finditer(r"\\boxed\{([^{}]*)\}", completion))
    if not matches:
        return completion
    m = matches[-1]
    return completion[: m.start(1)] + rewrite(m.group(1)) + completion[m.end(1):]


REWRITES = {
    "fullwidth digits in the box": lambda c: last_box_rewrite(c, lambda s: s.translate(FULLWIDTH_DIGITS)),
    "bold and a full stop after the answer": lambda c: c.rstrip("。 \n") + "**。\n\n",
    "box wrapped in $": lambda c: re.sub(r"(\\boxed\{[^{}]*\})(?!.*\\boxed)", r"$\1$", c, flags=re.S),
    "spaces around the box content": lambda c: last_box_rewrite(c, lambda s: f"  {s} "),
    "windows line ends": lambda c: c.replace("\n", "\r\n"),
}


def decided(gold: str | None, completion: str) -> str:
    if gold is None:
        return "routed"
    status = check_one(gold, completion, 3, 3).status
    return status if status in ("correct", "incorrect") else "routed"


@pytest.mark.parametrize("name", sorted(REWRITES))
def test_harmless_rewrites_never_flip_a_verdict(name):
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    flipped, still_decided = [], 0
    for r in rows:
        gold = normalize_gold(r["gold_raw"], r["gold_format"])
        before = decided(gold, r["completion"])
        if before == "routed":
            continue
        after = decided(gold, REWRITES[name](r["completion"]))
        still_decided += after == before
        if after not in (before, "routed"):
            flipped.append((r["id"], before, after))
    assert flipped == []
    assert still_decided >= 250  # the rewrite is harmless: nearly everything stays decided


def test_junk_never_raises_and_never_decides_against_a_value():
    rng = random.Random(20250214)
    alphabet = "0123456789+-*/^_{}()[]$\\,.，。、；：AaBbCxyz 答案是为故选最终框万亿小时分或和 \n\t"
    for i in range(300):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        for gold in ("$42$", "$C$", "正确", "(1)(3)", "$16，17$"):
            result = check_one(gold, junk, 3, 3)
            assert result.status in STATUSES
            if result.status == "correct":  # only when the junk really holds the gold's value
                assert result.parsed_answer == result.parsed_gold, (gold, junk, result)


def test_huge_and_nested_inputs_stay_bounded():
    long_answer = "计算过程很长。" * 20000 + "\\boxed{42}"
    assert check_one("$42$", long_answer, 3, 3).status == "correct"
    nested = "\\boxed{" * 200 + "42" + "}" * 200
    assert check_one("$42$", nested, 3, 3).status in STATUSES
    unbalanced = "所以答案是 \\boxed{\\frac{1}{2}"
    assert check_one("$\\frac{1}{2}$", unbalanced, 3, 3).status in ("unextractable", "correct")
