"""Rule check of one completion against one normalized gold.

`check_one(gold, answer)`:

1. reads the gold into a form (`reading.read_gold`): option letters, statement numbers,
   true/false, or mathematical parts; free text cannot be checked by rule;
2. finds the final answer of the answer part (`answer.find_final_answer`) and reads it in the
   gold's form (`reading.read_answer`);
3. compares: letters and statements as sets (statements in order when the gold's order is
   not ascending), true/false by value, and every mathematical part with Math-Verify
   (``parse`` + ``verify``, gold first). Multi-part answers are compared part by part.

Statuses:

``correct`` / ``incorrect``  decided (``method`` says how: ``math_verify``, ``math_verify_parts``,
                             ``option_set``, ``statement_set``, ``statement_sequence``, ``true_false``,
                             ``duration``).
``unextractable``            not decided, with the reason in ``error``: the gold or the answer
                             cannot be read, or a rule is not sure (a magnitude the question may
                             imply, parts in another order, a missing condition...). -> the judge.
``timeout`` / ``error``      Math-Verify's own timeout fired / anything else raised.

Must run in a process's main thread: Math-Verify's timeouts use SIGALRM. Timeouts are
whole seconds because ``signal.alarm`` silently ignores floats.
"""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from typing import NamedTuple

import sympy
from latex2sympy2_extended import NormalizationConfig
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException

from dagster_project.lib.verify.answer import Extracted, final_answer, find_final_answer
from dagster_project.lib.verify.reading import Part, Reading, read_answer, read_gold

# Bumped whenever a change can alter a verdict: cached results of another version are redone.
VERIFIER_VERSION = "2"
MAX_TEXT = 300
MAX_PARTS = 12

GOLD_EXTRACTION = (LatexExtractionConfig(), ExprExtractionConfig())
PREDICTION_EXTRACTION = (
    LatexExtractionConfig(
        boxed_match_priority=0,
        try_extract_without_anchor=False,
        normalization_config=NormalizationConfig(
            basic_latex=True,
            units=True,
            malformed_operators=True,
            nits=True,
            boxed="all",
            equations=False,
        ),
    ),
)


class CheckResult(NamedTuple):
    status: str
    extracted_answer: str | None  # the text taken as the final answer (box contents or a phrase's value)
    parsed_gold: str | None       # the gold as compared
    error: str | None             # why not decided, or what failed
    parsed_answer: str | None = None  # the answer as compared
    method: str | None = None         # how it was decided
    answer_source: str | None = None  # box | boxes | phrase | whole | ambiguous | none
    rules: str | None = None          # rewrites applied to either side, comma-separated


class _Undecided(Exception):
    """A rule is not sure: route to the judge with this reason."""


def check_one(gold: str, answer: str, parse_timeout_s: int = 5, verify_timeout_s: int = 5) -> CheckResult:
    """Verify ``answer`` (a full completion or its final part) against a normalized ``gold``."""
    parse_timeout_s = _whole_seconds(parse_timeout_s)
    verify_timeout_s = _whole_seconds(verify_timeout_s)
    g = read_gold(gold)
    extracted = find_final_answer(final_answer(answer))
    shown = _cut(extracted.shown)
    base = {"extracted_answer": shown, "parsed_gold": _cut(g.shown()), "answer_source": extracted.source}
    if g.kind == "unreadable":
        return CheckResult("unextractable", error=f"gold: {g.why}", **base)
    if extracted.source in ("none", "ambiguous"):
        return CheckResult("unextractable", error=extracted.why, **base)
    if g.kind == "math" and extracted.unit_after:  # "\\boxed{7} 万美元": the unit belongs to the answer
        extracted = replace(extracted, texts=(extracted.texts[0] + " " + extracted.unit_after,))
        base["extracted_answer"] = _cut(extracted.shown)
    a = read_answer(extracted.texts, g)
    if g.kind == "math" and a.kind == "math" and len(a.parts) < len(g.parts) and extracted.siblings:
        extracted, a = _with_siblings(extracted, a, g)
        base["extracted_answer"], base["answer_source"] = _cut(extracted.shown), extracted.source
    base["parsed_answer"] = _cut(a.shown())
    rules = ",".join(dict.fromkeys((*g.rules, *a.rules))) or None
    if a.kind == "unreadable":
        return CheckResult("unextractable", error=f"answer: {a.why}", rules=rules, **base)
    mv = _MathVerify(parse_timeout_s, verify_timeout_s)
    try:
        ok, method = _compare(g, a, extracted, mv)
    except _Undecided as why:
        return CheckResult("unextractable", error=str(why), rules=_join(rules, mv.rules), **base)
    except TimeoutException as exc:
        return CheckResult("timeout", error=f"math-verify timeout: {str(exc)[:MAX_TEXT]}", **base)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a per-item error
        return CheckResult("error", error=f"{type(exc).__name__}: {str(exc)[:MAX_TEXT]}", **base)
    return CheckResult("correct" if ok else "incorrect", error=None, method=method,
                       rules=_join(rules, mv.rules), **base)


def _with_siblings(extracted: Extracted, a: Reading, g: Reading) -> tuple[Extracted, Reading]:
    """One box per part (``甲需要 \\boxed{20} 分钟，乙需要 \\boxed{30} 分钟``): the last boxes of the
    paragraph that give as many parts as the gold has; unchanged if no such run exists."""
    for k in range(1, len(extracted.siblings) + 1):
        texts = (*extracted.siblings[-k:], *extracted.texts)
        reading = read_answer(texts, g)
        if reading.kind == "math" and len(reading.parts) == len(g.parts):
            return replace(extracted, source="boxes", texts=texts), reading
        if reading.kind != "math" or len(reading.parts) > len(g.parts):
            break
    return extracted, a


def _compare(g: Reading, a: Reading, extracted: Extracted, mv: _MathVerify) -> tuple[bool, str]:
    if g.kind == "letters":
        if a.letters != g.letters and extracted.siblings:
            spread = read_answer((*extracted.siblings, *extracted.texts), g)
            if spread.kind == "letters" and g.letters <= spread.letters:
                raise _Undecided("the letters are spread over several boxes (some may be excluded options)")
        return a.letters == g.letters, "option_set"
    if g.kind == "truth":
        return a.truth == g.truth, "true_false"
    if g.kind == "statements":
        return _compare_statements(g.statements, a.statements)
    return _compare_math(g, a, extracted, mv)


def _compare_statements(gold: tuple[int, ...], answer: tuple[int, ...]) -> tuple[bool, str]:
    if len(set(answer)) != len(answer):
        raise _Undecided("a statement named twice in the answer")
    if list(gold) != sorted(gold):  # an ordering question: (2)(1)(3)
        return tuple(answer) == tuple(gold), "statement_sequence"
    if set(answer) == set(gold) and list(answer) != sorted(answer):
        raise _Undecided("the statements are listed in another order than the gold's")
    return set(answer) == set(gold), "statement_set"


def _compare_math(g: Reading, a: Reading, extracted: Extracted, mv: _MathVerify) -> tuple[bool, str]:
    G, A = g.parts, a.parts
    if max(len(G), len(A)) > MAX_PARTS:
        raise _Undecided(f"more than {MAX_PARTS} parts")
    if extracted.source == "boxes" and len(G) == 1 and len(A) > 1 and not _structured(G[0]):
        raise _Undecided("several boxed answers for a one-part gold")
    if len(G) == len(A):
        cells: dict[tuple[int, int], bool | None] = {}

        def cell(i: int, j: int) -> bool | None:
            if (i, j) not in cells:
                cells[i, j] = _compare_parts(G[i], A[j], mv)
            return cells[i, j]

        ordered = [cell(i, i) for i in range(len(G))]
        if all(r is True for r in ordered):
            return True, "duration" if _any_duration(G, A) else ("math_verify_parts" if len(G) > 1 else "math_verify")
        if len(G) == 1:
            if ordered[0] is None:
                raise _Undecided(mv.last_doubt or "a rule is not sure")
            return False, "duration" if _any_duration(G, A) else "math_verify"
        grid = [[cell(i, j) for j in range(len(A))] for i in range(len(G))]
        if _matching(grid, accept=(True,)):
            if g.joiner == "or" or (all(p.label for p in G) and all(p.label for p in A)):
                return True, "math_verify_parts"
            raise _Undecided("the parts match in another order")
        if all(r is not False for r in ordered) or _matching(grid, accept=(True, None)):
            raise _Undecided(mv.last_doubt or "a rule is not sure about a part")
        return False, "math_verify_parts"
    # different numbers of parts
    single = G[0] if len(G) == 1 else (A[0] if len(A) == 1 else None)
    if single is not None and _structured(single):
        if mv.equal(_joined(g), _joined(a)):
            return True, "math_verify"
        raise _Undecided("a tuple, set or interval against a list of parts")
    if not (all(mv.is_value(p.latex, gold=True) for p in G) and all(mv.is_value(p.latex, gold=False) for p in A)):
        raise _Undecided(f"{len(G)} part(s) in the gold, {len(A)} in the answer")
    if len(A) < len(G):
        grid = [[_compare_parts(g_part, a_part, mv) for g_part in G] for a_part in A]
        if _matching(grid, accept=(True, None)):  # every answer part is one of the gold's
            raise _Undecided("the answer gives only some of the gold's parts (incomplete, or one of several answers)")
    return False, "math_verify_parts"


def _matching(grid, accept: tuple) -> bool:
    """Every row gets its own column whose cell is in ``accept`` (rows <= columns)."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j in range(len(grid[i])):
            if j not in seen and grid[i][j] in accept:
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(grid)))


def _compare_parts(g: Part, a: Part, mv: _MathVerify) -> bool | None:
    """True / False, or None when a rule is not sure (``mv.last_doubt`` says why)."""
    if g.seconds is not None or a.seconds is not None:
        return _compare_durations(g, a, mv)
    if g.unit and a.unit and _unit_key(g.unit) != _unit_key(a.unit):
        mv.doubt(f"different units ({g.unit} / {a.unit})")
        return None
    if not mv.equal(g.latex, a.latex):
        if (g.alt is None) != (a.alt is None) and mv.equal(g.alt or g.latex, a.alt or a.latex):
            mv.doubt("the numbers agree without the magnitude (万/亿): the question may imply it")
            return None
        if (g.unit or a.unit) and _power_of_ten_apart(mv.number(g.latex, gold=True), mv.number(a.latex, gold=False)):
            mv.doubt("the values differ by a power of ten and a unit is written: maybe another unit")
            return None
        return False
    if g.condition or a.condition:
        if g.condition and a.condition and (_squash(g.condition) == _squash(a.condition)
                                            or mv.equal(g.condition, a.condition)):
            return True
        mv.doubt("the condition differs or is missing")
        return None
    return True


def _compare_durations(g: Part, a: Part, mv: _MathVerify) -> bool | None:
    if g.seconds is not None and a.seconds is not None:
        return g.seconds == a.seconds
    timed, plain = (g, a) if g.seconds is not None else (a, g)
    value = mv.number(plain.latex, gold=plain is g)
    if value is None:
        mv.doubt("a duration against a value that is not a number")
        return None
    if any(value == timed.seconds / unit for unit in timed.time_units):
        return True
    if any(value == timed.seconds / unit for unit in (86400, 3600, 60, 1)):
        mv.doubt("the duration matches only in a unit it was not written in")
        return None
    return False


def _power_of_ten_apart(x: Fraction | None, y: Fraction | None) -> bool:
    if not x or not y:
        return False
    ratio = abs(x / y)
    for _ in range(13):
        if ratio in (10, Fraction(1, 10)):
            return True
        ratio = ratio / 10 if ratio > 1 else ratio * 10
    return False


def _any_duration(G, A) -> bool:
    return any(p.seconds is not None for p in (*G, *A))


def _structured(part: Part) -> bool:
    """A tuple, set, interval or system written as one part: ``(1,1)``, ``\\{1,2\\}``, ``[1,2)``."""
    return bool(re.match(r"^\s*(?:\\left)?\s*[(\[{]|^\s*\\\{", part.latex)) and "," in part.latex


def _joined(reading: Reading) -> str:
    return ",".join(p.latex for p in reading.parts)


def _unit_key(unit: str) -> str:
    return re.sub(r"\s|\\,", "", unit).lower()


def _squash(text: str) -> str:
    return re.sub(r"\s", "", text)


def _join(first: str | None, more: list[str]) -> str | None:
    names = [*(first.split(",") if first else []), *more]
    return ",".join(dict.fromkeys(names)) or None


def _cut(text: str | None) -> str | None:
    return text[:MAX_TEXT] if text is not None else None


def _whole_seconds(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TypeError(f"timeouts must be positive whole seconds (signal.alarm), got {value!r}")
    return value


class _MathVerify:
    """Math-Verify calls for one check: parses cached per side, doubts recorded for the result."""

    def __init__(self, parse_timeout_s: int, verify_timeout_s: int) -> None:
        self.parse_timeout_s = parse_timeout_s
        self.verify_timeout_s = verify_timeout_s
        self.cache: dict[tuple[str, bool], list] = {}
        self.rules: list[str] = []
        self.last_doubt: str | None = None

    def doubt(self, why: str) -> None:
        self.last_doubt = why

    def parsed(self, latex: str, *, gold: bool) -> list:
        key = (latex, gold)
        if key not in self.cache:
            if gold:
                found = parse(f"${latex}$", list(GOLD_EXTRACTION), parsing_timeout=self.parse_timeout_s,
                              raise_on_error=True)
            else:
                found = parse(f"\\boxed{{{latex}}}", list(PREDICTION_EXTRACTION), fallback_mode="no_fallback",
                              parsing_timeout=self.parse_timeout_s, raise_on_error=True)
            if not any(isinstance(x, (sympy.Basic, sympy.MatrixBase)) for x in found):
                raise _Undecided(f"Math-Verify cannot read the {'gold' if gold else 'answer'} part {_describe(latex)}")
            self.cache[key] = found
        return self.cache[key]

    def equal(self, gold_latex: str, answer_latex: str) -> bool:
        return verify(self.parsed(gold_latex, gold=True), self.parsed(answer_latex, gold=False),
                      timeout_seconds=self.verify_timeout_s, allow_set_relation_comp=True, raise_on_error=True)

    def number(self, latex: str, *, gold: bool) -> Fraction | None:
        try:
            expr = self.parsed(latex, gold=gold)[0]
        except _Undecided:
            return None
        if isinstance(expr, sympy.Number) and expr.is_rational:
            return Fraction(int(expr.p), int(expr.q))
        if isinstance(expr, sympy.Float):
            return Fraction(str(expr)).limit_denominator(10**9)
        return None

    def is_value(self, latex: str, *, gold: bool) -> bool:
        """A plain number or ``label = number``: something that cannot hide another part."""
        try:
            expr = self.parsed(latex, gold=gold)[0]
        except _Undecided:
            return False
        if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol):
            expr = expr.rhs
        return isinstance(expr, sympy.Expr) and not expr.free_symbols


def _describe(latex: str) -> str:
    return repr(latex[:80])
