"""Read one answer value (a box's content, a phrase's value, a normalized gold) into a form.

A `Reading` is one of

``letters``     option letters, compared as a set (``C``, ``A、C``, ``\\text{(B)}``, ``选C``);
``statements``  statement numbers (``(1)(3)(4)``, ``①③④``; on the answer side also ``1,3,4``);
``truth``       true/false (正确/错误, 对/错, √/×);
``math``        one or more `Part`s that Math-Verify compares (``16，17`` is two parts, ``1或2``
                two alternatives, ``\\{1,2\\}`` one set);
``unreadable``  anything else (free text, a hedge such as ``A或B``): the row goes to the judge.

Rewrites done here, each named in ``Reading.rules`` so a stored verdict says what happened:
full-width characters folded (``lib.text.to_halfwidth``), units split off (``\\text{12元}`` ->
``12`` + ``元``), magnitudes (``3\\text{万}`` -> ``30000``, remembering the ``3``), durations
(``3小时30分`` -> 12600 s), thin-space thousands (``1\\,000``), trailing conditions
(``...=1 (y>0)``). How an answer is read depends on the gold's form (`read_answer`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

from dagster_project.lib.text import strip_invisible, to_halfwidth

CJK = "\u4e00-\u9fff"
TRUE_TEXT, FALSE_TEXT = "正确", "错误"

_TRUE_WORDS = {"对", "正确", "√", "✓", "✔", "\\checkmark", "\\surd", "是", "真", "T", "TRUE", "YES", "Y"}
_FALSE_WORDS = {"错", "错误", "×", "✗", "✘", "\\times", "否", "假", "F", "FALSE", "NO", "N", "不正确", "不对"}
# "该说法错误", "这个命题是正确的": the judgement word with a subject around it.
_TRUTH_FRAME = re.compile(
    r"^(?:判断|结论)?\s*(?:为|是)?\s*:?\s*(?:该|这个|这一|此|原|题干(?:的)?|题目(?:的)?)?(?:说法|命题|观点|判断|结论|表述|论断)?(?:是)?"
    r"(?P<word>.+?)(?:的)?$"
)

_CIRCLED = {chr(0x2460 + i): i + 1 for i in range(20)}  # ① .. ⑳
_STATEMENT = r"(?:\(\s*\d{1,2}\s*\)|[①-⑳]|\\textcircled\{\d{1,2}\})"
_STATEMENT_LIST = re.compile(rf"^{_STATEMENT}(?:\s*(?:[,;]|和|及|与)?\s*{_STATEMENT})*$")
_PLAIN_STATEMENTS = re.compile(r"^\d{1,2}(?:\s*(?:[,;]|和|及|与)\s*\d{1,2})+$")

_LETTER_LIST = re.compile(
    r"^(?:选项|选|答案)?\s*[(\[【]?\s*(?P<letters>[A-J](?:\s*(?:[,;]|和|及|与)?\s*[A-J])*)\s*[)\]】]?\s*(?:选项|项)?$"
)
_LETTER_WITH_TEXT = re.compile(r"^(?:选项|选)?\s*[(\[【]?\s*(?P<letter>[A-J])\s*[)\]】]?\s*(?:[.:,]|项|选项)\s*\S")
_LETTER_PAREN_TEXT = re.compile(r"^[(\[【]\s*(?P<letter>[A-J])\s*[)\]】]\s*\S")
_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|mbox|textrm|operatorname|boldsymbol)\s*\{(?P<inner>.*)\}$", re.S)

_NUMBER = r"-?\d+(?:\.\d+)?"
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?=\D*$)")
_MAGNITUDES = {"万亿": 10**12, "千万": 10**7, "百万": 10**6, "亿": 10**8, "万": 10**4, "千": 10**3, "百": 100}
_MAGNITUDE = re.compile(
    rf"^(?P<num>{_NUMBER})\s*(?:\\(?:text|mathrm|mbox)\s*\{{\s*)?(?P<mag>万亿|千万|百万|亿|万|千|百)"
    rf"(?![米克瓦焦帕伏卡赫])(?P<unit>[^{{}}]*?)\s*\}}?\s*(?P<unit2>[^{{}}\d]*)$"
)
_TIME_UNITS = {"天": 86400, "日": 86400, "小时": 3600, "个小时": 3600, "时": 3600, "分钟": 60, "分": 60,
               "秒钟": 1, "秒": 1, "h": 3600, "min": 60, "s": 1}
_DURATION_PART = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<u>个小时|小时|分钟|秒钟|天|时|分|秒)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?\s*(?:个小时|小时|分钟|秒钟|天|时|分|秒)\s*){2,}$")
_TEXT_GROUP = r"\\(?:text|mathrm|mbox|textrm)\s*\{[^{}]*\}"
# a value followed by its unit: CJK words (米, 千米/小时), or \text{...}/\mathrm{...} groups
_VALUE_UNIT = re.compile(
    rf"^(?P<value>[^{CJK}]*?[\d}}).%])\s*(?P<unit>(?:\s*{_TEXT_GROUP})+|\(?[{CJK}℃]+(?:\s*/\s*[{CJK}]+)?\)?(?:\s*{_TEXT_GROUP})*)$"
)
_TEXT_VALUE_UNIT = re.compile(rf"^\\(?:text|mathrm|mbox)\s*\{{\s*(?P<value>{_NUMBER})\s*(?P<unit>[{CJK}a-zA-Z/ ]+)\}}$")
# words that make the text after a number a sentence, not a unit ("42 吗", "3 或 4", "5 是")
NOT_UNIT = re.compile(r"[吗呢吧啊呀了的是不或和与及且就都也还再又但而则即所故这那此其它他她我你您们有没无为在把被对错]")
_RELATION = re.compile(r"[<>]|\\(?:neq|ne|leq|le|geq|ge|lt|gt)(?![a-zA-Z])|≠|≤|≥")
_CONDITION = re.compile(r"^(?P<body>.*[^\s(])\s*\((?P<cond>[^()]*)\)$")
_LABELLED = re.compile(r"^\s*(?P<label>[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?(?:\([A-Za-z0-9]\))?)\s*=\s*(?P<rest>[^=]+)$")

_SYMBOLS = str.maketrans({
    "、": ",", "；": ";", "−": "-", "–": "-", "—": "-", "·": "\\cdot ", "÷": "\\div ", "≤": "\\le ", "≥": "\\ge ",
    "≠": "\\ne ", "∞": "\\infty ", "π": "\\pi ", "²": "^2", "³": "^3", "°": "^{\\circ}", "∪": "\\cup ",
    "∩": "\\cap ", "∈": "\\in ", "【": "[", "】": "]", "〔": "(", "〕": ")", "“": "", "”": "",
})
_SQRT = re.compile(r"√\s*(\{[^{}]*\}|\d+(?:\.\d+)?|[A-Za-z])")  # √2, 2√3 -> \sqrt{2}, 2\sqrt{3}
_SEPARATOR_WORDS = re.compile(r"\\(?:text|mathrm|mbox)\s*\{\s*(或|和|及|与|且|or|and)\s*\}|\\q?quad")


@dataclass(frozen=True)
class Part:
    """One value Math-Verify compares, plus what rules learned about it."""

    latex: str
    alt: str | None = None            # magnitude answers: the number as written (3 for 3万)
    unit: str | None = None           # the unit written after the value, if any
    condition: str | None = None      # ``(y>0)`` after an equation
    seconds: Fraction | None = None   # durations and values with a time unit
    time_units: tuple[int, ...] = ()  # the time units written, in seconds (3600, 60 for 3小时30分)
    label: str | None = None          # ``a`` for ``a=-1``

    def shown(self) -> str:
        text = self.latex
        if self.alt is not None:
            text += f" (written {self.alt})"
        if self.unit:
            text += f" [{self.unit}]"
        if self.condition:
            text += f" ({self.condition})"
        if self.seconds is not None and not self.unit:
            text += f" [{self.seconds}s]"
        return text


@dataclass(frozen=True)
class Reading:
    kind: str                        # letters | statements | truth | math | unreadable
    letters: frozenset[str] = frozenset()
    statements: tuple[int, ...] = ()
    truth: bool | None = None
    parts: tuple[Part, ...] = ()
    joiner: str = ""                 # math: "or" (alternatives), "and", "," or "" (one part)
    rules: tuple[str, ...] = ()
    why: str | None = None           # unreadable: why

    def shown(self) -> str:
        if self.kind == "letters":
            return "{" + ", ".join(sorted(self.letters)) + "}"
        if self.kind == "statements":
            return "".join(f"({n})" for n in self.statements)
        if self.kind == "truth":
            return TRUE_TEXT if self.truth else FALSE_TEXT
        if self.kind == "math":
            sep = {"or": " | or | ", "and": " | and | "}.get(self.joiner, " | ")
            return sep.join(p.shown() for p in self.parts)
        return f"<unreadable: {self.why}>"


def unreadable(why: str, rules: tuple[str, ...] = ()) -> Reading:
    return Reading("unreadable", why=why, rules=rules)


# ----------------------------------------------------------------------------- cleaning


def fold(text: str) -> str:
    """Full-width -> ASCII (lib.text), CJK punctuation and maths symbols -> LaTeX-ish ASCII."""
    folded = strip_invisible(to_halfwidth(text)).translate(_SYMBOLS)
    folded = re.sub(r"(?<=\d)。(?=\d)", ".", folded)  # 0。5: a full stop typed as a decimal point
    return folded.replace("。", " ").strip()


def strip_markup(text: str) -> str:
    """Remove $ delimiters, \\( \\), bold marks, \\displaystyle, outer wrappers and trailing stops."""
    t = text.strip()
    t = re.sub(r"(?<!\\)\$+", " ", t)
    t = re.sub(r"\\[()\[\]]", " ", t)
    t = t.replace("**", " ").replace("\\displaystyle", " ").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    t = re.sub(r"\\[,;!: ]|~", " ", t)
    t = t.strip()
    while True:
        m = _WRAPPER.match(t)
        if not m or not _balanced(m.group("inner")):
            break
        t = m.group("inner").strip()
    return t.strip(" .,;:").strip()


def _balanced(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch in "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


# ----------------------------------------------------------------------------- the forms


def read_truth(text: str) -> bool | None:
    """对/错 style value -> True/False; None when it is not one."""
    t = strip_markup(fold(text)).strip("()[] ")
    for candidate in (t, (_TRUTH_FRAME.match(t) or {"word": t})["word"] if t else t):
        key = candidate.strip().upper() if candidate else ""
        if key in _TRUE_WORDS or key.lower() in _TRUE_WORDS:
            return True
        if key in _FALSE_WORDS or key.lower() in _FALSE_WORDS:
            return False
    return None


def read_letters(text: str, *, lowercase: bool = True) -> frozenset[str] | None:
    """Option letters in any common form; None when the text is not (only) option letters.

    ``A或B`` is a hedge, not an answer: None. ``C. 1-i`` (a letter and its option text) -> {C}.
    """
    t = strip_markup(fold(text))
    t = re.sub(_TEXT_GROUP, lambda m: m.group(0)[m.group(0).index("{") + 1 : -1], t).strip()
    if "或" in t or re.search(r"\bor\b", t):
        return None
    candidate = t.upper() if lowercase and re.fullmatch(r"[a-j]|[a-j](?:\s*[,、]\s*[a-j])+", t) else t
    m = _LETTER_LIST.match(candidate)
    if m:
        return frozenset(re.findall(r"[A-J]", m.group("letters")))
    for pattern in (_LETTER_WITH_TEXT, _LETTER_PAREN_TEXT):
        m = pattern.match(candidate)
        if m:
            return frozenset(m.group("letter"))
    return None


def read_statements(text: str, *, plain_numbers: bool) -> tuple[int, ...] | None:
    """``(1)(3)(4)``, ``①③④`` (and ``1,3,4`` when ``plain_numbers``) -> (1, 3, 4) in written order."""
    t = strip_markup(fold(text)).replace("(", "(").replace(")", ")")
    t = re.sub(r"（\s*(\d{1,2})\s*）", r"(\1)", t)
    if _STATEMENT_LIST.match(t):
        numbers = []
        for token in re.findall(_STATEMENT, t):
            digits = re.search(r"\d+", token)
            numbers.append(int(digits.group()) if digits else _CIRCLED[token])
        return tuple(numbers)
    if plain_numbers and _PLAIN_STATEMENTS.match(t):
        return tuple(int(n) for n in re.findall(r"\d+", t))
    return None


def read_math(text: str, *, expect_parts: int | None = None) -> Reading:
    """Split a value into `Part`s at top-level separators and apply the rewrites on each part."""
    rules: list[str] = []
    t = fold(text)
    if t != text.strip():
        rules.append("fold")
    thin = re.sub(r"(?<=\d)(?:\\,|\\ |\{,\}|\\;)(?=\d{3}(?!\d))", "", t)  # 1\,000, 2{,}125
    if thin != t:
        t = thin
        rules.append("thousands")
    t = strip_markup(t)
    t = _SEPARATOR_WORDS.sub(lambda m: f" {m.group(1) or ','} ", t)
    t = _SQRT.sub(lambda m: "\\sqrt{" + m.group(1).strip("{}") + "}", t).replace("×", "\\times ")
    if not t:
        return unreadable("empty")
    m = _THOUSANDS.match(t)
    if m and (expect_parts or 1) == 1:
        t = m.group().replace(",", "") + t[m.end():]
        rules.append("thousands")
    pieces, joiner = split_top_level(t)
    if pieces is None:
        return unreadable("unbalanced brackets", tuple(rules))
    parts: list[Part] = []
    for piece in pieces:
        part = read_part(piece, rules)
        if isinstance(part, str):
            return unreadable(part, tuple(rules))
        if (parts and "=" in parts[-1].latex and parts[-1].condition is None
                and not _RELATION.search(parts[-1].latex) and _is_condition_only(part.latex)):
            parts[-1] = replace(parts[-1], condition=part.latex)  # "…=1, y>0": the condition of the equation
            rules.append("condition")
            continue
        parts.append(part)
    if not parts:
        return unreadable("empty")
    return Reading("math", parts=tuple(parts), joiner=joiner if len(parts) > 1 else "", rules=tuple(dict.fromkeys(rules)))


def split_top_level(text: str) -> tuple[list[str] | None, str]:
    """Split at commas, semicolons and 或/和/及/与/or/and outside brackets; empty pieces dropped."""
    pieces, current, depth, joiners = [], [], 0, set()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return None, ""
        if depth == 0:
            word = _separator_at(text, i)
            if word:
                joiners.add({"或": "or", "or": "or", ",": ",", ";": ","}.get(word, "and"))
                pieces.append("".join(current))
                current = []
                i += len(word)
                continue
        current.append(ch)
        i += 1
    if depth != 0:
        return None, ""
    pieces.append("".join(current))
    pieces = [p.strip() for p in pieces if p.strip(" ,;")]
    joiner = "or" if "or" in joiners else ("and" if "and" in joiners else ("," if joiners else ""))
    return pieces, joiner


def _separator_at(text: str, i: int) -> str | None:
    ch = text[i]
    if ch in ",;":
        return ch
    if ch in "或和及与":
        return ch
    for word in ("or", "and"):
        if text.startswith(word, i) and (i == 0 or not text[i - 1].isalpha()) and not text[i + len(word): i + len(word) + 1].isalpha():
            return word
    return None


def _is_condition_only(latex: str) -> bool:
    """``y>0``, ``x \\ne 0``: a relation between one variable and a number."""
    return bool(re.fullmatch(r"\s*-?[a-zA-Z](?:_\{?\w+\}?)?\s*(?:[<>]=?|\\(?:neq|ne|leq|le|geq|ge|lt|gt))\s*-?[\d.]+\s*", latex)
                or re.fullmatch(r"\s*-?[\d.]+\s*(?:[<>]=?|\\(?:neq|ne|leq|le|geq|ge|lt|gt))\s*[a-zA-Z](?:_\{?\w+\}?)?\s*", latex))


def read_part(piece: str, rules: list[str]) -> Part | str:
    """One piece -> a `Part`; a string says why it cannot be read."""
    t = piece.strip()
    condition = None
    m = _CONDITION.match(t)
    if m and _RELATION.search(m.group("cond")) and not _RELATION.search(m.group("body")) and m.group("body").count("(") == m.group("body").count(")"):
        t, condition = m.group("body").strip(), m.group("cond").strip()
        rules.append("condition")
    plain = re.sub(_TEXT_GROUP, lambda g: g.group(0)[g.group(0).index("{") + 1 : -1], t).replace(" ", "")
    if _DURATION.match(plain):
        seconds, units = Fraction(0), []
        for n, u in _DURATION_PART.findall(plain):
            seconds += Fraction(n) * _TIME_UNITS[u]
            units.append(_TIME_UNITS[u])
        rules.append("duration")
        return Part(_fraction_latex(seconds / min(units)), seconds=seconds, time_units=tuple(units),
                    unit=plain, condition=condition)
    m = _MAGNITUDE.match(t)
    if m:
        full = Fraction(m.group("num")) * _MAGNITUDES[m.group("mag")]
        unit = _unit_text(m.group("unit") + m.group("unit2")) or None
        if unit and re.search(rf"[^{CJK}a-zA-Z/ ]", unit):
            return "text after a magnitude"
        rules.append("magnitude")
        return Part(_fraction_latex(full), alt=m.group("num"), unit=unit, condition=condition)
    unit = None
    m = _TEXT_VALUE_UNIT.match(t) or _VALUE_UNIT.match(t)
    if m and not re.search(rf"[{CJK}]", m.group("value")) and not NOT_UNIT.search(m.group("unit")):
        t, unit = m.group("value").strip(), _unit_text(m.group("unit"))
        rules.append("unit")
        mag = re.match(r"(万亿|千万|百万|亿|万|千|百)(?![米克瓦焦帕伏卡赫])", unit)
        if mag and re.fullmatch(_NUMBER, t):  # 3\text{万}\text{元}: a magnitude after all
            rules.append("magnitude")
            full = Fraction(t) * _MAGNITUDES[mag.group(1)]
            return Part(_fraction_latex(full), alt=t, unit=unit[mag.end():] or None, condition=condition)
    if re.search(rf"[{CJK}]", t):
        return "text, not a value"
    if not t or re.fullmatch(r"[\s.,;:]*", t):
        return "empty"
    t = re.sub(r"(?<!\\)%", r"\\%", t)
    label = None
    lm = _LABELLED.match(t)
    if lm and not _RELATION.search(t):
        label = re.sub(r"[{}\s]", "", lm.group("label"))
    seconds, time_units = None, ()
    if unit and unit in _TIME_UNITS and re.fullmatch(_NUMBER, t):
        seconds, time_units = Fraction(t) * _TIME_UNITS[unit], (_TIME_UNITS[unit],)
    return Part(t, unit=unit, condition=condition, seconds=seconds, time_units=time_units, label=label)


def _unit_text(unit: str) -> str:
    inner = re.sub(r"\\(?:text|mathrm|mbox|textrm)\s*\{([^{}]*)\}", r"\1", unit)
    return re.sub(r"\s+", "", inner).strip("()")


def _fraction_latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    if Fraction(text) == value:
        return text
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


# ----------------------------------------------------------------------------- gold and answer


_GOLD_LETTERS = re.compile(r"^\$?\s*([A-J]+)\s*\$?$")


def read_gold(gold: str) -> Reading:
    """A normalized gold (`lib.verify.gold.normalize_gold`) -> its form."""
    text = gold.strip()
    if text in (TRUE_TEXT, FALSE_TEXT):
        return Reading("truth", truth=text == TRUE_TEXT)
    m = _GOLD_LETTERS.match(text)
    if m:
        return Reading("letters", letters=frozenset(m.group(1)))
    statements = read_statements(text, plain_numbers=False)
    if statements:
        return Reading("statements", statements=statements)
    reading = read_math(text)
    if reading.kind == "math" and len(reading.parts) == 1 and re.fullmatch(r"[A-J]", reading.parts[0].latex):
        return Reading("letters", letters=frozenset(reading.parts[0].latex), rules=reading.rules)
    return reading


def read_answer(texts: tuple[str, ...], like: Reading) -> Reading:
    """The extracted answer text(s) read in the form of the gold ``like``."""
    if like.kind == "letters":
        found = [read_letters(t) for t in texts]
        if any(f is None for f in found):
            return unreadable("option gold, the answer is not option letters")
        return Reading("letters", letters=frozenset().union(*found))
    if like.kind == "statements":
        found = [read_statements(t, plain_numbers=True) for t in texts]
        if any(f is None for f in found):
            return unreadable("statement gold, the answer is not a statement list")
        return Reading("statements", statements=tuple(n for f in found for n in f))
    if like.kind == "truth":
        found = {read_truth(t) for t in texts}
        if None in found or len(found) != 1:
            return unreadable("true/false gold, the answer is not true or false")
        return Reading("truth", truth=found.pop())
    readings = [read_math(t, expect_parts=len(like.parts) if len(texts) == 1 else None) for t in texts]
    bad = next((r for r in readings if r.kind != "math"), None)
    if bad is not None:
        return bad
    parts = tuple(p for r in readings for p in r.parts)
    if len(parts) == 1 and re.fullmatch(r"[A-J]", parts[0].latex) and not re.fullmatch(r"[A-J]", like.parts[0].latex):
        return unreadable("an option letter against a value gold")
    joiner = readings[0].joiner if len(readings) == 1 else ("," if len(parts) > 1 else "")
    rules = tuple(dict.fromkeys(r for reading in readings for r in reading.rules))
    return Reading("math", parts=parts, joiner=joiner, rules=rules)
