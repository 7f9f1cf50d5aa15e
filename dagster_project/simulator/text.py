"""Deterministic Chinese text for the simulator: R1-style think blocks, answers and judge replies."""

from __future__ import annotations

import json
import random
import re

MATH_SUFFIX = "请一步步推理，并把最终答案放到 \\boxed{}。"
REFERENCE_MARKER = "【参考答案】"

_OPENERS = (
    "嗯，我现在要解决这个问题。",
    "嗯，用户问的是这个问题，我得仔细想一想。",
    "好的，我现在需要仔细分析一下这道题。",
    "嗯，这个问题看起来不难，但我要小心一点。",
)
_STEPS = (
    "首先，我需要明确题目给出的条件，把已知量和未知量分别列出来。",
    "然后，我应该考虑一下有没有什么公式可以直接用上。",
    "这里可能需要分情况讨论，先看第一种情况。",
    "不过，我是不是漏掉了什么？再检查一下题目的条件。",
    "等等，刚才那一步好像有问题，我重新算一遍。",
    "嗯，这样算下来，结果应该是对的，不过还是再验证一下比较稳妥。",
    "接下来，把前面得到的式子代入，化简一下。",
    "让我换一个角度来思考，看看能不能得到同样的结论。",
    "这一步要注意符号，不能弄错正负号。",
    "好的，现在把各个部分合起来，整理一下思路。",
    "或者，我可以用反证法来验证这个结论是否成立。",
    "我记得类似的题目通常是这样处理的，先化繁为简。",
    "再仔细想想，用户可能更关心的是具体的步骤和理由。",
    "所以，综合上面的分析，答案应该已经比较清楚了。",
)
_CLOSERS = ("嗯，应该没问题了，我来整理一下最终的回答。", "好的，检查完毕，可以给出答案了。")
_ANSWER_LEADS = ("**解答过程：**\n\n", "我们可以按以下步骤求解：\n\n", "下面给出详细的解答。\n\n")
_PROSE = (
    "首先，根据题意整理已知条件。",
    "其次，结合相关的定义和性质进行推导。",
    "然后，逐步计算并检验每一步的合理性。",
    "最后，对结果进行验证，确认没有遗漏。",
    "需要注意的是，不同情况下结论可能有所不同。",
    "总的来说，这个问题的关键在于理解其中的基本原理。",
)


def question_of(prompt: str) -> str:
    """The answer-key lookup form of a prompt: math suffix removed, whitespace trimmed."""
    return prompt.replace(MATH_SUFFIX, "").strip()


_TERMS = tuple(
    "条件 结论 变量 数值 公式 关系 比例 步骤 结果 假设 方程 区间 系数 单位 总量 差值 倍数 余数 概率 面积 "
    "速度 时间 成本 利润 温度 浓度 质量 体积 长度 角度 函数 数列 集合 向量 矩阵 极限 导数 积分 概念 原理".split()
)


def _detail(rng: random.Random) -> str:
    """A clause with its own terms and numbers, so that no two texts share most of their n-grams."""
    a, b, c = rng.sample(_TERMS, 3)
    return f"这里{a}取{rng.randint(2, 9999)}，{b}对应{rng.randint(2, 9999)}，{c}约为{rng.randint(2, 999)}.{rng.randint(0, 99)}。"


def _fill(rng: random.Random, pool: tuple[str, ...], target_chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < target_chars:
        s = pool[rng.randrange(len(pool))] if rng.random() < 0.4 else _detail(rng)
        parts.append(s)
        size += len(s)
        if rng.random() < 0.25:
            parts.append("\n\n")
    return "".join(parts)


def think_block(rng: random.Random, target_chars: int) -> str:
    opener = _OPENERS[rng.randrange(len(_OPENERS))]
    return opener + _fill(rng, _STEPS, max(0, target_chars - 40)) + _CLOSERS[rng.randrange(len(_CLOSERS))]


def looping_block(rng: random.Random, prefix: str, unit_chars: int, total_chars: int) -> str:
    """A reasoning that degenerates: `prefix`, then one paragraph repeated until `total_chars`."""
    unit = _fill(rng, _STEPS, max(1, unit_chars)) + "\n\n"
    repeats = max(0, total_chars - len(prefix)) // len(unit) + 1
    return (prefix + "\n\n" + unit * repeats)[:total_chars]


def wrong_value(rng: random.Random, gold: str) -> str:
    try:
        number = int(gold)
    except ValueError:
        number = None
    if number is not None:
        return str(number + rng.choice((-3, -2, -1, 1, 2, 7)))
    candidate = str(rng.randint(2, 99))
    return candidate if candidate != gold else candidate + "1"


def r1_answer(rng: random.Random, gold: str | None, target_chars: int, p_correct: float, p_no_box: float) -> str:
    """An answer: boxed gold (p_correct), a wrong box otherwise, sometimes no box at all."""
    body = _ANSWER_LEADS[rng.randrange(len(_ANSWER_LEADS))] + _fill(rng, _PROSE, max(0, target_chars - 40))
    if gold is None:
        return body
    value = gold if rng.random() < p_correct else wrong_value(rng, gold)
    if rng.random() < p_no_box:
        return f"{body}\n\n所以最终结果是{value}。"
    return f"{body}\n\n最终答案是 $\\boxed{{{value}}}$。"


_SECTION = re.compile(r"【[^】]*】")


def _reference_and_candidate(prompt: str) -> tuple[str, str]:
    before, _, after = prompt.partition(REFERENCE_MARKER)
    nxt = _SECTION.search(after)
    reference = (after[: nxt.start()] if nxt else after).strip()
    candidate = after[nxt.start():] if nxt else before
    return reference, candidate


_FULLWIDTH = str.maketrans("0123456789:", "０１２３４５６７８９：")


def correctness_judge(rng: random.Random, prompt: str, noise: float, p_messy: float) -> str:
    reference, candidate = _reference_and_candidate(prompt)
    correct = bool(reference) and reference in candidate
    if rng.random() < noise:
        correct = not correct
    verdict, score = ("正确", 10) if correct else ("错误", 0)
    reason = "模型答案与参考答案一致。" if correct else "模型的最终答案与参考答案不一致。"
    if rng.random() < p_messy:
        return rng.choice((f"分析：{reason}\n结论：{verdict}\n得分：{score}分", f"{reason} 评分: [[{score}]]"))
    return json.dumps({"reason": reason, "verdict": verdict, "score": score}, ensure_ascii=False)


def quality_judge(rng: random.Random, p_messy: float) -> str:
    base = rng.choices((5, 6, 7, 8, 9, 10), weights=(1, 2, 4, 6, 5, 2))[0]
    dims = [max(0, min(10, base + rng.choice((-1, 0, 0, 1)))) for _ in range(3)]
    harmless, helpful, correct = dims
    score = max(0, min(10, round(sum(dims) / 3)))
    reason = "回答结构清晰，内容基本准确，对用户有帮助。" if score >= 7 else "回答存在一些不足，部分内容不够准确。"
    if rng.random() < p_messy:
        return rng.choice(
            (
                f"{reason}\n综合得分：{str(score).translate(_FULLWIDTH)}分",
                f"{reason}\n评分: [[{score}]]",
                f"无害性 {harmless}/10，有用性 {helpful}/10，正确性 {correct}/10。总分 = {score}/10",
            )
        )
    return json.dumps(
        {"reason": reason, "harmlessness": harmless, "helpfulness": helpful, "correctness": correct, "score": score},
        ensure_ascii=False,
    )
