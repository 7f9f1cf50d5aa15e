import itertools

import numpy as np
import pytest
from curation_testdata import prompt_of

from dagster_project.lib.dedup.near_dup import (
    DEFAULT_BANDS,
    DEFAULT_ROWS,
    MAX_FULL_BUCKET,
    candidate_probability,
    choose_bands,
    find_near_duplicates,
    minhash_signatures,
    similar_pairs,
)
from dagster_project.lib.dedup.shingles import jaccard, ngram_set, normalize

FILLER = "甲乙丙丁戊己庚辛壬癸"


def exact_similarity(a: str, b: str, n: int = 5) -> float:
    return jaccard(ngram_set(normalize(a), n), ngram_set(normalize(b), n))


def replace_chars(text: str, count: int, *, start: float = 0.1, stop: float = 0.9) -> str:
    """Replace ``count`` CJK characters spread over [start, stop] of the text with filler ones."""
    chars = list(text)
    cjk = [i for i, c in enumerate(chars) if "\u4e00" <= c <= "\u9fff"]
    window = cjk[int(len(cjk) * start) : int(len(cjk) * stop)]
    picks = [window[int(k * len(window) / count)] for k in range(count)] if count else []
    for k, i in enumerate(picks):
        chars[i] = FILLER[k % len(FILLER)] if chars[i] != FILLER[k % len(FILLER)] else "子"
    return "".join(chars)


def punctuation_noise(text: str) -> str:
    """Full-width ASCII, ASCII punctuation instead of Chinese, extra spaces and line breaks."""
    out = []
    for c in text:
        if "!" <= c <= "~":
            c = chr(ord(c) + 0xFEE0)
        out.append({"，": ", ", "。": ". \n", "？": "? ", "：": ": "}.get(c, c))
    return " ".join(["".join(out[: len(out) // 2]), "".join(out[len(out) // 2 :])])


def greedy_reference(texts: list[str], threshold: float) -> dict[int, tuple[int, float]]:
    """Brute-force the documented winner rule over all pairs."""
    grams = [ngram_set(normalize(t), 5) for t in texts]
    dropped: dict[int, tuple[int, float]] = {}
    for j in range(len(texts)):
        for i in range(j):
            if i not in dropped and jaccard(grams[i], grams[j]) >= threshold:
                dropped[j] = (i, jaccard(grams[i], grams[j]))
                break
    return dropped


@pytest.fixture(scope="module")
def planted(real_rows):
    originals = [prompt_of(r) for r in real_rows]
    long_ones = [i for i, t in enumerate(originals) if len(normalize(t)) >= 80][:15]
    edits = [lambda t: replace_chars(t, 2), punctuation_noise, lambda t: t + "请给出详细的解题过程。"]
    copies = [(i, edits[k % 3](originals[i])) for k, i in enumerate(long_ones)]
    ids = [r["id"] for r in real_rows] + [f"copy-of-{real_rows[i]['id']}" for i, _ in copies]
    texts = originals + [text for _, text in copies]
    return ids, texts, copies


def test_defaults_for_threshold_08():
    assert choose_bands(0.8, 128) == (DEFAULT_BANDS, DEFAULT_ROWS) == (21, 6)
    assert candidate_probability(0.8, 21, 6) > 0.995
    assert candidate_probability(0.3, 21, 6) < 0.02


def test_normalization_folds_width_case_space_and_punctuation():
    assert normalize("Ｈｅｌｌｏ，　世界！\n\t「Ｘ」") == "hello世界x"
    assert normalize("1+1=2，对吗？") == "1+1=2对吗"


def test_planted_near_duplicates_found_and_real_prompts_kept(planted):
    ids, texts, copies = planted
    for original, text in copies:  # the planted edits really are above the threshold
        assert exact_similarity(texts[original], text) >= 0.8

    result = find_near_duplicates(ids, texts)
    got = dict(zip(result.column("duplicate_id").to_pylist(), result.column("kept_id").to_pylist()))
    expected = {f"copy-of-{ids[i]}": ids[i] for i, _ in copies}
    assert got == expected
    assert set(got.values()).isdisjoint(got)  # never both kept and dropped
    assert all(s >= 0.8 for s in result.column("similarity").to_pylist())


def test_matches_brute_force_reference(planted):
    ids, texts, _ = planted
    result = find_near_duplicates(ids, texts)
    reference = greedy_reference(texts, 0.8)
    assert result.column("duplicate_id").to_pylist() == [ids[j] for j in sorted(reference)]
    assert result.column("kept_id").to_pylist() == [ids[reference[j][0]] for j in sorted(reference)]
    assert result.column("similarity").to_pylist() == pytest.approx([reference[j][1] for j in sorted(reference)])


def test_result_does_not_depend_on_seed_or_workers(planted):
    ids, texts, _ = planted
    base = find_near_duplicates(ids, texts)
    assert find_near_duplicates(ids, texts, seed=2, workers=1).equals(base)
    assert find_near_duplicates(ids, texts, workers=2).equals(base)


def test_threshold_is_respected(real_rows):
    base = max((prompt_of(r) for r in real_rows), key=lambda t: len(normalize(t)))
    variants = [replace_chars(base, k) for k in range(12)]
    sims = [exact_similarity(base, v) for v in variants]
    below = next(k for k, s in enumerate(sims) if s < 0.8)
    above = below - 1
    assert 0.8 <= sims[above] and 0.7 < sims[below] < 0.8

    merged = find_near_duplicates(["base", "above"], [base, variants[above]])
    assert merged.to_pylist() == [{"duplicate_id": "above", "kept_id": "base", "similarity": pytest.approx(sims[above])}]
    assert find_near_duplicates(["base", "below"], [base, variants[below]]).num_rows == 0
    assert find_near_duplicates(["base", "below"], [base, variants[below]], threshold=0.7).num_rows == 1


def test_order_is_priority(real_rows):
    text = prompt_of(real_rows[0])
    copy = replace_chars(text, 1)
    forward = find_near_duplicates(["a", "b"], [text, copy]).to_pylist()
    backward = find_near_duplicates(["b", "a"], [copy, text]).to_pylist()
    assert [(r["duplicate_id"], r["kept_id"]) for r in forward] == [("b", "a")]
    assert [(r["duplicate_id"], r["kept_id"]) for r in backward] == [("a", "b")]


def test_chain_does_not_propagate(real_rows):
    a = max((prompt_of(r) for r in real_rows), key=lambda t: len(normalize(t)))
    b = replace_chars(a, 3, start=0.0, stop=0.45)
    c = next(
        cand
        for cand in (replace_chars(b, k, start=0.55, stop=1.0) for k in range(1, 10))
        if exact_similarity(a, cand) < 0.8
    )
    assert exact_similarity(a, b) >= 0.8 and exact_similarity(b, c) >= 0.8 > exact_similarity(a, c)

    result = find_near_duplicates(["a", "b", "c"], [a, b, c]).to_pylist()
    assert [(r["duplicate_id"], r["kept_id"]) for r in result] == [("b", "a")]
    pairs = similar_pairs([a, b, c]).to_pylist()
    assert [(p["left"], p["right"]) for p in pairs] == [(0, 1), (1, 2)]
    # with b first, b absorbs both neighbours
    result = find_near_duplicates(["b", "a", "c"], [b, a, c]).to_pylist()
    assert [(r["duplicate_id"], r["kept_id"]) for r in result] == [("a", "b"), ("c", "b")]


def test_exact_and_short_and_empty_texts():
    ids = ["x1", "x2", "e1", "e2", "s1", "s2", "s3"]
    texts = ["ＡＢＣ，你好 世界！数学题", "abc你好世界数学题", "", "！！！。", "你好", "你好！", "您好"]
    result = find_near_duplicates(ids, texts).to_pylist()
    assert result == [
        {"duplicate_id": "x2", "kept_id": "x1", "similarity": 1.0},
        {"duplicate_id": "s2", "kept_id": "s1", "similarity": 1.0},
    ]


def test_many_copies_and_oversized_buckets(real_rows):
    text = max((prompt_of(r) for r in real_rows), key=lambda t: len(normalize(t)))
    cjk = [i for i, c in enumerate(text) if "\u4e00" <= c <= "\u9fff"]
    near = [text[:i] + "某" + text[i + 1 :] for i in cjk[: MAX_FULL_BUCKET + 30]]
    texts = [text] + near + [text] * 20 + [prompt_of(r) for r in real_rows[:10]]
    ids = [f"t{i}" for i in range(len(texts))]
    result = find_near_duplicates(ids, texts)
    assert result.num_rows == len(near) + 20
    assert set(result.column("kept_id").to_pylist()) == {"t0"}


def test_minhash_estimates_jaccard(real_rows):
    a = normalize(prompt_of(real_rows[0]))
    b = a[: len(a) // 2] + normalize(prompt_of(real_rows[1]))
    signature = minhash_signatures([a, b], num_perm=128)
    estimate = float(np.mean(signature[0] == signature[1]))
    assert abs(estimate - jaccard(ngram_set(a, 5), ngram_set(b, 5))) < 0.15


def test_input_validation():
    with pytest.raises(ValueError):
        find_near_duplicates(["a"], ["x", "y"])
    with pytest.raises(ValueError):
        find_near_duplicates(["a", "a"], ["x", "y"])
    with pytest.raises(ValueError):
        find_near_duplicates(["a"], ["x"], threshold=0.0)


def test_empty_input():
    result = find_near_duplicates([], [])
    assert result.num_rows == 0
    assert result.column_names == ["duplicate_id", "kept_id", "similarity"]


def test_no_false_positives_among_real_prompts(real_rows):
    texts = [prompt_of(r) for r in real_rows] + [r["output"] for r in real_rows]
    assert find_near_duplicates([str(i) for i in range(len(texts))], texts).num_rows == 0
    assert max(
        exact_similarity(x, y) for x, y in itertools.combinations([prompt_of(r) for r in real_rows], 2)
    ) < 0.5


def test_ngram_hashes_layout():
    from dagster_project.lib.dedup.shingles import ngram_hashes

    hashes, offsets = ngram_hashes(["abcdefg", "", "abc", "xxabcdefg"], 5)
    assert offsets.tolist() == [0, 3, 3, 4, 9]
    first, short, last = hashes[0:3], hashes[3], hashes[4:9]
    assert last[2:].tolist() == first.tolist()  # same n-grams, same hashes, across texts
    assert short not in set(first.tolist())  # a short text's whole-string hash is its own
    assert len(set(first.tolist())) == 3
