"""No input vanishes: for every bad file, records in the file = loaded + rejected, each rejection
naming its file, line and reason, or the whole file is one error line naming it and its manifest."""

import pytest
from bad_files import FAKE_KEY, MAX_QUESTION_CHARS, SECRET_ROWS, Case, cases, manifest_text

from dagster_project.lib.secrets import find_secrets
from dagster_project.lib.sources.loader import SourceFileError, load_source
from dagster_project.lib.sources.manifest import parse_manifest


def _load(case: Case, tmp_path):
    data = tmp_path / case.filename
    case.write(data)
    manifest = tmp_path / "source.toml"
    manifest.write_text(manifest_text(case, data), encoding="utf-8")
    return data, manifest, lambda: load_source(parse_manifest(manifest), tmp_path, tmp_path,
                                               max_question_chars=MAX_QUESTION_CHARS, secret_values=[FAKE_KEY])


@pytest.mark.parametrize("case", [c for c in cases() if c.error is None], ids=lambda c: c.name)
def test_every_record_is_loaded_or_rejected(case, tmp_path):
    data, _, load = _load(case, tmp_path)
    result = load()
    assert result.prompts.num_rows == case.loaded
    [counts] = result.counts
    assert (counts.records, counts.loaded, counts.rejected) == (case.records, case.loaded, case.records - case.loaded)
    assert result.prompts.num_rows + result.rejected.num_rows == case.records
    rejected = result.rejected.to_pylist()
    assert all(r["source_file"].endswith(data.name) and r["source_line"] >= 1 and r["reason"] for r in rejected)
    got = sorted((r["source_line"], r["reason"]) for r in rejected)
    assert [line for line, _ in got] == sorted(line for line, _ in case.rejects), got
    for (line, reason), (want_line, prefix) in zip(got, sorted(case.rejects)):
        assert reason.startswith(prefix), (line, reason, prefix)
    assert all(r["source_file"].endswith(data.name) for r in result.prompts.to_pylist())
    assert len(set(result.prompts.column("prompt_id").to_pylist())) == case.loaded


@pytest.mark.parametrize("case", [c for c in cases() if c.error is not None], ids=lambda c: c.name)
def test_an_unusable_file_is_one_line_naming_it(case, tmp_path):
    data, manifest, load = _load(case, tmp_path)
    with pytest.raises(SourceFileError) as exc:
        load()
    message = str(exc.value)
    assert case.error in message and data.name in message and str(manifest) in message
    assert "\n" not in message and "Traceback" not in message


def test_the_same_files_load_again_when_allowed_or_fixed(tmp_path):
    """allow_empty turns an empty file (or a glob matching nothing) into zero rows, not an error."""
    empty = next(c for c in cases() if c.name == "empty_file_allowed")
    _, manifest, load = _load(empty, tmp_path)
    assert load().prompts.num_rows == 0
    text = manifest.read_text(encoding="utf-8").replace(str(tmp_path / empty.filename), str(tmp_path / "none-*.jsonl"))
    manifest.write_text(text, encoding="utf-8")
    assert load_source(parse_manifest(manifest), tmp_path, tmp_path).counts == []


def test_rejected_secrets_are_redacted_in_the_excerpt(tmp_path):
    case = next(c for c in cases() if c.name == "secrets")
    _, _, load = _load(case, tmp_path)
    rows = load().rejected.to_pylist()
    planted = ["sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv", FAKE_KEY, "S3cretPw", "Pg#2024!safe"]
    assert len(rows) == len(SECRET_ROWS) - 1
    for row in rows:
        stored = " ".join(str(v) for v in row.values())
        assert not any(secret in stored for secret in planted), row
        assert find_secrets(stored) == []
        assert "redacted" in row["raw_excerpt"]


def test_a_syntax_error_in_a_large_array_costs_one_record(tmp_path):
    """A 2,000-record pretty-printed array (real rows, nested objects) with three broken records."""
    import json

    from bad_files import ROWS
    records = [{"id": f"r{i}", "question": ROWS[i % len(ROWS)]["question"] + f" ({i})", "answer": "1",
                "meta": {"turns": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}}
               for i in range(2000)]
    text = json.dumps(records, ensure_ascii=False, indent=2)
    for i in (7, 999, 1998):  # an unterminated string, a missing value, a stray bracket
        marker = f'"id": "r{i}",'
        broken = {7: '"id": "r7,', 999: '"id": ,', 1998: '"id": "r1998"],'}[i]
        text = text.replace(marker, broken, 1)
    path = tmp_path / "big.json"
    path.write_text(text, encoding="utf-8")
    case = Case("big", "json", lambda p: None, 2000)
    manifest = tmp_path / "m.toml"
    manifest.write_text(manifest_text(case, path), encoding="utf-8")
    result = load_source(parse_manifest(manifest), tmp_path, tmp_path)
    assert result.prompts.num_rows == 1997 and result.rejected.num_rows == 3
    assert sorted(result.prompts.column("native_id").to_pylist()) == sorted(
        f"r{i}" for i in range(2000) if i not in (7, 999, 1998))
    assert all(r.startswith("malformed: JSON") for r in result.rejected.column("reason").to_pylist())
