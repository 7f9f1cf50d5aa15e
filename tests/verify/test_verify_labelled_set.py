"""The hand-labelled set (real golds, R1-style answers): no wrong verdict, few rows routed.

The benchmark `benchmarks/verification_accuracy.py` reports the same set per class against plain
Math-Verify; here the verdicts are checked in-process. Tests that need the public source files
(to prove every gold is copied from the line it names) read them next to the repository and are
skipped without them.
"""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dagster_project.lib.verify.answer import final_answer
from dagster_project.lib.verify.checker import check_one
from dagster_project.lib.verify.gold import normalize_gold
from tests.conftest import PUBLIC_DATA

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "tests" / "fixtures" / "verify" / "labelled"
PUBLIC_ROWS = PUBLIC_DATA if PUBLIC_DATA is not None and (PUBLIC_DATA / "gsm8k").is_dir() else None
CLASSES = {"plain", "close_boxes", "multipart", "statement_list", "magnitude_units", "equation_condition",
           "phrase_no_box", "true_false", "duration", "cqia_tail", "option_forms", "ambiguous"}
MARKER = re.compile(r"\\boxed|\\fbox|答案|答\s*[:：]|[故应]选|本题选|所以选|选项为|(?i:final answer)")


def rows() -> list[dict]:
    text = (LABELLED / "labelled_set.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, str]:
    out = {}
    for r in rows():
        gold = normalize_gold(r["gold_raw"], r["gold_format"])
        result = check_one(gold, r["completion"], 3, 3) if gold else None
        out[r["id"]] = result.status if result and result.status in ("correct", "incorrect") else "routed"
    return out


def test_the_set_covers_every_class_with_both_labels():
    data = rows()
    assert len(data) >= 300
    by_class = Counter((r["class"], r["label"]) for r in data)
    assert {c for c, _ in by_class} == CLASSES
    for klass in CLASSES - {"ambiguous"}:
        assert by_class[klass, "correct"] >= 3 and by_class[klass, "incorrect"] >= 3, klass
    assert by_class["ambiguous", "ambiguous"] >= 10
    assert len({r["id"] for r in data}) == len(data)
    assert all(r["source"].split("/")[0] in {"gsm8k", "ape210k", "limo_eval", "coig_cqia"} for r in data)


def test_no_wrong_verdict(verdicts):
    """No false correct, no false incorrect, and nothing decided that only a judge can tell."""
    allowed = {"correct": {"correct", "routed"}, "incorrect": {"incorrect", "routed"}, "ambiguous": {"routed"}}
    wrong = [(r["id"], r["label"], verdicts[r["id"]]) for r in rows() if verdicts[r["id"]] not in allowed[r["label"]]]
    assert wrong == []


def test_few_rows_are_routed(verdicts):
    marked = [r for r in rows() if r["label"] != "ambiguous" and MARKER.search(final_answer(r["completion"]))]
    routed = sum(verdicts[r["id"]] == "routed" for r in marked)
    assert len(marked) >= 300
    assert routed / len(marked) <= 0.10


@pytest.mark.skipif(PUBLIC_ROWS is None, reason="DISTILL_PUBLIC_DATA (the public source files) is not set")
def test_every_gold_is_the_named_line_of_its_source():
    for r in rows():
        rel, line = r["source"].rsplit(":", 1)
        record = json.loads((PUBLIC_ROWS / rel).read_text(encoding="utf-8").splitlines()[int(line) - 1])
        raw = record[r["gold_field"]]
        assert r["gold_raw"] == (raw if isinstance(raw, str) else json.dumps(raw)), r["id"]


@pytest.mark.skipif(PUBLIC_ROWS is None, reason="DISTILL_PUBLIC_DATA (the public source files) is not set")
def test_the_committed_set_is_what_the_cases_build(tmp_path):
    out = tmp_path / "rebuilt.jsonl"
    subprocess.run([sys.executable, str(LABELLED / "build_labelled_set.py"), "--data", str(PUBLIC_ROWS), "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_text(encoding="utf-8") == (LABELLED / "labelled_set.jsonl").read_text(encoding="utf-8")


@pytest.mark.skipif(PUBLIC_ROWS is None, reason="DISTILL_PUBLIC_DATA (the public source files) is not set")
def test_coig_cqia_exam_gold_coverage():
    """Golds found in the full exam files (before these rules: 1,261 of 1,964 and 297 of 377)."""
    found = {}
    for name in ("coig_exam_sampled_clean_v3.jsonl", "kaoyan.jsonl"):
        lines = (PUBLIC_ROWS / "coig_cqia" / "exam" / name).read_text(encoding="utf-8").splitlines()
        golds = [normalize_gold(json.loads(line)["output"], "cqia_answer_tail") for line in lines]
        found[name] = (sum(g is not None for g in golds), len(golds))
    assert found["coig_exam_sampled_clean_v3.jsonl"][0] >= 1350 and found["coig_exam_sampled_clean_v3.jsonl"][1] == 1964
    assert found["kaoyan.jsonl"][0] >= 305 and found["kaoyan.jsonl"][1] == 377
