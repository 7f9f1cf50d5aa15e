"""Find the final answer of an R1 completion the way a careful grader would.

Only the part after ``</think>`` counts: R1 writes trial answers, even boxed ones, while it
thinks. In that answer part, `find_final_answer` takes, in this order:

1. the **last box** (``\\boxed{}``/``\\fbox{}``), never merged with an earlier one. Boxes that
   follow each other with only separators or part labels between them (``\\boxed{1}或\\boxed{2}``,
   ``(1)\\boxed{3}；(2)\\boxed{5}``) are one answer in several parts (source ``boxes``);
2. otherwise the value after the last **final-answer phrase** (``所以答案是 42``, ``最终答案为：``,
   ``**答案：C**``, ``故选C``, ``正确选项为B``, ``【答案】``, ``答：…``, ``Final answer:``), up to the end
   of its sentence (source ``phrase``);
3. otherwise the whole answer part when it is only a short value, not a sentence (source ``whole``).

It gives up (source ``ambiguous``) when the text does not commit to one answer: a phrase after
the last box states another value, a box introduced as the final answer is not the last box and
differs from it, the answer is taken back after it is given (``不对，重新计算…``), or the final
phrase is a question (``答案是 42 吗？``). Nothing found: source ``none``. Both go to the judge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dagster_project.lib.verify.reading import NOT_UNIT as _NOT_UNIT
from dagster_project.lib.verify.reading import fold, strip_markup

THINK_END = "</think>"
THINK_START = "<think>"

_BOX_OPENERS = ("\\boxed", "\\fbox")
MAX_SHORT_ANSWER = 30

# Between two boxes of one answer: separators, spaces, $ and part labels such as (2) or 第二问.
_BOX_GAP = re.compile(
    r"^(?:\s|\$|\\[,;!quad ]+|[,，、;；和或及与]|and|or|\\text\{\s*(?:或|和|or|and)\s*\}|"
    r"[(（]?\s*\d{1,2}\s*[)）]|[①-⑳]|第[一二三四五六七八九十\d]+(?:问|空|题|小题)\s*[:：]?|[:：])*$"
)
_STRONG = (
    r"(?:最终|最后)?(?:的)?答案\s*(?:应该|应当|应)?\s*(?:是|为)\s*(?:\*\*)?\s*[:：]?"
    r"|(?:最终|最后)(?:的)?(?:结果|结论)\s*(?:应该|应)?\s*(?:是|为)\s*[:：]?"
    r"|(?:最终|最后)?(?:的)?答案\s*(?:\*\*)?\s*[:：]"
    r"|【答案】\s*[:：]?"
    r"|(?:最终|最后)?(?:的)?(?:判断|结论)\s*(?:\*\*)?\s*[:：]"
    r"|正确(?:的)?(?:答案|选项)\s*(?:应该|应)?\s*(?:是|为)?\s*[:：]?"
    r"|(?i:final\s+answer\s*(?:is)?\s*[:：]?|(?<![a-z])answer\s*(?:is)?\s*[:：])"
)
# 故选C / 应选 B / 所以选择(D): only when an option letter follows.
_CHOICE = r"(?:(?:故|所以|因此|则|应|即|本题)\s*(?:应)?|答案\s*(?:应)?)\s*选(?:择)?\s*[:：]?(?=\s*(?:\*\*)?\s*[(\[（【]?\s*[A-Ja-j](?![A-Za-z]))"
_REPLY = r"(?:^|\n)\s*(?:\*\*)?答\s*(?:\*\*)?\s*[:：]"
_PHRASE = re.compile(rf"(?P<strong>{_STRONG})|(?P<choice>{_CHOICE})|(?P<reply>{_REPLY})")
# where a phrase's value ends: a full stop, a new line, a semicolon, or a comma before words
_VALUE_END = re.compile(r"[。\n;；!！?？]|[,，](?=\s*(?![或和及与且])[\u4e00-\u9fff])|(?<![\d\s])\.(?=\s|$)")
_NUMBER_TOKEN = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?%?")
_UNIT_AFTER_BOX = re.compile(
    r"\$?[ \t]*(?P<unit>\\%|%|％|\\text\s*\{[^{}]{1,12}\}|\\mathrm\s*\{[^{}]{1,12}\}|[\u4e00-\u9fff]{1,5}(?:/[\u4e00-\u9fff]{1,3})?)"
)
# the answer is taken back after it is given: "不对，重新计算…", "我算错了"
_CORRECTION = re.compile(r"不对[，,。！!]|错了|算错|有误|更正|修正|纠正|重新计算|重新算|应改为")
_CONCLUDING = re.compile(rf"{_STRONG}|所以|因此|故|即|综上|最终|总共|一共|合计|得到|算得|可得|于是|then|so", re.I)


@dataclass(frozen=True)
class Extracted:
    source: str                 # box | boxes | phrase | whole | ambiguous | none
    texts: tuple[str, ...] = ()
    boxes: int = 0              # boxes in the answer part
    why: str | None = None      # ambiguous / none: why
    # earlier boxes of the last box's paragraph, each introduced only by a label ("乙需要 \boxed{30}"):
    # the parts of a multi-part answer when the gold has more parts than the last box
    siblings: tuple[str, ...] = ()
    # a unit, magnitude or percent written right after the last box ("\boxed{7} 万美元", "\boxed{25}\%")
    unit_after: str | None = None

    @property
    def shown(self) -> str | None:
        return " ; ".join(self.texts) if self.texts else None


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


def find_final_answer(answer: str) -> Extracted:
    """The final answer of an answer part (the text after ``</think>``), see the module docstring."""
    boxes = list(iter_boxed(answer))
    if boxes:
        found = _from_boxes(answer, boxes)
        if found.source != "ambiguous" and _CORRECTION.search(answer[boxes[-1][1] + 1 :]):
            return Extracted("ambiguous", found.texts, found.boxes, "the answer is taken back after the last box")
        return found
    phrase = _last_phrase(answer)
    if phrase is not None:
        value, end = _phrase_value(answer, phrase)
        after = answer[end:]
        if not value:
            return Extracted("none", why="a final-answer phrase with no value after it")
        if re.match(r"\s*[?？]", after) or re.search(r"[吗呢]", value):
            return Extracted("ambiguous", (value,), why="the final-answer phrase is a question")
        if _CORRECTION.search(after):
            return Extracted("ambiguous", (value,), why="the answer is taken back after it is given")
        return Extracted("phrase", (value,))
    short = strip_markup(fold(answer)).strip("*#> \n")
    if short and len(short) <= MAX_SHORT_ANSWER and "\n" not in short and len(re.findall(r"[\u4e00-\u9fff]", short)) <= 8:
        return Extracted("whole", (short,))
    return Extracted("none", why="no box and no final-answer phrase in the answer")


def _from_boxes(answer: str, boxes: list[tuple[int, int, str]]) -> Extracted:
    n = len(boxes)
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        gap = answer[prev[1] + 1 : _box_start(answer, group[0][0])]
        if not _BOX_GAP.match(gap):
            break
        group.insert(0, prev)
    contents = [c for _, _, c in group]
    last_end = boxes[-1][1] + 1
    # a phrase after the last box that states another value
    tail = answer[last_end:]
    phrase = _last_phrase(tail)
    if phrase is not None:
        value, _ = _phrase_value(tail, phrase)
        if value and not _consistent(value, contents):
            return Extracted("ambiguous", (contents[-1],), n, "a phrase after the last box states another answer")
    # a box introduced as the final answer that is not the last one
    for start, end, content in boxes[: n - len(group)]:
        lead = answer[max(0, _box_start(answer, start) - 16) : _box_start(answer, start)]
        if re.search(r"(?:最终|最后)(?:的)?答案|答案\s*(?:是|为|[:：])|(?i:final answer)", lead) and _squash(content) not in {
            _squash(c) for c in contents
        }:
            return Extracted("ambiguous", (contents[-1],), n, "a box marked as the final answer is not the last box")
    if len(group) > 1 and len({_squash(c) for c in contents}) == 1:
        return Extracted("box", (contents[-1],), n)
    if len(group) > 1:
        return Extracted("boxes", tuple(contents), n)
    after = _UNIT_AFTER_BOX.match(answer, last_end)
    unit = after.group("unit") if after and not _NOT_UNIT.search(after.group("unit")) else None
    return Extracted("box", tuple(contents), n, siblings=_paragraph_siblings(answer, boxes), unit_after=unit)


def _paragraph_siblings(answer: str, boxes: list[tuple[int, int, str]]) -> tuple[str, ...]:
    """Boxes before the last one in its paragraph, back to the first gap that concludes (所以, 答案...)."""
    found: list[str] = []
    later = boxes[-1]
    for box in reversed(boxes[:-1]):
        gap = answer[box[1] + 1 : _box_start(answer, later[0])]
        if "\n\n" in gap or _CONCLUDING.search(gap):
            break
        found.insert(0, box[2])
        later = box
    return tuple(found)


def _box_start(text: str, content_start: int) -> int:
    """Where the ``\\boxed``/``\\fbox`` command of a box whose content starts at ``content_start`` begins."""
    found = max(text.rfind(op, 0, content_start) for op in _BOX_OPENERS)
    return found if found >= 0 else content_start


def _last_phrase(text: str) -> re.Match | None:
    last = None
    for m in _PHRASE.finditer(text):
        last = m
    return last


def _phrase_value(text: str, phrase: re.Match) -> tuple[str | None, int]:
    """The value after a phrase up to the end of its sentence, and where that sentence ends.

    ``答：`` sentences give their one value (`_reply_value`).
    """
    start = phrase.end()
    while start < len(text) and text[start] in " \t*:：":
        start += 1
    rest = text[start:]
    if rest.startswith(("$$", "\\[")):
        closer = "$$" if rest.startswith("$$") else "\\]"
        close = rest.find(closer, 2)
        value, end = (rest[2:close], start + close + 2) if close > 0 else ("", len(text))
    else:
        end = start + _sentence_end(rest)
        value = text[start:end]
    value = re.sub(r"[。．.，,；;:：\s]+$", "", value.strip().strip("*").strip())
    if not value:
        return None, end
    return (_reply_value(value) if phrase.group("reply") else value), end


def _sentence_end(text: str) -> int:
    """Index of the first sentence end outside $...$ and brackets (len(text) if none)."""
    depth, in_math = 0, False
    for i, ch in enumerate(text):
        if ch == "$":
            in_math = not in_math
        elif ch in "{(":
            depth += 1
        elif ch in "})":
            depth = max(0, depth - 1)
        if in_math or depth:
            continue
        if _VALUE_END.match(text, i):
            return i
    return len(text)


def _reply_value(sentence: str) -> str | None:
    """The one value of an ``答：`` sentence, else the sentence (which then reads as text).

    ``答：小明一共有 42 个苹果`` -> ``42个``; ``答：还剩 $\\frac{11}{20}$ 没完成`` -> ``\\frac{11}{20}``.
    """
    folded = re.sub(r"(?<=\d),(?=\d{3})", "", fold(sentence))
    formulas = re.findall(r"(?<!\\)\$([^$]+)\$", folded)
    outside = re.sub(r"(?<!\\)\$[^$]+\$", " ", folded)
    if len(formulas) == 1 and not re.search(r"\d", outside):
        return formulas[0]
    numbers = _NUMBER_TOKEN.findall(outside)
    if formulas or len(numbers) != 1:
        return sentence
    m = re.search(re.escape(numbers[0]) + r"\s*([\u4e00-\u9fff]{0,3})", outside)
    return numbers[0] + (m.group(1) if m else "")


def _squash(text: str) -> str:
    return re.sub(r"[\s{}$]|\\text|\\mathrm|\\left|\\right", "", fold(text))


def _consistent(value: str, contents: list[str]) -> bool:
    squashed = _squash(value)
    return any(_squash(c) and (_squash(c) in squashed or squashed in _squash(c)) for c in contents)
