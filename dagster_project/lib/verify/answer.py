"""Pick the final answer out of an R1 completion and make its boxes Math-Verify friendly.

Only the part after ``</think>`` is ever verified: R1 often writes trial answers (and
even ``\\boxed{}``) inside its reasoning. The fixes applied here are deliberately narrow
and only touch the *content* of ``\\boxed{...}``:

* full-width digits, letters and punctuation -> ASCII (``\\boxed{２}`` -> ``\\boxed{2}``);
* ``°`` -> ``^{\\circ}``;
* a bare CJK unit right after the value (``\\boxed{35厘米}`` -> ``\\boxed{35}``), unless
  the "unit" is a magnitude such as 万/亿 (``\\boxed{3万}`` stays and goes to the judge);
* option-letter lists (``\\boxed{A、C}`` -> ``\\boxed{A,C}``, ``\\boxed{选C}`` -> ``\\boxed{C}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dagster_project.lib.text import to_halfwidth

THINK_END = "</think>"
THINK_START = "<think>"

_BOX_OPENERS = ("\\boxed", "\\fbox")

_CJK_PUNCT = str.maketrans({"。": ".", "、": ",", "，": ",", "：": ":", "；": ";", "（": "(", "）": ")"})

CJK = "\u4e00-\u9fff"
# A leading magnitude character makes the "unit" part of the number (3万 = 30000).
_MAGNITUDE = re.compile(r"^[十百千万亿兆](?!米|克|瓦|焦|帕|伏|卡|赫|字节)")
# value followed by a CJK unit (optionally ℃ or a trailing full stop) and nothing else.
_VALUE_THEN_UNIT = re.compile(rf"^(?P<value>[^{CJK}]*[0-9}}])\s*(?P<unit>[{CJK}℃]+)\s*\.?$")
_LETTER_LIST = re.compile(
    r"^(?:选项|选|答案[是为]?|答)?\s*[:：]?\s*\(?\s*(?P<letters>[A-J](?:\s*[,，、和及与]?\s*[A-J])*)\s*\)?\s*\.?$"
)


def final_answer(completion: str | None) -> str:
    """Return the text after the last ``</think>``; "" if the completion never finished thinking.

    Text without any think tags is returned unchanged (an API that already split
    ``reasoning_content`` from ``content``).
    """
    if not completion:
        return ""
    head, sep, tail = completion.rpartition(THINK_END)
    if sep:
        return tail
    if THINK_START in completion:
        return ""
    return completion


def iter_boxed(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(content_start, content_end, content)`` for every balanced ``\\boxed{...}``/``\\fbox{...}``."""
    pos = 0
    while True:
        hits = [(text.find(op, pos), op) for op in _BOX_OPENERS]
        hits = [(i, op) for i, op in hits if i >= 0]
        if not hits:
            return
        start, op = min(hits)
        i = start + len(op)
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "{":
            pos = start + len(op)
            continue
        depth, j = 0, i
        while j < len(text):
            ch = text[j]
            if ch == "\\":
                j += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if depth != 0:
            return
        yield i + 1, j, text[i + 1 : j]
        pos = j + 1


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{}``, or None."""
    found = None
    for _, _, content in iter_boxed(text):
        found = content
    return found


def strip_cjk_unit(value: str) -> str:
    """``35厘米`` -> ``35``; values with a magnitude word (``3万``) or CJK inside are kept."""
    m = _VALUE_THEN_UNIT.match(value.strip())
    if not m or _MAGNITUDE.match(m.group("unit")):
        return value
    return m.group("value").rstrip()


def normalize_box_content(content: str) -> str:
    """Apply the safe fixes listed in the module docstring to one box's content."""
    fixed = to_halfwidth(content).replace("°", "^{\\circ}")
    fixed = re.sub(r"(?<=\d)。(?=\d)", ".", fixed)  # 0。5: a full stop typed as decimal point
    letters = _LETTER_LIST.match(fixed.translate(_CJK_PUNCT).strip())
    if letters:
        found = re.findall(r"[A-J]", letters.group("letters"))
        separated = re.search(r"[,，、和及与]", letters.group("letters"))
        return ",".join(found) if separated else "".join(found)
    return strip_cjk_unit(fixed.translate(_CJK_PUNCT) if _is_numeric_list(fixed) else fixed)


def _is_numeric_list(text: str) -> bool:
    """True for things like ``1，2`` where CJK punctuation separates plain numbers."""
    return bool(re.fullmatch(r"[\s0-9.+\-，、；]+", text)) and bool(re.search(r"[，、；]", text))


def normalize_answer(answer: str) -> str:
    """Rewrite every ``\\boxed{}`` content in ``answer`` with :func:`normalize_box_content`."""
    out, last = [], 0
    for start, end, content in iter_boxed(answer):
        out.append(answer[last:start])
        out.append(normalize_box_content(content))
        last = end
    out.append(answer[last:])
    return "".join(out)


def prepare_answer(completion: str | None) -> str:
    """Final answer of a completion with its boxes normalized: what the checker parses."""
    return normalize_answer(final_answer(completion))
