"""Turn a source's reference answer into a gold string the checker reads (`lib.verify.reading`).

``normalize_gold(raw, gold_format)`` returns None when there is no usable gold. Formats:

``number``
    A plain answer such as GSM8K_zh ``answer_only``: ``72``, ``2,125`` (thousands commas
    stripped), ``-3.5``, ``3/4``, ``25%``, ``35厘米`` (CJK unit stripped). -> ``$72$``;
    a magnitude is kept as written (``3万``).
``gsm8k_solution``
    A worked solution whose last ``#### n`` line holds the answer -> as ``number``.
``boxed_solution``
    A reference solution containing ``\\boxed{}``: the last box is taken (letters ->
    ``choice_letter``, otherwise ``latex``).
``choice_letter``
    One or more option letters A-J (``C``, ``AC``, ``A、C``, ``(B)``) -> ``$AC$``
    (sorted, de-duplicated; Math-Verify needs the ``$..$`` to parse a bare letter).
``cqia_answer_tail``
    COIG-CQIA exam outputs: ``因此答案为：<ans>``; a stated choice (``本题选C。``, ``故选：a``,
    ``故本题正确选项为 $\\mathrm{A}$``, ``所以本题选择B答案``, ``故D为正确选项``); else the one letter
    said to fit the question (``C符合题意``), else the one letter called right (``C项正确``) when
    no other letter is; a leading ``正确``/``错误`` line answers a true/false question.
    Letters -> ``choice_letter``, anything else -> ``auto``.
``true_false``
    对/错/√/×/正确/错误 -> ``正确`` or ``错误``, decided by rule.
``ape210k``
    Ape210K ``ans``: ints, decimals, ``(11/20)``, mixed numbers ``23(1/3)`` (= 23 + 1/3),
    percents ``93.75%`` (kept as a percent) and small expressions ``160/(1-20%)``, which
    are evaluated exactly -> ``$\\frac{70}{3}$``, ``$93.75\\%$``, ``$200$``.
``latex``
    LaTeX answer text (LIMO, xVerify): trailing full stops removed, a numeric value with a
    CJK unit reduced to the number, an option letter with its text (``C. 1-i``) to the
    letter, wrapped in ``$...$`` unless already delimited. Multi-part golds (``16，17``),
    statement lists (``(1)(3)(4)``), magnitudes (``3万``) and durations (``3小时30分``) are
    kept whole: the checker reads them (`lib.verify.reading`).
``auto``
    Sniff one of the above from the text.

Free-text golds that are not maths (``浅红 (浅粉)``) are returned as plain text: no rule can
read them, so they reach the judge together with the reference.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from dagster_project.lib.text import to_halfwidth
from dagster_project.lib.verify.answer import iter_boxed, last_boxed
from dagster_project.lib.verify.reading import CJK, FALSE_TEXT, TRUE_TEXT, read_truth

GOLD_FORMATS = (
    "number",
    "gsm8k_solution",
    "boxed_solution",
    "choice_letter",
    "cqia_answer_tail",
    "true_false",
    "ape210k",
    "latex",
    "auto",
)


_NUMBER = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(rf"^(?P<num>{_NUMBER})(?:/(?P<den>\d+))?\s*(?P<pct>\\?%)?$")
_LETTERS_RE = re.compile(r"^[(\[（]?\s*([A-J](?:\s*[,，、\s和及]?\s*[A-J])*)\s*[)\]）]?[.。．]?$")
_OPTION_WITH_TEXT = re.compile(r"^[(（]?\s*([A-J])\s*[)）]?\s*[.．、:：]\s*\S")
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_MAGNITUDE_NUMBER = re.compile(rf"^{_NUMBER}\s*(?:万亿|千万|百万|亿|万|千|百)(?![米克瓦焦帕伏卡赫])[{CJK}]*$")
_UNIT_AFTER_NUMBER = re.compile(rf"^(?P<value>[^{CJK}]*[0-9}}])\s*(?P<unit>[{CJK}℃]+)\s*\.?$")
_APE_MIXED = re.compile(r"(\d+)\((\d+)/(\d+)\)")
_TRAILING_STOPS = "．。.，,；; "

# COIG-CQIA exam outputs. A letter as written there: C, (C), $\mathrm{C}$, 【C】, a (lowercase after 选).
_LETTER = r"[(（【\[]?\s*\$?\s*(?:\\mathrm\s*\{|\\text\s*\{)?\s*(?P<ans>[A-J](?:\s*[、,，和]?\s*[A-J])*)\s*\}?\s*\$?\s*[)）】\]]?"
_LOWER_LETTER = r"[(（【\[]?\s*(?P<ans>[a-j])\s*[)）】\]]?(?![a-zA-Z])"
_STATED_ANSWER = re.compile(r"(?:因此|所以|故)?答案(?:为|是)\s*[:：]\s*(?P<ans>.+?)\s*$", re.DOTALL)
_CONCLUDE = r"(?:故|所以|因此|则|即|综上所述|综上)(?:而)?[，,]?\s*"
_CHOICE_STATEMENTS = tuple(re.compile(p) for p in (
    rf"(?:{_CONCLUDE})?(?:本题|此题)\s*(?:正确)?(?:选项)?\s*(?:应)?(?:选择|选|为|是)\s*[:：]?\s*(?:答案)?\s*{_LETTER}",
    rf"(?:正确|最佳)(?:的)?(?:选项|答案)\s*(?:应)?(?:为|是|选)?\s*[:：]?\s*{_LETTER}",
    rf"{_CONCLUDE}(?:应)?(?:选择|选)\s*[:：]?\s*(?:答案)?\s*{_LETTER}",
    rf"{_CONCLUDE}(?:应)?(?:选择|选)\s*[:：]?\s*{_LOWER_LETTER}",
    rf"答案\s*(?:应)?(?:为|是)?\s*(?:选择|选)\s*[:：]?\s*{_LETTER}",
    rf"(?:{_CONCLUDE})答案(?:为|是)\s*[:：]?\s*{_LETTER}",
    rf"{_LETTER}\s*(?:选?项)?\s*(?:为|是)\s*(?:正确|最佳)(?:的)?(?:选项|答案)",
    rf"(?:^|[。.；;，,\s])(?:选择|选)\s*[:：]?\s*{_LETTER}\s*[。.]?\s*$",
))
_FITS_QUESTION = re.compile(rf"(?<![A-Za-z]){_LETTER}\s*(?:选?项)?\s*(?:的)?(?:观点|说法|表述)?\s*(?<!不)符合题意")
_CALLED_RIGHT = re.compile(
    rf"(?<![A-Za-z]){_LETTER}\s*(?:选?项)?\s*(?:的)?(?:观点|说法|表述)?\s*(?:是)?正确(?:的)?(?![^。；;\n]{{0,8}}(?:但|不符|不合|与题意))"
)
_CALLED_WRONG = re.compile(
    rf"(?<![A-Za-z]){_LETTER}\s*(?:[两三]项|选?项)?\s*(?:的)?(?:观点|说法|表述)?\s*(?:是|均)?(?:错误|排除|不符合|不合题意|不正确)"
)
_TRUE_FALSE_FIRST_LINE = re.compile(r"^\s*(正确|错误|对|错|√|×)\s*[。.]?\s*\n")


def normalize_gold(raw: str | None, gold_format: str = "auto") -> str | None:
    """Normalize one reference answer; None when nothing usable is left."""
    if raw is None:
        return None
    if gold_format not in GOLD_FORMATS:
        raise ValueError(f"unknown gold_format {gold_format!r}; expected one of {GOLD_FORMATS}")
    text = str(raw).strip()
    if not text:
        return None
    return _HANDLERS[gold_format](text)


def gold_from_number(text: str) -> str | None:
    """``2,125`` -> ``$2125$``; ``3/4`` -> ``$\\frac{3}{4}$``; ``25%`` -> ``$25\\%$``; ``35厘米`` -> ``$35$``.

    A magnitude stays as written (``3万``): whether the question counts in 万 decides what an
    answer of ``3`` means, so the checker keeps both readings. Other text falls back to
    :func:`gold_from_latex`.
    """
    return _plain_number(text) or (gold_from_latex(text) if re.search(r"\d", text) else None)


def _plain_number(text: str) -> str | None:
    """The strict part of :func:`gold_from_number`: None unless the text is one number."""
    value = to_halfwidth(text).replace("−", "-").strip().rstrip(_TRAILING_STOPS)
    if _MAGNITUDE_NUMBER.match(value):
        return value.replace(",", "")
    value = strip_cjk_unit(value).strip()
    value = value.strip("$ ")
    m = _NUMBER_RE.match(value)
    if not m:
        return None
    num = m.group("num").replace(",", "").lstrip("+")
    if m.group("den"):
        sign = "-" if num.startswith("-") else ""
        return f"${sign}\\frac{{{num.lstrip('-')}}}{{{m.group('den')}}}$"
    return f"${num}\\%$" if m.group("pct") else f"${num}$"


def strip_cjk_unit(value: str) -> str:
    """``35厘米`` -> ``35``; text with CJK inside the value is kept."""
    m = _UNIT_AFTER_NUMBER.match(value.strip())
    return m.group("value").rstrip() if m else value


def gold_from_gsm8k(text: str) -> str | None:
    """Number after the last ``####``."""
    found = _GSM8K_RE.findall(text)
    return gold_from_number(found[-1]) if found else None


def gold_from_boxed(text: str) -> str | None:
    """Last ``\\boxed{}`` of a reference solution."""
    content = last_boxed(text)
    if content is None or not content.strip():
        return None
    return gold_from_letters(content) or gold_from_latex(content)


def gold_from_letters(text: str) -> str | None:
    """Option letters -> ``$AC$``; None unless the text is only letters."""
    cleaned = to_halfwidth(text).strip()
    cleaned = re.sub(r"\\(?:text|mathrm|textbf|mathbf)\{([^{}]*)\}", r"\1", cleaned).strip("$ ").upper()
    m = _LETTERS_RE.match(cleaned)
    if not m:
        return None
    letters = sorted(set(re.findall(r"[A-J]", m.group(1))))
    return f"${''.join(letters)}$"


def gold_from_true_false(text: str) -> str | None:
    """对/错 style answers -> ``正确``/``错误``."""
    truth = read_truth(text)
    if truth is None and to_halfwidth(text).strip().strip("$()（）。. ").upper() == "X":
        truth = False
    return None if truth is None else (TRUE_TEXT if truth else FALSE_TEXT)


def gold_from_cqia_tail(text: str) -> str | None:
    """The answer stated in a COIG-CQIA exam output (see the module docstring)."""
    body = text.strip()
    stated = _STATED_ANSWER.search(body[-300:])
    if stated:
        answer = stated.group("ans").strip().splitlines()[0].strip()
        if answer:
            return gold_from_letters(answer) or gold_from_auto(answer, allow_tail=False)
    found = _last_choice(body)
    if found:
        return found
    fits = {frozenset(re.findall(r"[A-J]", m.group("ans"))) for m in _FITS_QUESTION.finditer(body)}
    if len(fits) == 1:
        return f"${''.join(sorted(next(iter(fits))))}$"
    right = list(_CALLED_RIGHT.finditer(body))
    letters = {frozenset(re.findall(r"[A-J]", m.group("ans"))) for m in right}
    if len(letters) == 1 and len(chosen := next(iter(letters))) == 1:
        wrong = {x for m in _CALLED_WRONG.finditer(body) for x in re.findall(r"[A-J]", m.group("ans"))}
        concluded = any(re.search(rf"{_CONCLUDE}(?:选项)?\s*$", body[max(0, m.start() - 8):m.start()]) for m in right)
        # one letter right and exactly one other wrong, without a conclusion: maybe a "which is wrong" question
        if not chosen & wrong and (concluded or len(wrong) != 1):
            return f"${next(iter(chosen))}$"
    m = _TRUE_FALSE_FIRST_LINE.match(body)
    if m:
        return gold_from_true_false(m.group(1))
    return None


def _last_choice(body: str) -> str | None:
    """The letters of the stated choice (``故选C``, ``本题正确选项为 $\\mathrm{A}$``...).

    None when the output states different choices (several sub-questions, or a change of mind).
    """
    found = {gold_from_letters(m.group("ans")) for pattern in _CHOICE_STATEMENTS for m in pattern.finditer(body)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def gold_from_ape210k(text: str) -> str | None:
    """Evaluate an Ape210K ``ans`` exactly; plain percents stay percents."""
    value = to_halfwidth(text).strip().replace(" ", "")
    if re.fullmatch(r"[-+]?\d+(?:\.\d+)?%", value):
        return f"${value[:-1]}\\%$"
    expr = _APE_MIXED.sub(r"(\1+\2/\3)", value)
    expr = re.sub(r"(\d+(?:\.\d+)?)%", r"(\1/100)", expr)
    number = _eval_exact(expr)
    if number is None:
        return gold_from_latex(text)
    return _fraction_to_latex(number, prefer_decimal="." in value and "/" not in value)


def gold_from_latex(text: str) -> str | None:
    """LaTeX answer text -> ``$...$``; numbers with units become bare numbers."""
    value = re.sub(r"(?<=\d)。(?=\d)", ".", text.strip())
    while value and value[-1] in _TRAILING_STOPS:
        value = value[:-1].rstrip()
    if not value:
        return None
    option = _OPTION_WITH_TEXT.match(to_halfwidth(value))
    if option:
        return f"${option.group(1)}$"  # "C. 1-i": the option letter is the answer
    if re.search(rf"[{CJK}]", value) and "\\" not in value and "$" not in value:
        return _plain_number(value) or value  # Chinese text: read by the checker, or a judge-only reference
    if "\\boxed" in value or re.search(r"(?<!\\)\$", value) or value.startswith(("\\(", "\\[")):
        return value
    return _plain_number(value) or f"${strip_cjk_unit(value)}$"


def gold_from_auto(text: str, *, allow_tail: bool = True) -> str | None:
    """Guess the format from the text and normalize accordingly."""
    value = text.strip()
    if "####" in value:
        return gold_from_gsm8k(value)
    if any(True for _ in iter_boxed(value)):
        return gold_from_boxed(value)
    if allow_tail and len(value) > 20:
        tail = gold_from_cqia_tail(value)
        if tail:
            return tail
    if not re.fullmatch(r"[A-Za-z]", value):  # a lone ASCII letter is an option, not T/F
        result = gold_from_true_false(value)
        if result:
            return result
    result = gold_from_letters(value) or _plain_number(value)
    if result:
        return result
    if _APE_MIXED.search(value) or re.fullmatch(r"[\d.+\-*/()%]+", value):
        return gold_from_ape210k(value)
    if re.fullmatch(rf"[{CJK}，。、；：！？“”（）()\s]+", value):
        return value  # plain Chinese text: judge-only gold
    return gold_from_latex(value)


def _eval_exact(expr: str) -> Fraction | None:
    """Exact arithmetic on ``+ - * / ( )`` and decimal literals; None for anything else."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            return ev(node.operand) if isinstance(node.op, ast.UAdd) else -ev(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            return left / right
        raise ValueError("unsupported expression")

    try:
        return ev(tree)
    except (ValueError, ZeroDivisionError):
        return None


def _fraction_to_latex(value: Fraction, *, prefer_decimal: bool) -> str:
    """Integer, terminating decimal (when the source wrote one) or ``\\frac{p}{q}``."""
    if value.denominator == 1:
        return f"${value.numerator}$"
    if prefer_decimal and _terminates(value.denominator):
        text = f"{float(value):.10f}".rstrip("0").rstrip(".")
        if Fraction(text) == value:
            return f"${text}$"
    sign = "-" if value < 0 else ""
    return f"${sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}$"


def _terminates(denominator: int) -> bool:
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    return denominator == 1


_HANDLERS = {
    "number": gold_from_number,
    "gsm8k_solution": gold_from_gsm8k,
    "boxed_solution": gold_from_boxed,
    "choice_letter": gold_from_letters,
    "cqia_answer_tail": gold_from_cqia_tail,
    "true_false": gold_from_true_false,
    "ape210k": gold_from_ape210k,
    "latex": gold_from_latex,
    "auto": gold_from_auto,
}
