"""Turn a source's reference answer into a gold string Math-Verify can parse.

``normalize_gold(raw, gold_format)`` returns None when there is no usable gold. Formats:

``number``
    A plain answer such as GSM8K_zh ``answer_only``: ``72``, ``2,125`` (thousands commas
    stripped), ``-3.5``, ``3/4``, ``25%``, ``35厘米`` (CJK unit stripped). -> ``$72$``.
``gsm8k_solution``
    A worked solution whose last ``#### n`` line holds the answer -> as ``number``.
``boxed_solution``
    A reference solution containing ``\\boxed{}``: the last box is taken (letters ->
    ``choice_letter``, otherwise ``latex``).
``choice_letter``
    One or more option letters A-J (``C``, ``AC``, ``A、C``, ``(B)``) -> ``$AC$``
    (sorted, de-duplicated; Math-Verify needs the ``$..$`` to parse a bare letter).
``cqia_answer_tail``
    COIG-CQIA exam outputs ending ``因此答案为：<ans>``, ``本题选C。``, ``故选C``,
    ``故 (D) 项正确`` or ``选X``; letters -> ``choice_letter``, anything else -> ``auto``.
``true_false``
    对/错/√/×/正确/错误 -> ``正确`` or ``错误``. Math-Verify parses neither, so such items
    come back ``unextractable`` and go to the correctness judge with this reference.
``ape210k``
    Ape210K ``ans``: ints, decimals, ``(11/20)``, mixed numbers ``23(1/3)`` (= 23 + 1/3),
    percents ``93.75%`` (kept as a percent) and small expressions ``160/(1-20%)``, which
    are evaluated exactly -> ``$\\frac{70}{3}$``, ``$93.75\\%$``, ``$200$``.
``latex``
    LaTeX answer text (LIMO, xVerify): trailing full stops removed, a numeric value with a
    CJK unit reduced to the number, wrapped in ``$...$`` unless already delimited.
``auto``
    Sniff one of the above from the text.

Free-text golds that are not maths (``浅红 (浅粉)``) are returned as plain text: Math-Verify
will not parse them, so they reach the judge together with the reference.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from dagster_project.lib.text import to_halfwidth
from dagster_project.lib.verify.answer import CJK, iter_boxed, last_boxed, strip_cjk_unit

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

TRUE_TEXT, FALSE_TEXT = "正确", "错误"
_TRUE_WORDS = {"对", "正确", "√", "✓", "✔", "是", "T", "TRUE", "YES", "Y"}
_FALSE_WORDS = {"错", "错误", "×", "✗", "✘", "X", "否", "F", "FALSE", "NO", "N", "不正确"}

_NUMBER = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(rf"^(?P<num>{_NUMBER})(?:/(?P<den>\d+))?\s*(?P<pct>\\?%)?$")
_LETTERS_RE = re.compile(r"^[(\[（]?\s*([A-J](?:\s*[,，、\s和及]?\s*[A-J])*)\s*[)\]）]?[.。．]?$")
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_TAIL_PATTERNS = (
    re.compile(r"(?:因此|所以|故)?答案(?:为|是)\s*[:：]\s*(?P<ans>.+?)\s*$", re.DOTALL),
    re.compile(r"本题(?:正确)?(?:选项)?(?:选|为|是)\s*[:：]?\s*(?P<ans>[A-Ja-j]+(?:\s*[、,，]\s*[A-Ja-j])*)"),
    re.compile(r"正确(?:选项|答案)(?:为|是)\s*[:：]?\s*(?P<ans>\$?[^。\n]*?[A-J]+[^。\n]*?\$?)\s*[。.]?\s*$"),
    re.compile(r"故\s*[(（]?(?P<ans>[A-J]+)[)）]?\s*项正确"),
    re.compile(r"选项\s*(?P<ans>[A-J]+)\s*正确"),
    re.compile(r"故选\s*[:：]?\s*[(（]?(?P<ans>[A-J]+)[)）]?"),
    re.compile(r"(?:选择|选)\s*[:：]?\s*[(（]?(?P<ans>[A-J]+)[)）]?\s*[。.]?\s*$"),
)
_MAGNITUDES = {"万亿": 10**12, "亿": 10**8, "万": 10**4, "千": 10**3, "百": 100}
# 3万, 1.5亿元, 2千 (but 2千米 is a length: the unit may not start with a unit character)
_MAGNITUDE_NUMBER = re.compile(
    rf"^(?P<num>{_NUMBER})\s*(?P<mag>万亿|亿|万|千|百)(?![米克瓦焦帕伏卡赫])[{CJK}]*$"
)
_APE_MIXED = re.compile(r"(\d+)\((\d+)/(\d+)\)")
_TRAILING_STOPS = "．。.，,；; "


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

    Text that is not a plain number (``3万``) falls back to :func:`gold_from_latex`.
    """
    return _plain_number(text) or (gold_from_latex(text) if re.search(r"\d", text) else None)


def _plain_number(text: str) -> str | None:
    """The strict part of :func:`gold_from_number`: None unless the text is one number."""
    value = to_halfwidth(text).replace("−", "-").strip().rstrip(_TRAILING_STOPS)
    scaled = _MAGNITUDE_NUMBER.match(value)
    if scaled:
        number = Fraction(scaled.group("num").replace(",", "")) * _MAGNITUDES[scaled.group("mag")]
        return _fraction_to_latex(number, prefer_decimal=True)
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
    key = to_halfwidth(text).strip().strip("$()（）。. ").upper()
    if key in _TRUE_WORDS:
        return TRUE_TEXT
    if key in _FALSE_WORDS:
        return FALSE_TEXT
    return None


def gold_from_cqia_tail(text: str) -> str | None:
    """The answer stated at the end of a COIG-CQIA exam output."""
    tail = text.strip()[-300:]
    for pattern in _TAIL_PATTERNS:
        matches = list(pattern.finditer(tail))
        if not matches:
            continue
        answer = matches[-1].group("ans").strip()
        answer = answer.splitlines()[0].strip() if answer else answer
        if not answer:
            continue
        return gold_from_letters(answer) or gold_from_auto(answer, allow_tail=False)
    return None


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
    if re.search(rf"[{CJK}]", value) and "\\" not in value and "$" not in value:
        return _plain_number(value) or value  # Chinese text: a judge-only reference
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
