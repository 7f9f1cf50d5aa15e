"""Each answer form the verifier reads, one class at a time, with real Math-Verify underneath.

The gold strings below are the ones quoted in the issue these rules answer; the answers are
written in R1's style. Cases that must stay routed (status ``unextractable``) are the ones a
careful grader could not settle from the text and the gold alone.
"""

import pytest

from dagster_project.lib.verify.answer import find_final_answer
from dagster_project.lib.verify.checker import check_one
from dagster_project.lib.verify.gold import normalize_gold
from dagster_project.lib.verify.reading import read_gold, read_letters, read_math, read_statements, read_truth


def verdict(gold: str, answer: str, gold_format: str | None = None):
    normalized = normalize_gold(gold, gold_format) if gold_format else gold
    return check_one(normalized, f"<think>\n先试一下 \\boxed{{7}}，不对。\n</think>\n\n{answer}", 3, 3)


def status(gold: str, answer: str, gold_format: str | None = None) -> str:
    return verdict(gold, answer, gold_format).status


# ------------------------------------------------------------------ extraction


@pytest.mark.parametrize(
    ("answer", "source", "texts"),
    [
        ("得到 \\boxed{41}，……最终答案为 \\boxed{42}", "box", ("42",)),
        ("\\boxed{41} \\boxed{42}", "boxes", ("41", "42")),
        ("方程的解为 \\boxed{1} 或 \\boxed{2}。", "boxes", ("1", "2")),
        ("(1) \\boxed{3}；(2) \\boxed{5}", "boxes", ("3", "5")),
        ("\\boxed{42}，即 \\boxed{42}", "box", ("42",)),
        ("所以答案是 42", "phrase", ("42",)),
        ("最终答案是 $42$。", "phrase", ("$42$",)),
        ("答案：C", "phrase", ("C",)),
        ("**答案：C**", "phrase", ("C",)),
        ("**答案**：C", "phrase", ("C",)),
        ("故选 B。", "phrase", ("B",)),
        ("综上所述，本题选 D。", "phrase", ("D",)),
        ("【答案】C", "phrase", ("C",)),
        ("正确选项为 A。", "phrase", ("A",)),
        ("Final Answer: 17", "phrase", ("17",)),
        ("所以答案是 16，17", "phrase", ("16，17",)),
        ("所以答案是 B，因为其他选项都不符合", "phrase", ("B",)),
        ("答：小明一共有 42 个苹果。", "phrase", ("42个苹果",)),
        ("答：还剩下这批帐篷的 $\\frac{11}{20}$ 没完成。", "phrase", ("\\frac{11}{20}",)),
        ("**C**", "whole", ("C",)),
    ],
)
def test_final_answer_extraction(answer, source, texts):
    found = find_final_answer(answer)
    assert (found.source, found.texts) == (source, texts)


@pytest.mark.parametrize(
    "answer",
    [
        "最终答案为 \\boxed{540}。\n\n不过，再仔细想想题意，答案应为 180。",
        "答案：\\boxed{B}\n\n（注：若按另一种理解，则应选 \\boxed{C}。）",
    ],
)
def test_an_answer_that_contradicts_itself_is_ambiguous(answer):
    assert find_final_answer(answer).source == "ambiguous"
    assert status("$540$" if "540" in answer else "$B$", answer) == "unextractable"


def test_a_phrase_that_repeats_the_box_is_consistent():
    assert find_final_answer("\\boxed{42}\n\n答：小明有 42 个苹果。").texts == ("42",)


def test_one_box_per_part_in_the_last_paragraph():
    answer = "甲环行一周需要 \\boxed{20} 分钟，乙需要 \\boxed{30} 分钟。"
    assert find_final_answer(answer).siblings == ("20",)
    result = verdict("$20, 30$", answer)
    assert (result.status, result.answer_source, result.parsed_answer) == ("correct", "boxes", "20 | 30 [分钟]")
    # a concluding word between the boxes ends the run: 30 alone is only part of the gold
    assert status("$20, 30$", "先得 \\boxed{20}，所以最终答案为 \\boxed{30}") == "unextractable"


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize(
    ("text", "letters"),
    [("C", "C"), ("c", "C"), ("(C)", "C"), ("（C）", "C"), ("\\text{C}", "C"), ("\\mathrm{D}", "D"),
     ("\\textbf{A}", "A"), ("选C", "C"), ("选项C", "C"), ("C选项", "C"), ("C项", "C"), ("C.", "C"),
     ("C. 1-i", "C"), ("C：1-\\mathrm{i}", "C"), ("\\text{(B)}", "B"), ("A、C", "AC"), ("A,C", "AC"),
     ("AC", "AC"), ("A和C", "AC"), ("A C", "AC"), ("【C】", "C"), ("ABCD", "ABCD")],
)
def test_option_letters(text, letters):
    assert read_letters(text) == frozenset(letters)


@pytest.mark.parametrize("text", ["A或B", "A or B", "1-i", "选项A和B都有道理", "x", ""])
def test_not_option_letters(text):
    assert read_letters(text) is None


@pytest.mark.parametrize(
    ("text", "plain", "numbers"),
    [("(1)(3)(4)", False, (1, 3, 4)), ("①③④", False, (1, 3, 4)), ("(2) (1) (3)", False, (2, 1, 3)),
     ("（1）（3）", False, (1, 3)), ("\\textcircled{1}\\textcircled{3}", False, (1, 3)),
     ("1,3,4", True, (1, 3, 4)), ("1、3", True, (1, 3)), ("(1)，(3)，(4)", False, (1, 3, 4))],
)
def test_statement_lists(text, plain, numbers):
    assert read_statements(text, plain_numbers=plain) == numbers


def test_plain_numbers_are_statements_only_on_the_answer_side():
    assert read_statements("1,3,4", plain_numbers=False) is None
    assert read_gold("16, 17").kind == "math"


@pytest.mark.parametrize(
    ("text", "truth"),
    [("正确", True), ("对", True), ("√", True), ("\\checkmark", True), ("\\text{正确}", True), ("T", True),
     ("错误", False), ("错", False), ("×", False), ("\\times", False), ("F", False), ("不正确", False),
     ("该说法错误", False), ("这个命题是正确的", True), ("部分正确", None), ("要看情况", None)],
)
def test_true_false(text, truth):
    assert read_truth(text) == truth


@pytest.mark.parametrize(
    ("text", "shown", "joiner"),
    [
        ("16，17", "16 | 17", ","),
        ("a=-1，b=-1", "a=-1 | b=-1", ","),
        ("$a_1=-1$，$a_2=1$", "a_1=-1 | a_2=1", ","),
        ("1或2", "1 | or | 2", "or"),
        ("1, 2, 3, 或 6", "1 | or | 2 | or | 3 | or | 6", "or"),
        ("x=1 \\text{ 或 } x=2", "x=1 | or | x=2", "or"),
        ("\\{1,2\\}", "\\{1,2\\}", ""),
        ("[1,2)", "[1,2)", ""),
        ("2,125", "2125", ""),
        ("1\\,000", "1000", ""),
        ("2{,}125", "2125", ""),
        ("3\\text{万}", "30000 (written 3)", ""),
        ("1.5\\text{亿}", "150000000 (written 1.5)", ""),
        ("500万元", "5000000 (written 500) [元]", ""),
        ("\\text{12元}", "12 [元]", ""),
        ("120\\text{元}", "120 [元]", ""),
        ("35\\,\\mathrm{cm}", "35 [cm]", ""),
        ("2千米", "2 [千米]", ""),
        ("3小时30分", "210 [3小时30分]", ""),
        ("x²/16+y²/4=1 (y>0)", "x^2/16+y^2/4=1 (y>0)", ""),
        ("\\frac{x^2}{16}+\\frac{y^2}{4}=1，y>0", "\\frac{x^2}{16}+\\frac{y^2}{4}=1 (y>0)", ""),
    ],
)
def test_math_parts(text, shown, joiner):
    reading = read_math(text)
    assert (reading.kind, reading.shown(), reading.joiner) == ("math", shown, joiner)


def test_thousands_commas_split_when_the_gold_has_parts():
    assert read_math("2,125", expect_parts=2).shown() == "2 | 125"


@pytest.mark.parametrize("text", ["无解", "1万2千", "3元5角", "浅红 (浅粉)", "(1,2"])
def test_text_is_unreadable(text):
    assert read_math(text).kind == "unreadable"


# ------------------------------------------------------------------ the classes of the issue


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        # an intermediate box close before the final one: only the last box counts
        ("$42$", "…得到 \\boxed{41}，……最终答案为 \\boxed{42}", "correct"),
        ("$41$", "…得到 \\boxed{41}，……最终答案为 \\boxed{42}", "incorrect"),
        ("$18$", "剩下 \\boxed{9} 个，收入 \\boxed{18} 美元。", "correct"),
        ("$18$", "\\boxed{9}。所以 \\boxed{18}", "correct"),
        # multi-part golds with a full-width comma: whole, part by part
        ("$16，17$", "\\boxed{16,17}", "correct"),
        ("$16，17$", "\\boxed{16，17}", "correct"),
        ("$16，17$", "\\boxed{16}", "unextractable"),  # incomplete, or one of several answers
        ("$16，17$", "\\boxed{16，18}", "incorrect"),
        ("$16，17$", "\\boxed{16，17，18}", "incorrect"),
        ("$a=-1，b=-1$", "\\boxed{a=-1, b=-1}", "correct"),
        ("$a=-1，b=-1$", "\\boxed{b=-1，a=-1}", "correct"),  # labelled parts: order is free
        ("$a=-1，b=-1$", "\\boxed{a=-1, b=1}", "incorrect"),
        ("$a_1=-1$，$a_2=1$", "\\boxed{a_1=-1，a_2=1}", "correct"),
        ("$a_1=-1$，$a_2=1$", "\\boxed{a_1=1，a_2=-1}", "incorrect"),
        # statement lists are sets, not products or sums
        ("(1)(3)", "\\boxed{(4)}", "incorrect"),
        ("(1)(3)(4)", "\\boxed{(2)(6)}", "incorrect"),
        ("(1)(3)(4)", "\\boxed{1,3,4}", "correct"),
        ("(1)(3)(4)", "\\boxed{①③④}", "correct"),
        ("①③④", "\\boxed{(1)(3)(4)}", "correct"),
        ("(2) (1) (3)", "\\boxed{(2)(1)(3)}", "correct"),  # an ordering: order counts
        ("(2) (1) (3)", "\\boxed{(1)(2)(3)}", "incorrect"),
        # magnitudes and units inside \text
        ("$30000$", "\\boxed{3\\text{万}}", "correct"),
        ("$150000000$", "\\boxed{1.5\\text{亿}}", "correct"),
        ("$12$", "\\boxed{\\text{12元}}", "correct"),
        ("$1000$", "\\boxed{1\\,000}", "correct"),
        ("$1000$", "\\boxed{1\\,100}", "incorrect"),
        ("3万", "\\boxed{30000}", "correct"),
        ("$70000$", "他赚了 \\boxed{7} 万美元。", "correct"),  # the magnitude is written after the box
        ("$70000$", "\\boxed{7\\text{万}\\text{美元}}", "correct"),
        ("$0.25$", "\\boxed{25}\\%", "correct"),
        ("$42$", "\\boxed{42} 是正确的", "correct"),
        ("$AC$", "排除 \\boxed{C}，所以选 \\boxed{A}", "incorrect"),  # C is excluded: the answer is A
        ("3万", "\\boxed{4万}", "incorrect"),
        # equations with a condition; 或-lists
        ("x²/16+y²/4=1 (y>0)", "\\boxed{x^2=1}", "incorrect"),
        ("x²/16+y²/4=1 (y>0)", "\\boxed{\\frac{x^2}{16}+\\frac{y^2}{4}=1\\ (y>0)}", "correct"),
        ("x²/16+y²/4=1 (y>0)", "\\boxed{x^2+4y^2=16（y>0）}", "correct"),
        ("x²/16+y²/4=1 (y>0)", "\\boxed{\\frac{x^2}{16}+\\frac{y^2}{8}=1\\ (y>0)}", "incorrect"),
        ("$1,2$", "\\boxed{1或2}", "correct"),
        ("1或2", "\\boxed{1,2}", "correct"),
        ("1或2", "\\boxed{2或1}", "correct"),  # alternatives: order is free
        ("$\\{1,2\\}$", "\\boxed{1或2}", "correct"),
        # decided by rule now instead of routed
        ("$42$", "所以答案是 42", "correct"),
        ("$42$", "所以答案是 43", "incorrect"),
        ("$42$", "最终答案是 $42$。", "correct"),
        ("$C$", "答案：C", "correct"),
        ("$C$", "**答案：C**", "correct"),
        ("$C$", "**答案：D**", "incorrect"),
        ("正确", "\\boxed{√}", "correct"),
        ("错误", "\\boxed{对}", "incorrect"),
        ("错误", "**答案：×**", "correct"),
        ("3小时30分", "\\boxed{3.5\\text{小时}}", "correct"),
        ("3小时30分", "\\boxed{210分钟}", "correct"),
        ("3小时30分", "\\boxed{3小时20分}", "incorrect"),
        ("$3.5$", "\\boxed{3小时30分}", "correct"),
    ],
)
def test_issue_classes(gold, answer, expected):
    assert status(gold, answer) == expected


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("$C$", "\\boxed{A或C}"),                          # a hedge
        ("$C$", "答案可能是 B，也可能是 C，我更倾向于 C。"),  # no committed answer
        ("$6$", "故选 \\boxed{A}"),                          # a letter against a value: the options are unknown
        ("$C$", "\\boxed{1-\\mathrm{i}}"),                    # a value against a letter
        ("$16，17$", "\\boxed{17，16}"),                     # blanks in another order
        ("$3$", "\\boxed{3\\text{万}}"),                     # the question may count in 万
        ("$540$", "\\boxed{0.54\\text{千米}}"),              # maybe another unit
        ("$1.5$", "\\boxed{90\\text{分钟}}"),                # a duration in a unit it was not asked in?
        ("x²/16+y²/4=1 (y>0)", "\\boxed{\\frac{x^2}{16}+\\frac{y^2}{4}=1}"),  # the condition is missing
        ("$42$", "\\boxed{41} 或 \\boxed{42}"),              # several boxed answers for one value
        ("$42$", "\\boxed{\\text{无法确定}}"),
        ("$AC$", "选 \\boxed{A}，还有 \\boxed{C}"),              # letters spread over boxes
        ("$42$", "\\boxed{}"),
        ("$42$", "这一题条件不足，我没有办法给出确定的答案，需要补充信息后再计算。"),
        ("浅红 (浅粉)", "\\boxed{浅红}"),                    # a free-text gold
    ],
)
def test_truly_ambiguous_cases_stay_routed(gold, answer):
    assert status(gold, answer) == "unextractable"


def test_an_unfinished_completion_is_routed():
    result = check_one("$42$", "<think>\n想了很久，还是 \\boxed{42}", 3, 3)
    assert (result.status, result.answer_source) == ("unextractable", "none")


# ------------------------------------------------------------------ what the stored result shows


def test_the_result_says_what_was_compared_and_how():
    result = verdict("$16，17$", "\\boxed{16，17}")
    assert result.extracted_answer == "16，17" and result.parsed_answer == "16 | 17" and result.parsed_gold == "16 | 17"
    assert (result.method, result.answer_source, result.rules) == ("math_verify_parts", "box", "fold")
    result = verdict("$30000$", "\\boxed{3\\text{万}}")
    assert (result.method, result.rules, result.parsed_answer) == ("math_verify", "magnitude", "30000 (written 3)")
    result = verdict("(1)(3)(4)", "\\boxed{1,3,4}")
    assert (result.method, result.parsed_answer) == ("statement_set", "(1)(3)(4)")
    result = verdict("$C$", "**答案：C**")
    assert (result.method, result.answer_source, result.parsed_answer) == ("option_set", "phrase", "{C}")
    result = verdict("错误", "\\boxed{\\times}")
    assert (result.method, result.parsed_answer) == ("true_false", "错误")
    result = verdict("$3$", "\\boxed{3\\text{万}}")
    assert result.method is None and "magnitude" in result.error


# ------------------------------------------------------------------ COIG-CQIA answer tails


@pytest.mark.parametrize(
    ("output", "gold"),
    [
        ("……②③④观点正确；①观点太绝对错误，所以本题选择B答案。", "$B$"),
        ("……所以a符合题意；bc排除；所以d不符合题意。故选：a。", "$A$"),
        ("……草酸既是较强的酸又是还原剂, 因此选 $\\mathrm{D}$ 。", "$D$"),
        ("……其公式是: 垄断价格 = 成本价格 + 平均利润 + 垄断利润。故本题正确选项为 $\\mathrm{A}$ 。其余选项不符合题意。", "$A$"),
        ("……A说法错误，与实际不符；B说法错误；C说法正确，符合题意；D说法错误，少数民族地区实行民族自治。", "$C$"),
        ("……一言一行都要遵从汉族的风俗习惯，②项观点错误，应排除。故答案为B。", "$B$"),
        ("……这是求实心理主导的消费，故D为正确选项。A、B、C均不符合题意。", "$D$"),
        ("……A项错误；磷脂主要参与质膜结构的组成，B项错误；C项正确；D项错误。", "$C$"),
        ("……故A正确；故B正确；故C错误；故D正确。故选：C。", "$C$"),
        ("……故本题选A和B。", "$AB$"),
        ("……故选：A、E", "$AE$"),
        ("错误\n\n依照我国继承法，继承方式包括法定继承和遗嘱继承……", "错误"),
        ("正确。\n\n本题考查维护祖国统一……", "正确"),
        # not sure -> no gold (the judge gets the whole reference)
        ("……A项正确；B项错误；C项正确；D项正确。", None),             # a "which is wrong" question
        ("……故选择D。……#### 第二题 ……故选择A。", None),             # two questions, two choices
        ("……因此选项 B 正确。……故而选项 D 正确。", None),
        ("错误，宪法规定的是国家生活中的根本问题……", None),            # not a true/false line
        ("①坚持党的领导；②发展集体经济；③加强环境监督。", None),
    ],
)
def test_coig_cqia_tails(output, gold):
    assert normalize_gold(output, "cqia_answer_tail") == gold
