"""A prompt holding a secret is quarantined at ingestion and never reaches the R1 endpoint: real
Dagster runs of raw_prompts, the selection models and r1_completions against the simulator."""

import json

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bad_files import ROWS

import dagster_project.ingest.assets as ingest
from dagster_project import definitions
from dagster_project.config import config, reload_config
from dagster_project.lib.secrets import find_secrets, scan_table
from dagster_project.lib.sources.manifest import parse_manifest
from dagster_project.lib.text import to_fullwidth
from dagster_project.lib.warehouse import connection_config
from dagster_project.resources import R1Endpoint
from dagster_project.simulator.server import SimulatorSettings, prompt_sha, start_simulator_process
from tests.helpers import query, resources_for

CONFIGURED_KEY = "r1-endpoint-key-Qm7Zx2Lp9Wv4"  # the value of $R1_API_KEY in this test
SECRETS = {
    "k-jwt": "帮我解码 eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM",
    "k-zwsp": "这个 key 对吗：sk-abcdefghij\u200bklmnopqrstuvwxyz12",
    "k-fullwidth": "调用时用 " + to_fullwidth("sk-abcdefghijklmnopqrstuvwxyz0123") + " 可以吗",
    "k-configured": f"接口配置里写着 {CONFIGURED_KEY}，请帮我算 1+1",
    "k-gold": ROWS[5]["question"],  # the secret is in the gold answer (sent to the judge)
}
PLANTED = ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "sk-abcdefghij", "ｓｋ－ａｂｃ", "sk-abcdefghijklmnop",
           CONFIGURED_KEY, "ghp_abcdefghij"]


@pytest.fixture
def secret_source(tmp_path, monkeypatch):
    rows = [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in ROWS[:5]]
    rows += [{"id": key, "question": q, "answer": "ghp_abcdefghijklmnopqrstuvwxyz0123456789" if key == "k-gold" else "2"}
             for key, q in SECRETS.items()]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    manifest = tmp_path / "educhat-math.toml"
    manifest.write_text(f'key = "educhat-math"\nrepo = "EduChat-Math"\nlicense = "mit"\n[[files]]\n'
                        f'path = "{data}"\nformat = "jsonl"\nrepo_name = "EduChat-Math"\ncategory = "Math"\n'
                        'question = "question"\ngold = "answer"\ngold_format = "number"\nnative_id = "id"\n',
                        encoding="utf-8")
    monkeypatch.setattr(ingest, "manifest_for", lambda key: parse_manifest(manifest))
    monkeypatch.setenv(config().generation.api_key_env, CONFIGURED_KEY)
    monkeypatch.setenv("DISTILL_WAREHOUSE__DIR", str(tmp_path / "warehouse"))
    reload_config()
    yield
    monkeypatch.undo()
    reload_config()


def _tables(warehouse) -> dict[str, pa.Table]:
    con = duckdb.connect(warehouse.database, read_only=True, config=connection_config())
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {n: con.sql(f'SELECT * FROM "{n}"').to_arrow_table() for n in names}
    finally:
        con.close()


def _no_secret_in(table: pa.Table, where: str) -> None:
    assert scan_table(table) == [], where
    for column in table.column_names:
        if pa.types.is_string(table.schema.field(column).type):
            text = "\n".join(v for v in table.column(column).to_pylist() if v)
            assert not any(p in text for p in PLANTED), (where, column)


def test_a_prompt_holding_a_secret_is_never_sent(secret_source, warehouse, instance):
    result = dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key="educhat-math",
                            resources=resources_for(warehouse), instance=instance)
    assert result.success
    assert result.asset_materializations_for_node("raw_prompts")[0].metadata["rejected_by_reason"].value == \
        {"secret": len(SECRETS)}
    selection = dg.AssetSelection.assets("prompt_selection").upstream() - dg.AssetSelection.assets("raw_prompts")
    assert dg.materialize(definitions.defs.assets, selection=selection, resources=resources_for(warehouse),
                          instance=instance).success

    rejected = dict(query(warehouse, "SELECT source_line, reason FROM rejected_rows ORDER BY 1"))
    assert sorted(rejected) == [6, 7, 8, 9, 10]
    assert rejected[9].startswith("secret: a configured API key in field `question`")
    assert rejected[10].startswith("secret: github_token in field `answer`")
    selected = query(warehouse, "SELECT prompt_id, prompt_text FROM prompt_selection WHERE decision = 'selected'")
    assert len(selected) == 5 and all(not find_secrets(text) for _, text in selected)
    for name, table in _tables(warehouse).items():
        _no_secret_in(table, name)  # not in any column of any table: raw, staged, selected or rejected

    with start_simulator_process(SimulatorSettings(latency_scale=0.0)) as sim:
        r1 = {**resources_for(warehouse), "r1": R1Endpoint(base_url=sim.base_url)}
        assert dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key="educhat-math",
                              resources=r1, instance=instance).success
        stats = sim.stats()
    # Every request the endpoint saw is one of the five clean prompts, each sent once.
    assert stats["requests_per_prompt"] == {prompt_sha(text): 1 for _, text in selected}
    journal = sorted(config().journal_dir.rglob("*.parquet"))
    assert journal
    for part in journal:
        _no_secret_in(pq.read_table(part), str(part))
