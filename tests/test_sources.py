"""Source manifests and the native-row loader."""

import json
from pathlib import Path

import pytest

from dagster_project.lib.sources.loader import SourceFileError, load_source
from dagster_project.lib.sources.manifest import (
    CATEGORIES,
    ManifestError,
    parse_manifest,
)
from dagster_project.partitions import source_manifests

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "assets"

EXPECTED_REPOS = {
    "Haijian/Advanced-Math", "gavinluo/applied_math", "meta-math/GSM8K_zh", "EduChat-Math",
    "m-a-p/COIG-CQIA", "m-a-p/neo_sft_phase2", "hfl/stem_zh_instruction",
}


def test_one_manifest_per_published_source_repo():
    manifests = source_manifests()
    assert {m.repo for m in manifests.values()} == EXPECTED_REPOS
    for key, m in manifests.items():
        assert key == m.key and key.replace("-", "").isalnum() and key.islower()
        assert all(f.category in CATEGORIES for f in m.files)


def test_repo_names_follow_the_published_dataset():
    names = {f.repo_name: f.category for m in source_manifests().values() for f in m.files}
    assert names["exam/kaoyan"] == "Exam" and names["human_value/coig_human"] == "Exam"
    assert names["ruozhiba/ruozhiba_ruozhiba"] == "General" and names["coig/neo"] == "General"
    assert {n for n in names if n.startswith("stem_zh/")} == {"stem_zh/chem", "stem_zh/bio", "stem_zh/med", "stem_zh/phy"}


@pytest.mark.parametrize("key", sorted(source_manifests()))
def test_every_bundled_source_loads(key):
    result = load_source(source_manifests()[key], ASSETS, REPO_ROOT)
    assert result.prompts.num_rows > 0
    rows = result.prompts.to_pylist()
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    assert all(r["question"].strip() for r in rows)
    assert all(json.loads(r["native_record"]) for r in rows)


def test_question_template_keeps_the_source_text():
    rows = load_source(source_manifests()["educhat-math"], ASSETS, REPO_ROOT).prompts.to_pylist()
    first = next(r for r in rows if r["native_id"] == "h0001")
    assert first["question"].endswith("( )\nA. $\\{1\\}$\nB. $\\{2,3\\}$\nC. $\\{1,2,3,4\\}$\nD. $\\{4\\}$")
    fill_in = next(r for r in rows if r["native_id"] == "h0005")
    assert fill_in["question"].endswith("______.\n")  # no options: a bare newline, as published


def _broken_manifest(tmp_path: Path) -> Path:
    data = tmp_path / "broken.jsonl"
    lines = [
        json.dumps({"id": "1", "question": "好的问题", "answer": "1"}, ensure_ascii=False).encode(),
        b'{"id": "2", "question": "unterminated',
        "{\"id\": \"3\", \"question\": \"编码错误\"}".encode("gbk"),
        json.dumps({"id": "4", "answer": "no question"}).encode(),
        json.dumps({"id": "5", "question": "   "}).encode(),
        json.dumps({"id": "1", "question": "同一个编号", "answer": "2"}, ensure_ascii=False).encode(),
        b"[1, 2, 3]",
        json.dumps({"question": "没有编号"}, ensure_ascii=False).encode(),
    ]
    data.write_bytes(b"\n".join(lines) + b"\n")
    manifest = tmp_path / "broken.toml"
    manifest.write_text(f"""
key = "educhat-math"
repo = "EduChat-Math"
license = "bsd-3-clause"
[[files]]
path = "{data}"
format = "jsonl"
repo_name = "EduChat-Math"
category = "Math"
question = "question"
gold = "answer"
gold_format = "number"
native_id = "id"
""", encoding="utf-8")
    return manifest


def test_bad_rows_are_quarantined_with_file_line_and_reason(tmp_path):
    manifest = parse_manifest(_broken_manifest(tmp_path))
    result = load_source(manifest, ASSETS, REPO_ROOT)
    assert [r["native_id"] for r in result.prompts.to_pylist()] == ["1"]
    rejected = {r["source_line"]: r["reason"] for r in result.rejected.to_pylist()}
    assert result.counts[0].records == 8 and result.counts[0].loaded == 1 and result.counts[0].rejected == 7
    assert rejected[2].startswith("malformed: JSON: Unterminated string")
    assert rejected[3].startswith("encoding: not valid utf-8: byte 0xb1 at column 26")
    assert rejected[4] == "missing field: `question`"
    assert rejected[5].startswith("empty question")
    assert rejected[6].startswith("duplicate: native id '1' already used at") and "broken.jsonl:1" in rejected[6]
    assert rejected[7].startswith("malformed: expected a JSON object")
    assert rejected[8] == "missing field: native id `id`"
    assert result.prompts.num_rows + result.rejected.num_rows == 8  # nothing vanished
    assert all(r["source_file"].endswith("broken.jsonl") for r in result.rejected.to_pylist())


def test_missing_source_file_names_the_path_and_manifest(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('key = "x"\nrepo = "X"\nlicense = "mit"\n[[files]]\npath = "nowhere/rows.jsonl"\n'
                    'format = "jsonl"\nrepo_name = "X"\ncategory = "Math"\nquestion = "q"\n')
    with pytest.raises(SourceFileError) as exc:
        load_source(parse_manifest(path), ASSETS, REPO_ROOT)
    assert "nowhere/rows.jsonl" in str(exc.value) and str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_manifest_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('key = "x"\nrepo = "X"\nlicense = "mit"\n[[files]]\npath = "a"\nformat = "xml"\n'
                    'repo_name = "X"\ncategory = "Math"\nquestion = "q"\n')
    with pytest.raises(ManifestError, match=r"bad.toml: files\[0\].format: 'xml' is not a valid format"):
        parse_manifest(path)


def test_prompt_ids_do_not_depend_on_load_order_or_machine():
    m = source_manifests()["m-a-p-coig-cqia"]
    a = load_source(m, ASSETS, REPO_ROOT).prompts.column("prompt_id").to_pylist()
    b = load_source(m, ASSETS, REPO_ROOT).prompts.column("prompt_id").to_pylist()
    assert a == b
    # Known value: pins the id recipe, so a change to it cannot go unnoticed.
    from dagster_project.lib.sources.loader import prompt_id
    assert prompt_id("educhat-math", "EduChat-Math", "h0001", "ignored") == \
        __import__("hashlib").sha256("educhat-math\x1fEduChat-Math\x1fid:h0001".encode()).hexdigest()[:16]
