"""Rule check of one completion against one gold answer with Math-Verify.

Statuses returned by :func:`check_one`:

``correct`` / ``incorrect``
    Both sides parsed to sympy objects and ``verify(gold, prediction)`` decided.
``unextractable``
    The gold or the prediction has no sympy object (no ``\\boxed{}``, ``\\boxed{3万}``,
    a 对/错 gold, a text gold, an option gold answered with a value...): send to the judge.
``timeout``
    Math-Verify's own (signal) timeout fired while parsing or comparing.
``error``
    Anything else raised.

Must run in a process's main thread: Math-Verify's timeouts use SIGALRM. Timeouts are
whole seconds because ``signal.alarm`` silently ignores floats.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import sympy
from latex2sympy2_extended import NormalizationConfig
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException
from math_verify.utils import timeout

from dagster_project.lib.verify.answer import iter_boxed, prepare_answer

MAX_TEXT = 300

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

_CHOICE_GOLD = re.compile(r"^\$\s*([A-J]+)\s*\$$")
_BOX_WITH_OPTION_TEXT = re.compile(r"^\s*\(?([A-J])\)?\s*[.．:：、]\s*\S")


class CheckResult(NamedTuple):
    status: str
    extracted_answer: str | None
    parsed_gold: str | None
    error: str | None


def check_one(gold: str, answer: str, parse_timeout_s: int = 5, verify_timeout_s: int = 5) -> CheckResult:
    """Verify ``answer`` (a full completion or its final part) against a normalized ``gold``."""
    parse_timeout_s = _whole_seconds(parse_timeout_s)
    verify_timeout_s = _whole_seconds(verify_timeout_s)
    prediction_text = prepare_answer(answer)
    extracted = _last_box(prediction_text)
    try:
        gold_parsed = parse(
            gold, list(GOLD_EXTRACTION), parsing_timeout=parse_timeout_s, raise_on_error=True
        )
        gold_text = _describe(gold_parsed, parse_timeout_s)
        if not _has_sympy(gold_parsed):
            return CheckResult("unextractable", extracted, gold_text, "gold has no sympy form")

        choice = _CHOICE_GOLD.match(gold.strip())
        if choice:
            prediction_text = _option_letter_only(prediction_text)
            extracted = _last_box(prediction_text)

        pred_parsed = parse(
            prediction_text,
            list(PREDICTION_EXTRACTION),
            fallback_mode="no_fallback",
            parsing_timeout=parse_timeout_s,
            raise_on_error=True,
        )
        if not _has_sympy(pred_parsed):
            return CheckResult("unextractable", extracted, gold_text, "no parseable boxed answer")
        if extracted is None:
            extracted = _describe(pred_parsed, parse_timeout_s)

        if choice:
            predicted = _letters_of(pred_parsed[0])
            if predicted is None:
                return CheckResult("unextractable", extracted, gold_text, "option gold, answer is not a letter")
            status = "correct" if predicted == set(choice.group(1)) else "incorrect"
            return CheckResult(status, extracted, gold_text, None)

        ok = verify(gold_parsed, pred_parsed, timeout_seconds=verify_timeout_s, raise_on_error=True)
        return CheckResult("correct" if ok else "incorrect", extracted, gold_text, None)
    except TimeoutException as exc:
        return CheckResult("timeout", extracted, None, f"math-verify timeout: {str(exc)[:MAX_TEXT]}")
    except Exception as exc:  # noqa: BLE001 - any parser failure is a per-item error
        return CheckResult("error", extracted, None, f"{type(exc).__name__}: {str(exc)[:MAX_TEXT]}")


def _whole_seconds(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TypeError(f"timeouts must be positive whole seconds (signal.alarm), got {value!r}")
    return value


def _has_sympy(parsed: list) -> bool:
    return any(isinstance(x, (sympy.Basic, sympy.MatrixBase)) for x in parsed)


def _last_box(text: str) -> str | None:
    found = None
    for _, _, content in iter_boxed(text):
        found = content
    return found[:MAX_TEXT] if found is not None else None


def _describe(parsed: list, seconds: int) -> str | None:
    """Readable form of a parse result without risking a hang on huge sympy objects."""
    for item in parsed:
        if isinstance(item, str):
            return item[:MAX_TEXT]
    if not parsed:
        return None
    try:
        return timeout(seconds)(str)(parsed[0])[:MAX_TEXT]
    except (TimeoutException, Exception):  # noqa: BLE001
        return "<unprintable>"


def _option_letter_only(text: str) -> str:
    """``\\boxed{C. 1-i}`` -> ``\\boxed{C}`` for option golds (the letter is the answer)."""
    boxes = list(iter_boxed(text))
    if not boxes:
        return text
    start, end, content = boxes[-1]
    m = _BOX_WITH_OPTION_TEXT.match(content)
    return text[:start] + m.group(1) + text[end:] if m else text


def _letters_of(expr) -> set[str] | None:
    """Option letters of a parsed prediction (``c``, ``a*c``, ``{a, c}``); None if not letters."""
    if expr is sympy.E:
        return {"E"}
    if expr is sympy.I:
        return {"I"}
    if isinstance(expr, sympy.Symbol):
        name = expr.name.upper()
        return {name} if re.fullmatch(r"[A-J]", name) else None
    if isinstance(expr, (sympy.Mul, sympy.FiniteSet, sympy.Tuple)):
        letters: set[str] = set()
        for arg in expr.args:
            inner = _letters_of(arg)
            if inner is None:
                return None
            letters |= inner
        return letters
    return None
