"""Uploading an export with huggingface_hub against a loopback Hub (hub_double.py): what arrives, and
what is refused."""

import pytest
from hub_double import HubDouble
from publish_testdata import TOKEN, files_of, make_export

from dagster_project.lib.export.hub import PublishError, plan_publish, publish, read_token
from dagster_project.lib.export.provenance import SourceRef


def plan(root, hub, version=None, repo_id="someone/zh-r1", **kw):
    return plan_publish(root, version=version, repo_id=repo_id, endpoint=hub.url, private=kw.pop("private", True),
                        commit_message=kw.pop("commit_message", "Publish export {version}"))


def test_upload_sends_every_file_of_the_version_in_one_private_commit(tmp_path, online):
    export = make_export(tmp_path, "v1", simulated=False)
    with HubDouble(TOKEN, lfs=False) as hub:  # every file "regular": the path a client with hf_xet takes here
        result = publish(plan(tmp_path, hub), TOKEN)
    repo = hub.repos["someone/zh-r1"]
    assert hub.create_payloads == [{"name": "zh-r1", "organization": "someone", "visibility": "private",
                                    "type": "dataset"}]
    expected = files_of(export.path)
    assert {p: d for p, d in repo.files.items() if p != ".gitattributes"} == expected
    assert set(expected) == {*export.manifest["files"], "manifest.json"}
    assert [c["summary"] for c in repo.commits] == ["Publish export v1"]
    assert result.commit_oid == repo.commits[0]["oid"] and result.commit_url.endswith(result.commit_oid)
    assert hub.authorization == {f"Bearer {TOKEN}"} and hub.unknown == []
    assert ("POST", "/api/validate-yaml") in hub.calls  # the card's YAML header was checked before uploading


def test_plain_lfs_upload_when_xet_is_off(tmp_path, online, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # what HF_HUB_DISABLE_XET=1 does
    export = make_export(tmp_path, "v1", simulated=False)
    with HubDouble(TOKEN, lfs=True) as hub:
        publish(plan(tmp_path, hub), TOKEN)
    repo = hub.repos["someone/zh-r1"]
    binaries = {p for p in files_of(export.path) if p.endswith((".parquet", ".png"))}
    assert binaries and repo.lfs_paths == binaries
    ops = repo.commits[0]["operations"]
    assert {p for kind, p in ops if kind == "lfsFile"} == binaries
    assert {p for kind, p in ops if kind == "file"} == set(files_of(export.path)) - binaries
    assert sum(1 for m, p in hub.calls if m == "PUT" and p.startswith("/lfs-upload/")) == len(binaries)
    assert {p: d for p, d in repo.files.items() if p != ".gitattributes"} == files_of(export.path)
    assert hub.unknown == []


def test_a_hub_without_xet_gives_a_hint(tmp_path, online):
    make_export(tmp_path, "v1", simulated=False)
    with HubDouble(TOKEN, lfs=True) as hub, pytest.raises(PublishError, match="HF_HUB_DISABLE_XET=1"):
        publish(plan(tmp_path, hub), TOKEN)
    assert any("xet" in path for _, path in hub.unknown)
    assert hub.repos["someone/zh-r1"].commits == []  # nothing committed


def test_a_new_version_replaces_the_old_files(tmp_path, online):
    make_export(tmp_path, "v1", simulated=False)  # license "other": writes LICENSE.md
    permissive = [SourceRef("m-a-p/COIG-CQIA", "m-a-p/COIG-CQIA", None, "mit",
                            categories={"logi_qa/logi-qa": "General", "exam/coig_exam": "Exam"})]
    v2 = make_export(tmp_path, "v2", simulated=False, sources=permissive, plots=False)
    with HubDouble(TOKEN, lfs=False) as hub:
        publish(plan(tmp_path, hub, "v1"), TOKEN)
        assert "LICENSE.md" in hub.repos["someone/zh-r1"].files
        publish(plan(tmp_path, hub, "v2", private=False), TOKEN)  # the repo exists: its visibility stays
    repo = hub.repos["someone/zh-r1"]
    assert {p: d for p, d in repo.files.items() if p != ".gitattributes"} == files_of(v2.path)
    assert ("deletedFile", "LICENSE.md") in repo.commits[1]["operations"]
    assert ("deletedFile", "plots/scores_by_category.png") in repo.commits[1]["operations"]
    assert repo.private and [c["summary"] for c in repo.commits] == ["Publish export v1", "Publish export v2"]


def test_errors_are_one_line_and_never_show_the_token(tmp_path, online):
    make_export(tmp_path, "v1", simulated=False)
    with HubDouble("hf_the_right_token_is_another_one", lfs=False) as hub:
        with pytest.raises(PublishError) as err:
            publish(plan(tmp_path, hub), TOKEN)
    message = str(err.value)
    assert "HTTP 401" in message and hub.url in message and "\n" not in message and TOKEN not in message


def test_offline_mode_is_named(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    make_export(tmp_path, "v1", simulated=False)
    with HubDouble(TOKEN) as hub, pytest.raises(PublishError, match="HF_HUB_OFFLINE"):
        publish(plan(tmp_path, hub), TOKEN)
    assert hub.calls == []


def test_plan_checks_the_export_before_anything_is_sent(tmp_path, monkeypatch):
    with HubDouble(TOKEN) as hub:
        with pytest.raises(PublishError, match="no export in"):
            plan(tmp_path, hub)
        export = make_export(tmp_path, "v1", simulated=True)
        assert plan(tmp_path, hub).version == "v1"  # LATEST
        with pytest.raises(PublishError, match="set \\[publish\\] repo_id"):
            plan(tmp_path, hub, repo_id="")
        with pytest.raises(PublishError, match="user-or-org/name"):
            plan(tmp_path, hub, repo_id="no-namespace")
        with pytest.raises(PublishError, match="export v9 not found"):
            plan(tmp_path, hub, "v9")
        simulated = plan(tmp_path, hub)
        assert "SIMULATED" in simulated.refusal(False) and simulated.refusal(True) is None
        with (export.path / "sft.jsonl").open("ab") as fh:
            fh.write(b"{}\n")
        with pytest.raises(PublishError, match="sft.jsonl: size or sha256 differs"):
            plan(tmp_path, hub)
        (export.path / "sft.jsonl").unlink()
        with pytest.raises(PublishError, match="sft.jsonl: listed in manifest.json but missing"):
            plan(tmp_path, hub)
    assert hub.calls == []

    monkeypatch.delenv("HF_TOKEN_FOR_TESTS", raising=False)
    with pytest.raises(PublishError, match="HF_TOKEN_FOR_TESTS is not set"):
        read_token("HF_TOKEN_FOR_TESTS")
    monkeypatch.setenv("HF_TOKEN_FOR_TESTS", f" {TOKEN}\n")
    assert read_token("HF_TOKEN_FOR_TESTS") == TOKEN
