"""check_one against real Math-Verify 0.9.0 on real golds and hand-checked Chinese answers."""

import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from dagster_project.lib.verify.checker import check_one
from dagster_project.lib.verify.gold import normalize_gold
from tests.conftest import PUBLIC_DATA

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "verify"
XVERIFY = (PUBLIC_DATA or ROOT / "missing") / "xverify" / "test_0514.parquet"


def read_jsonl(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def status(gold, answer):
    return check_one(gold, answer, 3, 3).status


def r1_answer(boxed: str, i: int = 0) -> str:
    """A completion shaped like R1's: reasoning with stray LaTeX, then a Chinese answer."""
    return (
        f"<think>\n好的，我先设 $x={i}$，试一下 \\boxed{{{i + 1000}}}……不对，再检查一遍。\n</think>\n\n"
        f"**解答**\n第{i}步：根据题意列式计算，可得结果。\n\n所以最终答案是 \\boxed{{{boxed}}}。"
    )


# ------------------------------------------------------------------- hand-checked cases


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("$35$", "所以绳子长 \\boxed{35厘米}。", "correct"),
        ("$35$", "所以绳子长 \\boxed{36厘米}。", "incorrect"),
        ("$120$", "一共花了 \\boxed{120\\text{元}}", "correct"),
        ("$120$", "一共花了 \\boxed{120元}", "correct"),
        ("$C$", "故选 \\boxed{C}", "correct"),
        ("$C$", "故选 \\boxed{D}", "incorrect"),
        ("$C$", "故选 \\boxed{(C)}", "correct"),
        ("$C$", "故选 \\boxed{c}", "correct"),
        ("$C$", "故选 \\boxed{\\text{C}}", "correct"),
        ("$C$", "故选 \\boxed{C. 1-i}", "correct"),
        ("$C$", "故选 \\boxed{1-i}", "unextractable"),  # a value, not a letter: judge decides
        ("$AC$", "\\boxed{AC}", "correct"),
        ("$AC$", "\\boxed{A、C}", "correct"),
        ("$AC$", "\\boxed{A}", "incorrect"),
        ("$A$", "\\boxed{AD}", "incorrect"),
        ("$E$", "\\boxed{E}", "correct"),
        ("$E$", "\\boxed{e}", "correct"),
        ("$I$", "\\boxed{I}", "correct"),
        ("$0.5$", "\\boxed{\\dfrac{1}{2}}", "correct"),
        ("$\\frac{1}{2}$", "\\boxed{0.5}", "correct"),
        ("$\\frac{1}{2}$", "\\boxed{0.6}", "incorrect"),
        ("$93.75\\%$", "\\boxed{93.75\\%}", "correct"),
        ("$93.75\\%$", "\\boxed{0.9375}", "correct"),
        ("$25\\%$", "\\boxed{25\\%}", "correct"),
        ("$25\\%$", "\\boxed{26\\%}", "incorrect"),
        ("$30$", "\\boxed{30°}", "correct"),
        ("$2$", "\\boxed{２}", "correct"),
        ("$30000$", "\\boxed{3万}", "correct"),  # was routed: 万 is read as a magnitude now
        ("$3$", "\\boxed{3万}", "unextractable"),  # the question may count in 万: not sure
        ("$7 \\frac{3}{11}$", "\\boxed{\\frac{80}{11}}", "correct"),
        ("$\\frac{70}{3}$", "\\boxed{23\\frac{1}{3}}", "correct"),
        # no box: the value of the final-answer phrase, never stray LaTeX elsewhere in the text
        # (these two were routed before phrases were read)
        ("$72$", "所以答案是72。其中 $x=5$，$y=\\frac{1}{2}$", "correct"),
        ("$72$", "答案：72", "correct"),
        ("$72$", "其中 $x=5$，$y=\\frac{1}{2}$，经过一番计算之后得到了七十二这个结果", "unextractable"),
        # a box inside the reasoning does not count
        ("$72$", "<think>\\boxed{72}</think>最后算得七十二", "unextractable"),
        ("$72$", "<think>\\boxed{72}", "unextractable"),
        # true/false golds are decided by rule now (was routed); free text goes to the judge
        ("正确", "\\boxed{对}", "correct"),
        ("正确", "\\boxed{错}", "incorrect"),
        ("浅红 (浅粉)", "\\boxed{浅红}", "unextractable"),
    ],
)
def test_hand_checked_cases(gold, answer, expected):
    assert status(gold, answer) == expected


def test_result_fields():
    result = check_one("$35$", "<think>x</think>所以 \\boxed{35厘米}。", 3, 3)
    assert result == ("correct", "35厘米", "35", None, "35 [厘米]", "math_verify", "box", "unit")
    result = check_one("$72$", "这一题我没有写出最后的结果，因为条件似乎不够，需要再想一想才能确定下来，先写到这里", 3, 3)
    assert result.status == "unextractable" and result.extracted_answer is None and result.error
    assert result.answer_source == "none" and result.method is None


def test_timeouts_must_be_whole_seconds():
    with pytest.raises(TypeError):
        check_one("$1$", "\\boxed{1}", 0.5, 3)
    with pytest.raises(TypeError):
        check_one("$1$", "\\boxed{1}", 3, 2.0)


# ------------------------------------------------------------------- real golds


def test_gsm8k_golds_with_chinese_boxed_answers():
    rows = read_jsonl("gsm8k_test_slice.jsonl")
    for i, row in enumerate(rows):
        gold = normalize_gold(row["answer"], "gsm8k_solution")
        value = int(gold.strip("$"))
        assert status(gold, r1_answer(str(value), i)) == "correct", gold
        assert status(gold, r1_answer(str(value + 1), i)) == "incorrect", gold
    # the comma form R1 sometimes writes is read as one number, not a tuple
    assert status("$2125$", r1_answer("2,125")) == "correct"


def _ape_prediction(ans: str, delta: int) -> str:
    """How R1 typically writes an Ape210K answer: percent, mixed number, fraction or decimal."""
    if ans.endswith("%") and ans[:-1].replace(".", "").isdigit():
        return f"{Decimal(ans[:-1]) + delta}\\%"
    gold = normalize_gold(ans, "ape210k").strip("$")
    if gold.startswith("\\frac") or gold.startswith("-\\frac"):
        num, den = gold.replace("-", "").replace("\\frac{", "").rstrip("}").split("}{")
        value = Fraction(int(num), int(den)) * (-1 if gold.startswith("-") else 1) + delta
        whole, rest = divmod(value.numerator, value.denominator)
        if whole and rest and value > 0:
            return f"{whole}\\frac{{{rest}}}{{{value.denominator}}}"
        return f"\\dfrac{{{value.numerator}}}{{{value.denominator}}}"
    return str(Decimal(gold) + delta)


def test_ape210k_answer_formats():
    rows = read_jsonl("ape210k_valid_head250.jsonl")
    for i, row in enumerate(rows):
        gold = normalize_gold(row["ans"], "ape210k")
        assert status(gold, r1_answer(_ape_prediction(row["ans"], 0), i)) == "correct", (row["ans"], gold)
        assert status(gold, r1_answer(_ape_prediction(row["ans"], 1), i)) == "incorrect", (row["ans"], gold)


def test_limo_grade_school_math_mixed_numbers_and_fractions():
    rows = read_jsonl("limo_grade_school_math_test.jsonl")
    answers = [str(r["answer"]) for r in rows]
    assert "7 \\frac{3}{11}" in answers and "$\\frac{89}{200}$" in answers
    assert status(normalize_gold("7 \\frac{3}{11}", "latex"), "\\boxed{\\frac{80}{11}}") == "correct"
    assert status(normalize_gold("7 \\frac{3}{11}", "latex"), "\\boxed{7\\frac{3}{11}}") == "correct"
    assert status(normalize_gold("7 \\frac{3}{11}", "latex"), "\\boxed{\\frac{21}{11}}") == "incorrect"
    assert status(normalize_gold("$\\frac{89}{200}$", "latex"), "\\boxed{0.445}") == "correct"
    # every row whose gold is maths (not a Chinese sentence) verifies against itself, boxed
    decided = 0
    for i, raw in enumerate(answers):
        gold = normalize_gold(raw, "latex")
        boxed = raw.strip().strip("$").rstrip(".．。")
        result = status(gold, r1_answer(boxed, i))
        assert result in ("correct", "unextractable"), (raw, result)
        decided += result == "correct"
    assert decided >= 195  # of 210; the rest are Chinese sentences or dicts


def test_limo_gaokao_letters_and_values():
    rows = read_jsonl("limo_gaokao_test.jsonl")
    letters = "ABCD"
    for i, row in enumerate(rows):
        if row["choice_answer"]:
            gold = normalize_gold(row["choice_answer"], "choice_letter")
            other = letters[(letters.index(row["choice_answer"]) + 1) % 4]
            assert status(gold, r1_answer(row["choice_answer"], i)) == "correct"
            assert status(gold, r1_answer(other, i)) == "incorrect"
            assert status(gold, r1_answer(f"\\text{{{row['choice_answer'].lower()}}}", i)) == "correct"
    free = [r for r in rows if not r["choice_answer"]]
    correct = sum(status(normalize_gold(r["answer"], "latex"), r1_answer(r["answer"], i)) == "correct" for i, r in enumerate(free))
    assert correct >= len(free) - 2


def test_limo_kaoyan_letters_and_latex():
    rows = read_jsonl("limo_kaoyan_test_head60.jsonl")
    for i, row in enumerate(rows):
        gold = normalize_gold(row["answer"], "auto")
        if gold.strip("$") in set("ABCD"):
            assert status(gold, r1_answer(gold.strip("$"), i)) == "correct"
            assert status(gold, r1_answer("A" if gold != "$A$" else "B", i)) == "incorrect"
    assert status(normalize_gold("-\\frac{1}{216}", "auto"), "\\boxed{-\\dfrac{1}{216}}") == "correct"
    assert status(normalize_gold("[1,2)", "auto"), "\\boxed{[1,2)}") == "correct"
    assert status(normalize_gold("[1,2)", "auto"), "\\boxed{[1,2]}") == "incorrect"


def test_coig_cqia_tails_against_boxed_letters():
    for name in ("coig_cqia_kaoyan_head80.jsonl", "coig_cqia_coig_human_value_multi_choice.jsonl"):
        checked = 0
        for i, row in enumerate(read_jsonl(name)):
            gold = normalize_gold(row["output"], "cqia_answer_tail")
            if not gold or not re.fullmatch(r"\$[A-J]+\$", gold):
                continue
            letters = gold.strip("$")
            wrong = "".join(sorted(set("ABCD") - set(letters)))[:1] or "E"
            assert status(gold, r1_answer(letters, i)) == "correct", gold
            assert status(gold, r1_answer(", ".join(letters), i)) == "correct", gold
            assert status(gold, r1_answer(wrong, i)) == "incorrect", gold
            checked += 1
        assert checked >= 50


@pytest.mark.skipif(not XVERIFY.exists(), reason="DISTILL_PUBLIC_DATA does not hold the xVerify test set")
def test_xverify_chinese_math_and_choice_golds():
    import pyarrow.parquet as pq

    rows = pq.read_table(XVERIFY, columns=["data_source", "reward_model"]).to_pylist()
    checked = 0
    for source in ("CMATH", "MGSM", "C-Eval", "CMMLU"):
        picked = [r for r in rows if r["data_source"] == source][:40]
        for i, row in enumerate(picked):
            raw = row["reward_model"]["ground_truth"]
            gold = normalize_gold(raw, "auto")
            if gold is None:
                continue
            body = gold.strip("$")
            if body in set("ABCD"):
                wrong = "A" if body != "A" else "B"
            else:
                try:
                    wrong = str(Fraction(body) + 1)
                except ValueError:
                    continue
            assert status(gold, r1_answer(body, i)) == "correct", raw
            assert status(gold, r1_answer(wrong, i)) == "incorrect", raw
            checked += 1
    assert checked >= 120


@pytest.mark.skipif(not XVERIFY.exists(), reason="DISTILL_PUBLIC_DATA does not hold the xVerify test set")
def test_xverify_golds_boxed_as_answers_are_never_incorrect():
    """Every Chinese maths/exam gold, boxed as the answer, is read as equal to itself or routed.

    Covers the multi-part golds with full-width commas (``$16，17$``, ``$a=-1，b=-1$``), 或-lists
    and Chinese text golds; a partial answer to a multi-part gold is never correct.
    """
    import pyarrow.parquet as pq

    rows = pq.read_table(XVERIFY, columns=["data_source", "reward_model"]).to_pylist()
    sources = {"CMATH", "MGSM", "LiveMathBench", "OlympiadBench", "C-Eval", "CMMLU", "GSM8K", "AMC23"}
    verdicts, multipart = [], 0
    for row in rows:
        if row["data_source"] not in sources:
            continue
        raw = str(row["reward_model"]["ground_truth"])
        gold = normalize_gold(raw, "auto")
        if gold is None:
            continue
        body = raw.strip().strip("$").strip()
        verdicts.append(status(gold, f"<think>x</think>所以最终答案是 \\boxed{{{body}}}。"))
        if "，" in raw and re.fullmatch(r"\$?[-\d.\s，]+\$?", raw):
            first = raw.strip("$").split("，")[0]
            assert status(gold, f"\\boxed{{{first}}}") != "correct", raw
            multipart += 1
    assert "incorrect" not in verdicts
    assert verdicts.count("correct") >= 0.95 * len(verdicts) and len(verdicts) >= 1500
    assert multipart >= 1
