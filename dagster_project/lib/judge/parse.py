"""Read scores and verdicts out of judge replies, however messy.

Order of attempts for a score (the first method that finds something decides):

1. the last JSON object (``` fences stripped; single-quoted AlignBench-style dicts too)
   with a key ``score``/``综合得分``/``总分``/``最终得分``/``overall``;
2. ``[[x]]``;
3. ``综合得分|总分|最终得分: x`` then ``得分|评分|分数|score|rating: x`` (``:``, ``：`` or ``=``);
4. ``x/10``;
5. ``x分`` (not ``满分10分``, not the upper end of a range ``1-10分``);
6. a reply that is only a number.

Full-width digits and colons are normalized first. A value outside 0-10 gives None:
a score is never invented or clamped.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from dagster_project.lib.text import to_halfwidth

SCORE_KEYS = ("score", "综合得分", "总分", "最终得分", "overall", "overall_score", "rating")
DIMENSION_KEYS = {
    "harmlessness": ("harmlessness", "无害性"),
    "helpfulness": ("helpfulness", "有用性"),
    "correctness": ("correctness", "正确性/完整性", "正确性", "完整性"),
}
VERDICT_KEYS = ("verdict", "结论", "判断", "判定", "result", "是否正确")
REASON_KEYS = ("reason", "理由", "解释", "explanation")

_NUM = r"(\d+(?:\.\d+)?)"
_FENCE = re.compile(r"```[a-zA-Z]*")
_BRACKETS = re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]")
_OVERALL_LABEL = re.compile(r"(?:综合得分|总分|最终得分|总体评分|综合评分)\s*[:=]\s*" + _NUM)
_LABEL = re.compile(r"(?:得分|评分|分数|score|rating)\s*[:=]\s*" + _NUM, re.IGNORECASE)
_OUT_OF_TEN = re.compile(r"(?<![\d.])" + _NUM + r"\s*/\s*10(?![\d.])")
_FEN = re.compile(r"(?<![\d.\-~～到至])" + _NUM + r"\s*分")
_ONLY_NUMBER = re.compile(r"^\s*" + _NUM + r"\s*$")

_NEGATIVE = ("不正确", "不等价", "不一致", "不相同", "错误", "incorrect", "not equivalent", "different", "wrong", "false")
_POSITIVE = ("正确", "等价", "一致", "相同", "correct", "equivalent", "right", "true")
_VERDICT_WORD = re.compile(
    "|".join(re.escape(w) for w in sorted(_NEGATIVE + _POSITIVE, key=len, reverse=True)), re.IGNORECASE
)
_LABELLED_VERDICT = re.compile(
    r"(?:verdict|结论|判断|判定|最终判断|最终结论)\s*[:=]?\s*[\"'“”【\[(]*\s*("
    + _VERDICT_WORD.pattern
    + ")",
    re.IGNORECASE,
)
_VERDICT_BRACKETS = re.compile(r"\[\[\s*(" + _VERDICT_WORD.pattern + r")\s*\]\]", re.IGNORECASE)


@dataclass(frozen=True)
class QualityScore:
    score: float
    harmlessness: float | None = None
    helpfulness: float | None = None
    correctness: float | None = None
    reason: str | None = None
    method: str = "json"


@dataclass(frozen=True)
class CorrectnessVerdict:
    correct: bool
    score: int
    reason: str | None = None
    method: str = "json"


def normalize_text(text: str) -> str:
    """Full-width ASCII -> ASCII (``８分`` -> ``8分``, ``：`` -> ``:``) and no code fences."""
    return _FENCE.sub("", to_halfwidth(text))


def parse_quality(text: str | None) -> QualityScore | None:
    """Overall 0-10 score (plus dimension scores when present), or None."""
    if not text or not text.strip():
        return None
    clean = normalize_text(text)
    obj = last_json_object(clean)
    if obj is not None:
        raw = _first_key(obj, SCORE_KEYS)
        if raw is not None:
            score = _in_range(raw)
            if score is None:
                return None
            dims = {name: _in_range(_first_key(obj, keys)) for name, keys in DIMENSION_KEYS.items()}
            return QualityScore(score, reason=_reason(obj), method="json", **dims)
    for method, pattern in (
        ("brackets", _BRACKETS),
        ("label", _OVERALL_LABEL),
        ("label", _LABEL),
        ("slash", _OUT_OF_TEN),
        ("fen", _FEN),
        ("number", _ONLY_NUMBER),
    ):
        matches = [m for m in pattern.finditer(clean) if not _is_full_marks(clean, m)]
        if matches:
            score = _in_range(matches[-1].group(1))
            return QualityScore(score, method=method) if score is not None else None
    return None


def parse_correctness(text: str | None) -> CorrectnessVerdict | None:
    """正确 (score 10) or 错误 (score 0) from a correctness-judge reply, or None."""
    if not text or not text.strip():
        return None
    clean = normalize_text(text)
    obj = last_json_object(clean)
    if obj is not None:
        verdict = _first_key(obj, VERDICT_KEYS)
        correct = _verdict_of(str(verdict)) if verdict is not None else None
        if correct is None:
            correct = _correct_from_score(_first_key(obj, SCORE_KEYS))
        if correct is not None:
            return _verdict(correct, _reason(obj), "json")
    for method, pattern in (("label", _LABELLED_VERDICT), ("brackets", _VERDICT_BRACKETS)):
        matches = list(pattern.finditer(clean))
        if matches:
            return _verdict(_verdict_of(matches[-1].group(1)), None, method)
    quality = parse_quality(clean)
    if quality is not None and quality.method != "number":
        correct = _correct_from_score(quality.score)
        if correct is not None:
            return _verdict(correct, None, "score")
    last_line = clean.strip().splitlines()[-1]
    words = _VERDICT_WORD.findall(last_line)
    if words:
        return _verdict(_verdict_of(words[-1]), None, "last_line")
    return None


def last_json_object(text: str):
    """The last ``{...}`` block that parses as JSON or a Python dict literal, else None."""
    ends = [i for i, ch in enumerate(text) if ch == "}"]
    for end in reversed(ends):
        depth = 0
        for start in range(end, -1, -1):
            ch = text[start]
            if ch == "}":
                depth += 1
            elif ch == "{":
                depth -= 1
                if depth == 0:
                    obj = _load_dict(text[start : end + 1])
                    if obj is not None:
                        return obj
                    break
    return None


def _load_dict(block: str):
    for loader in (json.loads, ast.literal_eval):
        try:
            obj = loader(block)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _first_key(obj: dict, keys) -> object | None:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def _in_range(value) -> float | None:
    """0-10 as a float (``"8分"`` -> 8.0); None when missing, non-numeric or out of range."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        m = re.search(r"-?\d+(?:\.\d+)?", normalize_text(str(value)))
        if not m:
            return None
        number = float(m.group(0))
    return number if 0 <= number <= 10 else None


def _is_full_marks(text: str, match: re.Match) -> bool:
    """``满分10分`` / ``10分制`` describe the scale, not the score."""
    before = text[max(0, match.start() - 4) : match.start()]
    after = text[match.end() : match.end() + 1]
    return "满分" in before or after == "制"


def _verdict_of(word: str) -> bool | None:
    word = word.strip().lower()
    if any(neg in word for neg in _NEGATIVE):
        return False
    if any(pos in word for pos in _POSITIVE):
        return True
    return None


def _correct_from_score(value) -> bool | None:
    score = _in_range(value)
    if score == 10:
        return True
    if score == 0:
        return False
    return None


def _verdict(correct: bool | None, reason: str | None, method: str) -> CorrectnessVerdict | None:
    if correct is None:
        return None
    return CorrectnessVerdict(correct, 10 if correct else 0, reason, method)


def _reason(obj: dict) -> str | None:
    value = _first_key(obj, REASON_KEYS)
    return str(value) if value is not None else None
