"""Gold normalization and final-answer extraction (no Math-Verify calls here)."""

import json
import re
from pathlib import Path

import pytest

from dagster_project.lib.verify.answer import final_answer, find_final_answer, last_boxed
from dagster_project.lib.verify.gold import normalize_gold

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "verify"


def read_jsonl(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        ("72", "number", "$72$"),
        ("2,125", "number", "$2125$"),
        ("1,450,000", "number", "$1450000$"),
        ("-3.5", "number", "$-3.5$"),
        ("3/4", "number", "$\\frac{3}{4}$"),
        ("25%", "number", "$25\\%$"),
        ("35厘米", "number", "$35$"),
        ("120元", "number", "$120$"),
        ("3万", "number", "3万"),  # kept: whether the question counts in 万 decides what "3" means
        ("2千米", "number", "$2$"),
        ("７２", "number", "$72$"),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "gsm8k_solution", "$72$"),
        ("... #### 2,125", "gsm8k_solution", "$2125$"),
        ("no marker here", "gsm8k_solution", None),
        ("所以 \\boxed{41} 不对，应为 \\boxed{\\frac{1}{2}}。", "boxed_solution", "$\\frac{1}{2}$"),
        ("故选 \\boxed{B}", "boxed_solution", "$B$"),
        ("C", "choice_letter", "$C$"),
        ("ca", "choice_letter", "$AC$"),
        ("A、C", "choice_letter", "$AC$"),
        ("(B)", "choice_letter", "$B$"),
        ("C. 3", "choice_letter", None),
        ("对", "true_false", "正确"),
        ("√", "true_false", "正确"),
        ("×", "true_false", "错误"),
        ("错", "true_false", "错误"),
        ("也许", "true_false", None),
        ("45", "ape210k", "$45$"),
        ("3.7", "ape210k", "$3.7$"),
        ("(11/20)", "ape210k", "$\\frac{11}{20}$"),
        ("23(1/3)", "ape210k", "$\\frac{70}{3}$"),
        ("93.75%", "ape210k", "$93.75\\%$"),
        ("160/(1-20%)", "ape210k", "$200$"),
        ("336/48%", "ape210k", "$700$"),
        ("(3/10)/(14/15)", "ape210k", "$\\frac{9}{28}$"),
        ("7 \\frac{3}{11}", "latex", "$7 \\frac{3}{11}$"),
        ("$\\frac{89}{200}$", "latex", "$\\frac{89}{200}$"),
        ("(1,1).", "latex", "$(1,1)$"),
        ("0。3853", "latex", "$0.3853$"),
        ("丙", "latex", "丙"),
        ("#### 18", "auto", "$18$"),
        ("B", "auto", "$B$"),
        ("√", "auto", "正确"),
        ("14(1/2)", "auto", "$\\frac{29}{2}$"),
        ("-\\frac{1}{216}", "auto", "$-\\frac{1}{216}$"),
        ("", "auto", None),
        ("   ", "number", None),
        (None, "latex", None),
    ],
)
def test_normalize_gold(raw, fmt, expected):
    assert normalize_gold(raw, fmt) == expected


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError):
        normalize_gold("1", "roman")


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("……所以 $K=b / a$ 。\n\n因此答案为：$b / a$", "$b / a$"),
        ("……\n因此答案为：B D", "$BD$"),
        ("……\n因此答案为： $x^{2}$", "$x^{2}$"),
        ("……酚酞指示剂呈浅红 (浅粉)。\n因此答案为：浅红 (浅粉)", "浅红 (浅粉)"),
        ("……D说法不符。因此，\n本题选C。", "$C$"),
        ("……排除BC；\n故本题选AD。", "$AD$"),
        ("……=\\frac{2}{e},\n\\end{aligned}\n$$\n\n故选(C).", "$C$"),
        ("……可知， 《孟子》分发给丁部门。故 (D) 项正确。", "$D$"),
        ("……加强垄断是各国必然的选择，故选 B。", "$B$"),
        ("（3）使用抗蒸腾剂。抗蒸腾剂使气孔开度减少，减少水分散失。", None),
    ],
)
def test_cqia_tails(tail, expected):
    assert normalize_gold(tail, "cqia_answer_tail") == expected


def test_cqia_kaoyan_choice_rows_yield_the_stated_letter():
    rows = read_jsonl("coig_cqia_kaoyan_head80.jsonl")
    checked = 0
    for row in rows:
        output = row["output"].rstrip()
        if "选择题" in row["task_type"]["minor"] and "因此答案为：" in output[-20:]:
            stated = output.rsplit("因此答案为：", 1)[1].replace(" ", "")
            assert normalize_gold(output, "cqia_answer_tail") == f"${''.join(sorted(stated))}$", output[-60:]
            checked += 1
    assert checked >= 40


def test_cqia_human_value_rows_are_letters():
    rows = read_jsonl("coig_cqia_coig_human_value_multi_choice.jsonl")
    golds = [normalize_gold(r["output"], "cqia_answer_tail") for r in rows]
    letters = [g for g in golds if g and re.fullmatch(r"\$[A-J]+\$", g)]
    assert len(letters) >= 99  # 99 of 101 end "本题选X。"
    assert "$AC$" in golds and "$ABCD$" in golds


def test_gsm8k_golds_drop_thousands_commas():
    rows = read_jsonl("gsm8k_test_slice.jsonl")
    for row in rows:
        number = row["answer"].rsplit("####", 1)[1].strip()
        assert normalize_gold(row["answer"], "gsm8k_solution") == f"${number.replace(',', '')}$"
    assert sum("," in r["answer"].rsplit("####", 1)[1] for r in rows) == 14


def test_every_ape210k_answer_in_the_slice_normalizes():
    rows = read_jsonl("ape210k_valid_head250.jsonl")
    golds = [normalize_gold(r["ans"], "ape210k") for r in rows]
    assert all(g and g.startswith("$") and g.endswith("$") for g in golds)
    assert not any("(" in g for g in golds)  # mixed numbers and (a/b) are rewritten


# ---------------------------------------------------------------- final answer part


def test_final_answer_is_the_part_after_think():
    completion = "<think>\n先试 \\boxed{41}……再算一遍\n</think>\n\n最终答案是 \\boxed{42}。"
    assert final_answer(completion) == "\n\n最终答案是 \\boxed{42}。"
    assert last_boxed(final_answer(completion)) == "42"


def test_unfinished_thinking_has_no_answer():
    assert final_answer("<think>\n想了很久 \\boxed{3}") == ""
    assert final_answer(None) == ""


def test_plain_content_is_kept():
    assert final_answer("答案：\\boxed{7}") == "答案：\\boxed{7}"


def test_boxes_in_the_reasoning_do_not_count():
    assert find_final_answer(final_answer("<think>\\boxed{35厘米}</think>没有框，也没有写出最后的答案，只是说明了思路和步骤")).source == "none"
