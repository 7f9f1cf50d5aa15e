"""lib/text: one table of invisible characters, the same in Python and in the SQL macro."""

import sys
import unicodedata

import duckdb
import pytest

from dagster_project.lib.text import INVISIBLE, first_control, fold, is_blank, sql_macros, strip_invisible

# The characters a hostile test found sent to R1 as "questions", and the one the SQL layer emptied.
REPORTED = ["\u200e", "\u200f", "\u202e", "\u180e", "\u3164", "\u2800", "\ufe0f", "\u200b"]
VISIBLE = ["题目：求 $x^2$ 的值。", "ｓｋ－ａ１", "😀👍", "\u3000全角空格\u3000", "Ａ", "·", "—", "…", "\t\n"]


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    for statement in sql_macros():
        con.execute(statement)
    yield con
    con.close()


def test_the_table_covers_every_format_character_and_the_blank_look_alikes():
    cf = {chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"}
    missing = sorted(f"U+{ord(c):04X}" for c in cf - set(INVISIBLE))
    assert not missing, f"add to lib/text.INVISIBLE (it changes the prompt_text of prompts holding them): {missing}"
    assert set(REPORTED) | {"\u115f", "\u1160", "\ufe00", "\U000e0100", "\u180b", "\u00ad", "\ufeff"} <= set(INVISIBLE)
    letters = [c for c in INVISIBLE if unicodedata.category(c).startswith(("L", "N", "P"))]
    assert not any(c.isspace() for c in INVISIBLE) and letters == ["\u115f", "\u1160", "\u3164", "\uffa0"]


def test_python_and_sql_strip_exactly_the_same_characters(con):
    texts = [f"a{c}b" for c in INVISIBLE] + VISIBLE + ["".join(INVISIBLE)]
    got = [con.execute("SELECT strip_invisible(?)", [t]).fetchone()[0] for t in texts]
    assert got == [strip_invisible(t) for t in texts]
    assert got[:len(INVISIBLE)] == ["ab"] * len(INVISIBLE)
    assert got[len(INVISIBLE):-1] == VISIBLE and got[-1] == ""


@pytest.mark.parametrize("char", REPORTED)
def test_invisible_only_questions_are_blank(char, con):
    question = f" {char}\n{char} "
    assert is_blank(question)
    # what the SQL layer would have sent: nothing
    assert con.execute("SELECT trim(strip_invisible(?))", [question]).fetchone()[0].strip() == ""


def test_a_question_that_is_not_blank_keeps_text_in_sql(con):
    for text in VISIBLE[:-1] + ["\u200b答\u200b", "\ufeff1"]:
        assert not is_blank(text)
        assert con.execute("SELECT trim(strip_invisible(?))", [text]).fetchone()[0] != ""


def test_control_characters_except_tab_newline_and_cr():
    for cp in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)]:
        assert first_control(f"ab{chr(cp)}") == (2, f"U+{cp:04X}")
    assert first_control("a\tb\nc\rd\u2028e") is None
    assert first_control("x\ud800") == (1, "U+D800")


def test_fold_maps_full_width_and_drops_invisible():
    assert fold("ｓｋ－ａ\u200bｂ\u3000Ｘ") == "sk-ab X"
    assert fold("plain ascii") == "plain ascii"
    assert fold("中文，没有需要折叠的") == "中文,没有需要折叠的"
