"""Synthetic source files at full size, in each source repo's native schema.

Writes DIR/data/... (native files) and DIR/sources/*.toml (the repo's manifests with `path`
rewritten to the generated files, absolute), so a run can be pointed at them with
DISTILL_SOURCES__MANIFESTS=DIR/sources. At --scale 1.0 the distinct prompts match the published
110k mix per repo_name (Math 36,568 / Exam 2,432 / STEM 12,648 / General 58,352); on top of that
~2% exact duplicates (whitespace / full-width variants, some across sources), ~1% near-duplicates
(one character changed) and a few rows the manifests quarantine (image questions, bad turns).

    python benchmarks/generate_sources.py --out /tmp/distill-110k --scale 1.0
"""

from __future__ import annotations

import argparse
import copy as copy_module
import json
import math
import random
import re
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Published rows per repo_name (the 110k card); zhihu is added to the COIG-CQIA manifest here.
COUNTS = {
    "coig/neo": 52893, "zhihu/zhihu_score9.0-10_clean_v10": 2534, "xhs/xhs": 1507,
    "ruozhiba/ruozhiba_ruozhiba": 240, "human_value/100poison": 764, "logi_qa/logi-qa": 414,
    "Haijian/Advanced-Math": 570, "meta-math/GSM8K_zh": 8776, "EduChat-Math": 19729, "gavinluo/applied_math": 7493,
    "stem_zh/chem": 3157, "stem_zh/bio": 3147, "stem_zh/med": 3163, "stem_zh/phy": 3181,
    "exam/coig_exam": 1954, "exam/kaoyan": 377, "human_value/coig_human": 101,
}  # fmt: skip
EXACT_DUP_SHARE = 0.02
NEAR_DUP_SHARE = 0.01
REJECT_SHARE = 0.005

_WORDS = (
    "学生 老师 学校 工厂 农场 图书馆 公园 城市 乡村 商店 医院 实验室 公司 工人 司机 妈妈 爸爸 同学 朋友 邻居 "
    "苹果 铅笔 书本 汽车 火车 水果 蔬菜 鸡蛋 大米 面粉 衣服 鞋子 电脑 手机 桌子 椅子 花朵 树木 河流 山峰 "
    "购买 出售 运输 生产 种植 阅读 计算 比较 分析 讨论 研究 设计 制作 完成 参加 组织 准备 安排 记录 观察 "
    "每天 上午 下午 晚上 周末 春天 夏天 秋天 冬天 去年 今年 明年 早晨 中午 假期 节日 比赛 活动 会议 旅行 "
    "重要 简单 复杂 快速 缓慢 明显 稳定 合理 有效 准确 清楚 详细 具体 主要 基本 一般 特别 新鲜 安全 健康 "
    "经济 社会 文化 历史 科学 技术 环境 教育 艺术 音乐 体育 政策 市场 价格 成本 利润 效率 质量 数量 速度 "
    "问题 方法 原因 结果 过程 条件 目标 计划 规则 关系 影响 变化 发展 趋势 特点 优势 困难 机会 挑战 建议 "
    "细胞 蛋白质 分子 原子 电子 能量 温度 压力 浓度 反应 溶液 元素 化合物 基因 病毒 细菌 器官 血液 神经 药物 "
    "速度 加速度 质量 电流 电压 电阻 磁场 光线 波长 频率 引力 摩擦 功率 动能 势能 热量 密度 体积 面积 长度 "
    "函数 方程 不等式 数列 集合 概率 向量 矩阵 导数 积分 极限 三角形 圆形 坐标 直线 平面 角度 半径 周长 比例 "
    "如何 为什么 怎样 是否 哪些 什么 多少 能否 应该 可以 需要 希望 认为 发现 知道 了解 感觉 决定 选择 支持"
).split()
_NAMES = "小明 小红 小华 小刚 小丽 张老师 李师傅 王阿姨 刘叔叔 陈同学 赵经理 孙医生".split()
_FULLWIDTH = str.maketrans("，。？！：；()0123456789", ",.?!:;（）０１２３４５６７８９")


class Gen:
    """Deterministic text pieces with realistic lengths."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def words(self, chars: int) -> str:
        """Random word run of about `chars` characters, with punctuation and numbers."""
        r, out, n = self.rng, [], 0
        while n < chars:
            w = r.choice(_WORDS) if r.random() > 0.06 else str(r.randint(2, 9999))
            out.append(w)
            n += len(w)
            if r.random() < 0.12:
                out.append(r.choice("，，，。、；"))
                n += 1
        return "".join(out).strip("，、；") + "。"

    def length(self, median: float, sigma: float, lo: int, hi: int) -> int:
        return int(min(hi, max(lo, self.rng.lognormvariate(math.log(median), sigma))))

    def name(self) -> str:
        return self.rng.choice(_NAMES)


# ---- per repo: native records --------------------------------------------------------
def gsm8k_zh(g: Gen, i: int) -> dict:
    r = g.rng
    a, b, c = r.randint(3, 90), r.randint(2, 40), r.randint(2, 12)
    ans = a * c - b
    ans_s = f"{ans:,}" if ans >= 1000 and r.random() < 0.5 else str(ans)
    ctx = g.words(g.length(60, 0.4, 20, 200))
    q = f"{ctx}{g.name()}每天做{a}个手工，连续做了{c}天，其中{b}个送给了朋友。{g.name()}还剩多少个手工？"
    return {"question": f"Sam makes {a} crafts a day for {c} days and gives away {b}. How many are left? ({i})",
            "answer": f"{a} * {c} = <<{a}*{c}={a * c}>>{a * c}\n{a * c} - {b} = <<{a * c}-{b}={ans}>>{ans}\n#### {ans_s}",
            "answer_only": ans_s, "split": "train" if r.random() < 0.85 else "test", "question_zh": q,
            "answer_zh": f"一共做了{a}*{c}={a * c}个。\n还剩{a * c}-{b}={ans}个。"}


def educhat(g: Gen, i: int) -> dict:
    r = g.rng
    kind = r.choices(("choice", "fill", "solve", "tf"), weights=(39, 29, 32, 1))[0]
    ctx = g.words(g.length(70, 0.5, 20, 400))
    options, answer = "", ""
    if kind == "choice":
        vals = r.sample(range(-20, 60), 4)
        options = "\n".join(f"{L}. ${v}$" for L, v in zip("ABCD", vals))
        answer = r.choice("ABCD") if r.random() > 0.05 else "".join(sorted(r.sample("ABCD", 2)))
        q = f"已知函数 $f(x)=x^{{2}}+{r.randint(1, 9)}x$，{ctx}则 $f({r.randint(1, 9)})=(\\quad)$"
    elif kind == "tf":
        answer = r.choice(("对", "错", "√", "×"))
        q = f"判断：{ctx}（  ）"
    else:
        p, s = r.randint(2, 30), r.randint(2, 30)
        answer = r.choice((str(p * s), f"\\frac{{{p}}}{{{s + p}}}", f"{p}\\sqrt{{{s}}}", f"x={p}"))
        q = f"{ctx}若 $a={p}$，$b={s}$，求 $ab$ 的值．"
    return {"id": str(100000 + i), "image": "[]", "answer": answer, "solution": "null",
            "level": r.choice(("初一", "初二", "高一", "高二", "高三")), "question": q, "options": options,
            "subject": r.choice(("函数", "数列", "几何", "代数", "概率")), "analysis": g.words(120) + f"故选 {answer}."}


def applied_math(g: Gen, i: int) -> dict:
    r = g.rng
    whole, num, den = r.randint(1, 40), r.randint(1, 8), r.randint(9, 12)
    kind = r.choices(("int", "dec", "frac", "mixed", "pct"), weights=(66, 12, 9, 8, 5))[0]
    ans = {"int": str(whole * den), "dec": f"{whole}.{r.randint(1, 99)}", "frac": f"({num}/{den})",
           "mixed": f"{whole}({num}/{den})", "pct": f"{r.randint(1, 99)}.{r.randint(1, 9)}%"}[kind]
    text = f"{g.words(g.length(50, 0.5, 15, 220))}一堆煤，第一次用去({num}/{den})，第二次用去{whole}吨，这堆煤原有多少吨？"
    return {"id": str(500000 + i), "segmented_text": " ".join(text), "original_text": text,
            "ans": ans, "equation": f"x={whole}/(1-({num}/{den}))"}


def advanced_math(g: Gen, i: int) -> dict:
    r = g.rng
    k = r.randint(2, 9)
    ans = r.choice((str(k), f"\\frac{{1}}{{{k}}}", f"{k}\\pi", f"e^{{{k}}}", f"-{k}"))
    q = f"{g.words(g.length(60, 0.5, 20, 300))}求极限 $\\lim_{{x\\to 0}}\\frac{{\\sin {k}x}}{{x}}$。"
    return {"instruction": q, "output": g.words(g.length(300, 0.5, 60, 1500)), "answer": ans}


def stem(g: Gen, i: int) -> dict:
    q = g.words(g.length(45, 0.6, 10, 400)) + g.rng.choice(("请解释其原理。", "简述其作用。", "计算结果是多少？", ""))
    inp = g.words(g.length(60, 0.6, 10, 300)) if g.rng.random() < 0.1 else ""
    return {"instruction": q, "input": inp, "output": g.words(g.length(350, 0.6, 40, 2000))}


def cqia(kind: str):
    def make(g: Gen, i: int) -> dict:
        r = g.rng
        base = {"task_type": {"major": ["问答"], "minor": ["通用问答"]}, "domain": ["通用"],
                "metadata": "暂无元数据信息", "answer_from": "human", "human_verified": True, "copyright": "暂无版权信息"}
        if kind == "coig_exam":
            passage = g.words(g.length(700, 0.5, 150, 3000))
            letter = r.choice("ABCD")
            out = g.words(g.length(120, 0.5, 20, 500)) + (f"故选{letter}。" if r.random() < 0.6 else "")
            return {**base, "instruction": "阅读下面的文章，完成下面小题\n" + passage,
                    "input": g.words(40) + "下列说法正确的一项是（ ）", "output": out}
        if kind == "kaoyan":
            ans = r.choice(("A", "B", "C", "D", str(r.randint(2, 500)), f"\\frac{{{r.randint(1, 9)}}}{{{r.randint(10, 19)}}}"))
            return {**base, "instruction": g.words(g.length(160, 0.5, 40, 800)) + "则 $K^{\\ominus}=$ __?", "input": "",
                    "output": g.words(g.length(250, 0.5, 40, 1000)) + f"因此答案为：{ans}"}
        if kind == "coig_human":
            letter = r.choice("ABCD")
            opts = " ".join(f"{L}．“{g.words(15)}”" for L in "ABCD")
            return {**base, "instruction": f"{g.words(g.length(50, 0.4, 20, 200))}下列哪种方式最得体？{opts}", "input": "",
                    "output": g.words(g.length(150, 0.4, 40, 500)) + f"本题选{letter}。"}
        median = {"zhihu": 40, "xhs": 30, "ruozhiba": 18, "100poison": 35, "logi-qa": 200}[kind]
        return {**base, "instruction": g.words(g.length(median, 0.5, 8, 2000)), "input": "",
                "output": g.words(g.length(400, 0.6, 40, 3000))}
    return make


def neo(g: Gen, i: int) -> dict:
    turns = [{"from": "human", "value": g.words(g.length(120, 0.9, 8, 4000))},
             {"from": "gpt", "value": g.words(g.length(500, 0.7, 40, 4000))}]
    if g.rng.random() < 0.2:
        turns += [{"from": "human", "value": g.words(g.length(40, 0.6, 5, 400))},
                  {"from": "gpt", "value": g.words(g.length(300, 0.6, 20, 2000))}]
    return {"conversations": turns}


# repo_name -> (relative output file, format, record maker, question getter/setter)
FILES = {
    "meta-math/GSM8K_zh": ("gsm8k_zh/GSM8K_zh.json", "json", gsm8k_zh, "question_zh"),
    "EduChat-Math": ("educhat_math/train_data.jsonl", "jsonl", educhat, "question"),
    "gavinluo/applied_math": ("applied_math/valid.ape.json", "jsonl", applied_math, "original_text"),
    "Haijian/Advanced-Math": ("advanced_math/HJ_math.jsonl", "jsonl", advanced_math, "instruction"),
    "stem_zh/chem": ("stem_zh_instruction/chem_50839.json", "jsonl", stem, "instruction"),
    "stem_zh/bio": ("stem_zh_instruction/bio_50282.json", "jsonl", stem, "instruction"),
    "stem_zh/med": ("stem_zh_instruction/med_54617.json", "jsonl", stem, "instruction"),
    "stem_zh/phy": ("stem_zh_instruction/phy_50380.json", "jsonl", stem, "instruction"),
    "exam/coig_exam": ("coig_cqia/exam/coig_exam_sampled_clean_v3.jsonl", "jsonl", cqia("coig_exam"), "input"),
    "exam/kaoyan": ("coig_cqia/exam/kaoyan.jsonl", "jsonl", cqia("kaoyan"), "instruction"),
    "human_value/coig_human": ("coig_cqia/human_value/coig_human_value_multi_choice.jsonl", "jsonl",
                               cqia("coig_human"), "instruction"),
    "human_value/100poison": ("coig_cqia/human_value/100poison.jsonl", "jsonl", cqia("100poison"), "instruction"),
    "logi_qa/logi-qa": ("coig_cqia/logi_qa/logi-qa.jsonl", "jsonl", cqia("logi-qa"), "instruction"),
    "ruozhiba/ruozhiba_ruozhiba": ("coig_cqia/ruozhiba/ruozhiba_ruozhiba.jsonl", "jsonl", cqia("ruozhiba"), "instruction"),
    "xhs/xhs": ("coig_cqia/xhs/xhs.jsonl", "jsonl", cqia("xhs"), "instruction"),
    "zhihu/zhihu_score9.0-10_clean_v10": ("coig_cqia/zhihu/zhihu_score9.0-10_clean_v10.jsonl", "jsonl",
                                          cqia("zhihu"), "instruction"),
    "coig/neo": ("neo_sft_phase2/neo_sft_phase2.json", "json", neo, "conversations.0.value"),
}  # fmt: skip

ZHIHU_ENTRY = """
[[files]]
path = "{path}"
repo_name = "zhihu/zhihu_score9.0-10_clean_v10"
subset = "zhihu"
category = "General"
gold = ""
"""


def _get(rec: dict, path: str) -> str:
    cur = rec
    for part in path.split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def _set(rec: dict, path: str, value: str) -> None:
    parts = path.split(".")
    cur = rec
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    cur[parts[-1]] = value


def question_text(repo: str, rec: dict) -> str:
    """The prompt the manifest maps this record to."""
    if repo == "EduChat-Math":
        return f"{rec['question']}\n{rec['options']}"
    if "instruction" in rec and "input" in rec:
        return "\n".join(v for v in (rec["instruction"], rec["input"]) if v.strip())
    return _get(rec, FILES[repo][3])


def _variant(g: Gen, text: str) -> str:
    """Same text after normalization: extra spaces, full-width punctuation or digits."""
    r = g.rng
    choice = r.random()
    if choice < 0.4:
        return text.translate(_FULLWIDTH)
    if choice < 0.8:
        pos = r.randrange(len(text) + 1)
        return text[:pos] + r.choice((" ", "  ", "\u3000")) + text[pos:]
    return " " + text + "\n"


def _near(g: Gen, text: str) -> str:
    pos = g.rng.randrange(len(text))
    return text[:pos] + g.rng.choice("的了是在和有") + text[pos + 1:]


def generate(out: Path, scale: float, seed: int) -> dict:
    g = Gen(seed)
    data = out / "data"
    records: dict[str, list[dict]] = {}
    for repo, n in COUNTS.items():
        maker = FILES[repo][2]
        records[repo] = [maker(g, i) for i in range(max(1, round(n * scale)))]
    # planted duplicates: copies of existing prompts, often in another repo of the same kind
    pool = [(repo, i) for repo, recs in records.items() for i in range(len(recs))]
    total = len(pool)
    planted = {"exact_duplicates": 0, "near_duplicates": 0, "rejectable": 0}
    long_enough = [(repo, i) for repo, i in pool if len(_get(records[repo][i], FILES[repo][3])) >= 60]
    next_id = 3000000
    for kind, share, candidates in (("exact_duplicates", EXACT_DUP_SHARE, pool),
                                    ("near_duplicates", NEAR_DUP_SHARE, long_enough)):
        for repo, i in g.rng.sample(candidates, int(total * share)):
            change = _variant if kind == "exact_duplicates" else _near
            if g.rng.random() < 0.7:  # same repo: the whole record again, the question altered
                target, copy = repo, copy_module.deepcopy(records[repo][i])
                _set(copy, FILES[repo][3], change(g, _get(copy, FILES[repo][3])))
            else:  # another repo repeats the prompt
                target = g.rng.choice(["coig/neo", "xhs/xhs", "stem_zh/chem"])
                copy = FILES[target][2](g, 0)
                _set(copy, FILES[target][3], change(g, question_text(repo, records[repo][i])))
                if "input" in copy:
                    copy["input"] = ""
            if "id" in copy:
                copy["id"], next_id = str(next_id), next_id + 1
            records[target].append(copy)
            planted[kind] += 1
    for _ in range(int(round(COUNTS["EduChat-Math"] * scale * REJECT_SHARE))):  # image questions: quarantined
        rec = educhat(g, len(records["EduChat-Math"]) + 2000000)
        rec["question"] += "<ImageHere>"
        records["EduChat-Math"].append(rec)
        planted["rejectable"] += 1
    for _ in range(int(round(COUNTS["coig/neo"] * scale * REJECT_SHARE))):  # first turn not from the user
        rec = neo(g, 0)
        rec["conversations"][0]["from"] = "gpt"
        records["coig/neo"].append(rec)
        planted["rejectable"] += 1
    files: dict[str, dict] = {}
    for repo, recs in records.items():
        g.rng.shuffle(recs)
        rel, fmt, _, _ = FILES[repo]
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(recs, fh, ensure_ascii=False, indent=1)
            else:
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
        files[repo] = {"path": str(path), "rows": len(recs), "bytes": path.stat().st_size}
    write_manifests(out, data)
    return {"distinct_prompts": total, "planted": planted, "rows_written": sum(f["rows"] for f in files.values()),
            "bytes_written": sum(f["bytes"] for f in files.values()), "files": files}


def write_manifests(out: Path, data: Path) -> None:
    """Copy the repo's manifests, pointing every `path` at the generated files (absolute)."""
    dest = out / "sources"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for src in sorted((REPO_ROOT / "assets" / "sources").glob("*.toml")):
        text = src.read_text(encoding="utf-8")
        text = re.sub(r'^path = "samples/([^"]+)"', lambda m: f'path = "{(data / m.group(1)).as_posix()}"',
                      text, flags=re.MULTILINE)
        text = re.sub(r'^kind = "[^"]+"', 'kind = "synthetic"', text, count=1, flags=re.MULTILINE)
        if "coig_cqia" in text:
            text += ZHIHU_ENTRY.format(path=(data / FILES["zhihu/zhihu_score9.0-10_clean_v10"][0]).as_posix())
        (dest / src.name).write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the published 110,000 distinct prompts")
    parser.add_argument("--seed", type=int, default=20250219)
    args = parser.parse_args()
    start = time.perf_counter()
    summary = generate(args.out, args.scale, args.seed)
    summary.update(out=str(args.out), manifests=str(args.out / "sources"), scale=args.scale,
                   seconds=round(time.perf_counter() - start, 2))
    json.dump(summary, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
