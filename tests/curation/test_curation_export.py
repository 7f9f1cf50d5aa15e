import hashlib
import json
import re

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest
from curation_testdata import ROOT, prompt_of
from huggingface_hub import DatasetCard

from dagster_project.lib.export import card as card_module
from dagster_project.lib.export.provenance import category_by_repo, source_refs
from dagster_project.lib.export.writer import read_latest, write_export, write_jsonl
from dagster_project.lib.sources.manifest import load_manifests

SOURCES = source_refs(load_manifests(ROOT / "assets" / "sources").manifests.values())

MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@pytest.fixture(scope="module")
def tables(real_rows):
    rows = real_rows[:24]
    prompts = [prompt_of(r) for r in rows]
    reasoning = [f"嗯，我先读题。{p[:40]}……所以答案是这样。\n" for p in prompts]
    content = [r["output"] for r in rows]
    repos = [r["repo_name"] for r in rows]
    scores = [10 if i % 3 else 0 for i in range(len(rows))]
    prompt_len = [len(p) for p in prompts]
    reasoning_len = [len(x) * 2 for x in reasoning]
    content_len = [len(x) for x in content]
    raw = pa.table(
        {
            "input": prompts,
            "content": content,
            "reasoning_content": reasoning,
            "repo_name": repos,
            "prompt_tokens_len": pa.array(prompt_len, pa.int64()),
            "reasoning_content_tokens_len": pa.array(reasoning_len, pa.int64()),
            "content_tokens_len": pa.array(content_len, pa.int64()),
            "score": pa.array(scores, pa.int64()),
        }
    )
    sft = pa.table(
        {
            "instruction": prompts,
            "input": [""] * len(rows),
            "output": [f"<think>\n{r}</think>\n\n{c}" for r, c in zip(reasoning, content)],
            "repo_name": repos,
            "prompt_tokens_len": pa.array(prompt_len, pa.int64()),
            "reasoning_content_tokens_len": pa.array(reasoning_len, pa.int64()),
            "content_tokens_len": pa.array(content_len, pa.int64()),
            "score": pa.array(scores, pa.int64()),
        }
    )
    messages = pa.table(
        {
            "messages": pa.array(
                [[{"role": "user", "content": p}, {"role": "assistant", "content": c}] for p, c in zip(prompts, content)],
                MESSAGE_TYPE,
            ),
            "repo_name": repos,
            "score": pa.array(scores, pa.int64()),
        }
    )
    return {"raw": raw, "sft": sft, "messages": messages}


@pytest.fixture(scope="module")
def export(tables, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    result = write_export(
        tables,
        root,
        version="v1",
        manifest_extra={"simulated": True, "config_hash": "abc123", "source_commit": "deadbeef"},
        card={"title": "Test export", "summary": "A small export for tests.", "config": {"threshold": 0.8},
              "sources": SOURCES},
    )
    return root, result


def read_json_lines(path, schema):
    options = pa_json.ReadOptions(block_size=1 << 24)
    return pa_json.read_json(path, read_options=options, parse_options=pa_json.ParseOptions(explicit_schema=schema))


def test_files_round_trip(export, tables):
    root, result = export
    assert result.path == root / "v1" and result.version == "v1"
    for name, table in tables.items():
        assert pq.read_table(result.path / f"{name}.parquet").equals(table)
        assert read_json_lines(result.path / f"{name}.jsonl", table.schema).equals(table)
        first = (result.path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[0]
        assert list(json.loads(first)) == table.column_names  # keys in schema order
        assert "\\u" not in first  # ensure_ascii=False: Chinese written as UTF-8


def test_manifest_matches_files(export, tables):
    _, result = export
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == result.manifest
    assert manifest["version"] == "v1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created_at"])
    assert manifest["simulated"] is True and manifest["config_hash"] == "abc123"
    for name, table in tables.items():
        assert manifest["tables"][name]["rows"] == table.num_rows
        assert manifest["tables"][name]["columns"] == table.column_names
        assert manifest["files"][f"{name}.jsonl"]["rows"] == table.num_rows
    written = {p.relative_to(result.path).as_posix() for p in result.path.rglob("*") if p.is_file()}
    assert written - {"manifest.json"} == set(manifest["files"])
    for relative, info in manifest["files"].items():
        data = (result.path / relative).read_bytes()
        assert info["bytes"] == len(data)
        assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_atomic_layout_latest_and_refusal(export, tables):
    root, result = export
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "v1"]  # no temp or retired dirs
    assert read_latest(root) == "v1"
    before = (result.path / "manifest.json").read_bytes()
    with pytest.raises(FileExistsError):
        write_export(tables, root, version="v1", manifest_extra={})
    assert (result.path / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["LATEST", "v1"]


def test_overwrite_default_version_and_failure_cleanup(tables, tmp_path, monkeypatch):
    small = {"raw": tables["raw"].slice(0, 5)}
    first = write_export(small, tmp_path, manifest_extra={"run": 1})
    assert re.fullmatch(r"\d{8}T\d{6}Z", first.version)
    again = write_export(small, tmp_path, version=first.version, manifest_extra={"run": 2}, overwrite=True)
    assert again.manifest["run"] == 2
    assert {p.name for p in tmp_path.iterdir()} == {"LATEST", first.version}

    def broken(*args, **kwargs):
        raise RuntimeError("card failed")

    monkeypatch.setattr(card_module, "render", broken)
    with pytest.raises(RuntimeError):
        write_export(small, tmp_path, version="v-broken", manifest_extra={})
    assert {p.name for p in tmp_path.iterdir()} == {"LATEST", first.version}
    assert read_latest(tmp_path) == first.version

    with pytest.raises(ValueError):
        write_export(small, tmp_path, version="../escape", manifest_extra={})
    with pytest.raises(ValueError):
        write_export(small, tmp_path, version="v2", manifest_extra={"files": []})


def test_card_content(export, tables):
    _, result = export
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    card = DatasetCard.load(result.path / "README.md")
    assert card.data.language == ["zh"] and card.data.license == "other"  # COIG-CQIA's terms are not an id
    config_paths = {c["config_name"]: c["data_files"][0]["path"] for c in card.data.configs}
    assert config_paths == {"sft": "sft.parquet", "raw": "raw.parquet", "messages": "messages.parquet"}
    assert card.data.source_datasets == ["m-a-p/COIG-CQIA"]  # the only source with rows here
    assert "SIMULATED DATA: responses come from the project's simulator, not DeepSeek-R1" in readme

    categories = category_by_repo(SOURCES)  # from the manifests' [[files]] entries
    raw = tables["raw"]
    for repo in set(raw.column("repo_name").to_pylist()):
        count = raw.column("repo_name").to_pylist().count(repo)
        assert f"| {categories[repo]} | {repo} | {count} |" in readme
    assert "| prompt_tokens_len |" in readme and "| reasoning_content_tokens_len |" in readme

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert links == ["plots/scores_by_category.png", "plots/token_lengths_by_category.png"]
    for link in links:
        assert (result.path / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [caption for _, _, caption in card_module.figures(readme)] == [
        line.strip("*") for line in readme.splitlines() if line.startswith("*") and line.endswith("*")]
    assert '"prompt": "instruction"' in readme and 'load_dataset("json"' in readme
    assert "```json\n{\n  \"simulated\"" not in readme  # provenance is a list, not the manifest as JSON


def test_card_without_simulated_flag(tables, tmp_path):
    result = write_export({"sft": tables["sft"]}, tmp_path, version="real", manifest_extra={"simulated": False},
                          card={"sources": SOURCES, "generation_model": "deepseek-r1"})
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    assert "SIMULATED DATA" not in readme and "simulated" not in DatasetCard.load(result.path / "README.md").data.tags
    assert "answered by `deepseek-r1`" in readme
    assert "| Exam | exam/coig_exam |" in readme


def test_load_with_datasets(export, tables, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    import datasets

    _, result = export
    for name in ("raw", "sft", "messages"):
        for kind in ("json", "parquet"):
            suffix = "jsonl" if kind == "json" else "parquet"
            ds = datasets.load_dataset(
                kind, data_files=str(result.path / f"{name}.{suffix}"), split="train", cache_dir=str(tmp_path / "cache")
            )
            assert ds.num_rows == tables[name].num_rows
            assert ds.column_names == tables[name].column_names
    assert ds[0]["messages"][0]["role"] == "user"


def test_jsonl_streams_many_batches(tmp_path):
    table = pa.table({"text": [f"第{i}行，含“引号”与\\反斜杠" for i in range(2500)], "n": list(range(2500))})
    size, sha = write_jsonl(table, tmp_path / "t.jsonl")
    data = (tmp_path / "t.jsonl").read_bytes()
    assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    assert read_json_lines(tmp_path / "t.jsonl", table.schema).equals(table)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected_jsonl(table):
    """Today's serialisation, built independently of the exporter."""
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in table.to_pylist()).encode()


def test_streamed_export_matches_table_export(tables, tmp_path):
    import duckdb

    con = duckdb.connect()
    for name, table in tables.items():
        con.register(f"{name}_in", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_in")
    card = {"title": "Stream", "config": {"threshold": 0.8}}
    # The old path: whole tables read with to_arrow_table(); the new one: callables opening 5-row readers on
    # the same connection, which DuckDB only allows if each reader is drained or closed before the next opens.
    whole = {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in tables}
    streamed = {name: (lambda name=name: con.sql(f"SELECT * FROM {name}").to_arrow_reader(5)) for name in tables}
    a = write_export(whole, tmp_path / "a", version="v1", manifest_extra={"simulated": True}, card=card)
    b = write_export(streamed, tmp_path / "b", version="v1", manifest_extra={"simulated": True}, card=card)

    assert a.manifest["tables"] == b.manifest["tables"]
    for name, table in tables.items():
        assert b.manifest["tables"][name]["rows"] == table.num_rows == 24
        assert (b.path / f"{name}.jsonl").read_bytes() == _expected_jsonl(table)
    same = {k for k in a.manifest["files"] if k != "README.md"}
    assert same >= {"raw.jsonl", "raw.parquet", "messages.parquet", "plots/scores_by_category.png"}
    for relative in same:
        assert a.manifest["files"][relative] == b.manifest["files"][relative], relative
        assert _sha(a.path / relative) == _sha(b.path / relative) == b.manifest["files"][relative]["sha256"]
    readme_a = (a.path / "README.md").read_text("utf-8").replace(a.manifest["created_at"], "T")
    readme_b = (b.path / "README.md").read_text("utf-8").replace(b.manifest["created_at"], "T")
    assert readme_a == readme_b and "| reasoning_content_tokens_len |" in readme_b
    assert con.execute("SELECT count(*) FROM raw").fetchall() == [(24,)]  # no reader left open


def test_stream_of_many_batches_is_written_completely(tmp_path):
    rows = 40_000  # more than two Parquet row groups, fed in batches that do not divide them
    table = pa.table({
        "text": [f"第{i}行，含“引号”" for i in range(rows)],
        "repo_name": ["exam/kaoyan" if i % 3 else "coig/neo" for i in range(rows)],
        "score": pa.array([i % 11 for i in range(rows)], pa.int64()),
    })
    batches = table.to_batches(max_chunksize=3_000)
    assert len(batches) > 1
    reader = pa.RecordBatchReader.from_batches(table.schema, iter(batches))
    result = write_export({"raw": reader}, tmp_path, version="v1", card={"plots": False, "sources": SOURCES})

    assert (result.path / "raw.jsonl").read_bytes() == _expected_jsonl(table)
    assert result.manifest["files"]["raw.jsonl"]["rows"] == rows == result.manifest["tables"]["raw"]["rows"]
    parquet = pq.ParquetFile(result.path / "raw.parquet")
    groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
    assert groups == [16_384, 16_384, rows - 2 * 16_384]
    assert parquet.read().equals(table)
    pq.write_table(table, tmp_path / "ref.parquet", compression="zstd", row_group_size=16_384)
    assert _sha(result.path / "raw.parquet") == _sha(tmp_path / "ref.parquet")
    readme = (result.path / "README.md").read_text("utf-8")
    assert f"## Distribution (`raw`, {rows} rows)" in readme
    assert f"| Exam | exam/kaoyan | {rows - rows // 3 - 1} |" in readme


def test_failing_stream_leaves_nothing(tables, tmp_path):
    def broken():
        yield tables["raw"].to_batches()[0]
        raise RuntimeError("read failed")

    with pytest.raises(RuntimeError, match="read failed"):
        write_export({"raw": pa.RecordBatchReader.from_batches(tables["raw"].schema, broken())}, tmp_path,
                     version="v1")
    assert list(tmp_path.iterdir()) == []


def test_card_columns_are_copied_out_of_streamed_batches(tables, tmp_path):
    from dagster_project.lib.export import writer as export_module

    batches = tables["raw"].to_batches(max_chunksize=7)
    reader = pa.RecordBatchReader.from_batches(tables["raw"].schema, iter(batches))
    rows, schema, _, stats = export_module._write_table(reader, tmp_path, "raw", card_module.STATS_COLUMNS)
    assert rows == 24 and schema == tables["raw"].schema
    assert stats.column_names == ["repo_name", "prompt_tokens_len", "reasoning_content_tokens_len",
                                  "content_tokens_len", "score"]
    assert stats.equals(tables["raw"].select(stats.column_names))
    # Sharing a buffer would keep each whole (wide) batch alive until the card is written.
    source = {buf.address for batch in batches for col in batch.columns for buf in col.buffers() if buf is not None}
    kept = {buf.address for chunk in stats.columns for col in chunk.chunks for buf in col.buffers() if buf is not None}
    assert not source & kept
