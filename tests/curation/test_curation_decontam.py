import json

import pytest
from curation_testdata import EVAL_SETS, prompt_of

from dagster_project.lib.dedup.decontam import (
    EvalIndex,
    EvalItem,
    find_contamination,
    load_eval_sets,
)
from dagster_project.lib.dedup.shingles import normalize


@pytest.fixture(scope="module")
def eval_items():
    return load_eval_sets(EVAL_SETS)


def by_key(items):
    return {(item.set_name, item.item_id): item for item in items}


def test_shipped_eval_sets_load(eval_items):
    counts = {}
    for item in eval_items:
        counts[item.set_name] = counts.get(item.set_name, 0) + 1
        assert item.text.strip()
    assert counts == {"gsm8k_test": 100, "limo_gaokao": 79, "limo_grade_school_math": 210, "limo_kaoyan": 199}
    assert len(by_key(eval_items)) == len(eval_items)


def test_loader_format(tmp_path):
    (tmp_path / "mini.jsonl").write_text(
        json.dumps({"id": "q7", "question": "第一题"}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"question": "第二题", "answer": "ignored"}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "notes.md").write_text("not an eval set", encoding="utf-8")
    assert load_eval_sets(tmp_path) == [EvalItem("mini", "q7", "第一题"), EvalItem("mini", "2", "第二题")]

    (tmp_path / "bad.jsonl").write_text('{"id": "1", "prompt": "no question key"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="question"):
        load_eval_sets(tmp_path)


def lightly_edited(question: str) -> str:
    """Chinese punctuation to ASCII, spaces added, one character changed."""
    text = question.replace("，", ", ").replace("。", ". ").replace("(", " ( ")
    i = len(text) // 2
    return text[:i] + "某" + text[i + 1 :]


def test_planted_eval_questions_found_among_real_prompts(real_rows, eval_items):
    items = by_key(eval_items)
    gaokao_a = items[("limo_gaokao", "5")].text
    gaokao_b = items[("limo_gaokao", "20")].text
    kaoyan = items[("limo_kaoyan", "100")].text
    planted = {
        "planted-gaokao-5": lightly_edited(gaokao_a),
        "planted-gaokao-20": "请回答下面的高考题。\n" + lightly_edited(gaokao_b),
        "planted-kaoyan-100": kaoyan + "\n请一步步推理，并把最终答案放到 \\boxed{} 中。",
    }
    ids = [r["id"] for r in real_rows] + list(planted)
    texts = [prompt_of(r) for r in real_rows] + list(planted.values())

    result = find_contamination(ids, texts, eval_items).to_pylist()
    found = {(r["prompt_id"], r["eval_set"], r["eval_id"]) for r in result}
    assert ("planted-gaokao-5", "limo_gaokao", "5") in found
    assert ("planted-gaokao-20", "limo_gaokao", "20") in found
    assert ("planted-kaoyan-100", "limo_kaoyan", "100") in found
    assert {r["prompt_id"] for r in result} == set(planted)  # no real prompt flagged
    for row in result:
        assert 0.5 <= row["overlap"] <= 1.0
        assert len(row["matched_ngram"]) == 13
        assert row["matched_ngram"] in normalize(texts[ids.index(row["prompt_id"])])
        assert row["matched_ngram"] in normalize(items[(row["eval_set"], row["eval_id"])].text)
    kaoyan_row = next(r for r in result if r["prompt_id"] == "planted-kaoyan-100" and r["eval_id"] == "100")
    assert kaoyan_row["overlap"] == 1.0  # the eval item is the shorter text and fully contained


def test_real_contamination_between_coig_kaoyan_and_limo_kaoyan(kaoyan_rows, eval_items):
    ids = [r["id"] for r in kaoyan_rows]
    result = find_contamination(ids, [prompt_of(r) for r in kaoyan_rows], eval_items)
    pairs = set(zip(result.column("prompt_id").to_pylist(), result.column("eval_id").to_pylist()))
    assert {("exam/kaoyan:22", "43"), ("exam/kaoyan:23", "47"), ("exam/kaoyan:27", "53")} <= pairs
    assert set(result.column("prompt_id").to_pylist()) == set(ids)
    assert set(result.column("eval_set").to_pylist()) == {"limo_kaoyan"}


def test_overlap_uses_the_shorter_text_and_threshold():
    question = "甲乙两人同时从相距一百二十千米的两地出发相向而行甲每小时行十二千米乙每小时行八千米问几小时后相遇"
    items = [EvalItem("toy", "q1", question)]
    half = question[: len(question) // 2]
    fragment_result = find_contamination(["half"], [half], items).to_pylist()
    assert fragment_result[0]["overlap"] == 1.0  # the prompt is the shorter text, fully inside

    mixed = question[: len(question) // 3] + "完全无关的文字用来稀释重叠的比例" * 4
    rows = find_contamination(["mixed"], [mixed], items, min_overlap=0.0).to_pylist()
    assert 0 < rows[0]["overlap"] < 0.5
    assert find_contamination(["mixed"], [mixed], items).num_rows == 0


def test_index_reuse_and_ordering(eval_items):
    index = EvalIndex(eval_items)
    texts = ["无关的句子，没有任何重叠。", by_key(eval_items)[("limo_kaoyan", "0")].text]
    a = find_contamination(["clean", "dirty"], texts, index)
    b = find_contamination(["clean", "dirty"], texts, eval_items)
    assert a.equals(b)
    assert a.column("prompt_id").to_pylist()[0] == "dirty"
    overlaps = a.column("overlap").to_pylist()
    assert overlaps == sorted(overlaps, reverse=True)
    with pytest.raises(ValueError):
        find_contamination(["x"], ["y"], index, ngram=8)


def test_short_texts_match_only_when_identical():
    items = [EvalItem("toy", "s", "一加一等于几？")]
    result = find_contamination(["same", "other"], ["一加一等于几", "二加二等于几"], items)
    assert result.column("prompt_id").to_pylist() == ["same"]
