"""Only rows that passed the blocking checks are exported: a failed check stops the export in its run,
and `distill export` afterwards refuses instead of shipping the rows."""

import shutil

import duckdb

from tests.pipeline_fixture import FAKE_KEY, PipelineRun

PLANTED = f"连接数据库时用的密钥是 {FAKE_KEY}，请妥善保管。"


def test_a_failed_check_stops_every_export_path(pipeline_run, tmp_path):
    copy = PipelineRun(tmp_path, pipeline_run.warehouse, pipeline_run.simulator, tmp_path / "dagster_home", "", 0)
    shutil.copytree(pipeline_run.root / "warehouse", tmp_path / "warehouse")
    shutil.copytree(pipeline_run.home, tmp_path / "dagster_home")
    exports = tmp_path / "warehouse" / "exports"
    latest = (exports / "LATEST").read_text().strip()
    versions = {p.name for p in exports.iterdir()}
    with duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb")) as con:
        # the configured API key inside an answer that is in the SFT set
        con.execute("UPDATE r1_completions SET content = content || ? WHERE completion_id = "
                    "(SELECT completion_id FROM sft_balanced ORDER BY completion_id LIMIT 1)", [PLANTED])

    out = copy.distill("run", "--stage", "curate_and_export")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no_secrets" in out.stderr or "sft_export" in out.stderr
    assert (exports / "LATEST").read_text().strip() == latest and {p.name for p in exports.iterdir()} == versions

    out = copy.distill("export")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not exported" in out.stderr and "no_secrets (failed" in out.stderr
    assert (exports / "LATEST").read_text().strip() == latest and {p.name for p in exports.iterdir()} == versions
    for path in exports.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
