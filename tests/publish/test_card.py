"""The dataset card: parsed back with huggingface_hub, its license following the source manifests."""

import re
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard
from publish_testdata import SOURCES, make_export

from dagster_project.lib.export.card import figures, inline_markdown
from dagster_project.lib.export.provenance import (
    SourceRef,
    combine_licenses,
    reference_ref,
    source_refs,
)
from dagster_project.lib.sources.manifest import load_manifests

REFERENCE = reference_ref("Congliu/Chinese-DeepSeek-R1-Distill-data-110k", "apache-2.0")


def write_manifest(folder: Path, key: str, repo: str, license: str, repo_name: str, category: str,
                   note: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{key}.toml").write_text(f'''key = "{key}"
repo = "{repo}"
license = "{license}"
license_note = "{note}"
online = {{ huggingface = "{repo}" }}

[[files]]
path = "samples/x/*.jsonl"
format = "jsonl"
repo_name = "{repo_name}"
category = "{category}"
question = "instruction"
''', encoding="utf-8")


def test_card_metadata_parses_with_huggingface_hub(tmp_path):
    result = make_export(tmp_path, "v1", simulated=False, hub_repo_id="someone/zh-r1",
                         sources=[*SOURCES, REFERENCE])
    card = DatasetCard.load(result.path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "other" and data["license_name"] and data["license_link"] == "LICENSE.md"
    # Only the sources with rows in the export, then the reference dataset.
    assert data["source_datasets"] == ["m-a-p/COIG-CQIA", "Congliu/Chinese-DeepSeek-R1-Distill-data-110k"]
    assert data["size_categories"] == ["n<1K"] and data["task_categories"] == ["text-generation"]
    configs = {c["config_name"]: c for c in data["configs"]}
    assert configs["sft"]["default"] is True
    assert {n: c["data_files"] for n, c in configs.items()} == {
        "sft": [{"split": "train", "path": "sft.parquet"}], "raw": [{"split": "train", "path": "raw.parquet"}]}
    for c in configs.values():
        assert (result.path / c["data_files"][0]["path"]).is_file()
    # LICENSE.md spells out each source's terms, and is in the manifest like every written file.
    terms = (result.path / "LICENSE.md").read_text(encoding="utf-8")
    assert "m-a-p/COIG-CQIA" in terms and "non-commercial" in terms
    assert "LICENSE.md" in result.manifest["files"]
    text = card.text
    assert 'load_dataset("someone/zh-r1", "sft", split="train")' in text
    assert "@misc{m_a_p_coig_cqia," in text and "@misc{congliu_chinese_deepseek_r1_distill_data_110k," in text
    assert "answered by `deepseek-r1`" in text


def test_one_non_commercial_source_makes_the_card_non_commercial(tmp_path):
    manifests = tmp_path / "sources"
    write_manifest(manifests, "alpha", "org/alpha", "mit", "alpha/all", "Math")
    write_manifest(manifests, "beta", "org/beta", "cc-by-nc-4.0", "beta/all", "General", "research use only")
    write_manifest(manifests, "gamma", "org/gamma", "apache-2.0", "gamma/all", "STEM")
    refs = source_refs(load_manifests(manifests).manifests.values())
    repos = ["alpha/all", "beta/all", "gamma/all"] * 10
    result = make_export(tmp_path / "out", "v1", simulated=False, sources=[*refs, REFERENCE], repo_names=repos)
    card = DatasetCard.load(result.path / "README.md")
    assert card.data.license == "cc-by-nc-4.0"
    assert card.data.get("license_name") is None and not (result.path / "LICENSE.md").exists()
    assert card.data.source_datasets == ["org/alpha", "org/beta", "org/gamma", REFERENCE.hub_id]
    assert "`cc-by-nc-4.0` is the most restrictive" in card.text
    # Categories come from the manifests' [[files]] entries.
    for repo, category in (("alpha/all", "Math"), ("beta/all", "General"), ("gamma/all", "STEM")):
        assert f"| {category} | {repo} | 10 |" in card.text

    # Without rows from the non-commercial source, its terms do not apply.
    permissive = make_export(tmp_path / "out", "v2", simulated=False, sources=refs,
                             repo_names=["alpha/all", "gamma/all"] * 15)
    card = DatasetCard.load(permissive.path / "README.md")
    assert card.data.license == "apache-2.0" and card.data.source_datasets == ["org/alpha", "org/gamma"]


@pytest.mark.parametrize(("licenses", "expected"), [
    (["mit", "mit"], "mit"),
    (["mit", "apache-2.0", "bsd-3-clause"], "apache-2.0"),
    (["apache-2.0", "cc-by-sa-4.0"], "cc-by-sa-4.0"),
    (["cc-by-sa-4.0", "gpl-3.0"], "other"),   # same rank, different terms: no single id
    (["mit", "unknown"], "other"),
    (["mit", "llama2"], "other"),             # an id this card cannot rank
    (["cc-by-nc-4.0", "cc-by-nc-nd-4.0"], "cc-by-nc-nd-4.0"),
])
def test_license_combination(licenses, expected):
    refs = [SourceRef(name=f"s{i}", hub_id=None, url=None, license=lic) for i, lic in enumerate(licenses)]
    decision = combine_licenses(refs)
    assert decision.license == expected
    assert (decision.license_name is not None) == (expected == "other")
    if expected == "other":
        assert any(name in decision.reason for name in ("s0", "s1", "gpl-3.0"))


def test_a_configured_license_is_stated_as_given(tmp_path):
    result = make_export(tmp_path, "v1", simulated=False, license="cc-by-nc-sa-4.0")
    card = DatasetCard.load(result.path / "README.md")
    assert card.data.license == "cc-by-nc-sa-4.0" and "[export] license" in card.text


def test_a_simulated_card_claims_no_model_answered(tmp_path):
    result = make_export(tmp_path, "v1", simulated=True, judge_model="qwen2.5-72b-instruct")
    card = DatasetCard.load(result.path / "README.md")
    banner_and_summary = card.text.split("## Files")[0]
    assert "SIMULATED DATA" in banner_and_summary
    assert "answered by" not in card.text and "were not called" in banner_and_summary
    assert "simulated" in card.data.tags and "deepseek-r1" not in card.data.tags


def test_inline_markdown_carries_the_plots_and_the_header(tmp_path):
    result = make_export(tmp_path, "v1", simulated=True)
    readme = (result.path / "README.md").read_text(encoding="utf-8")
    plots = figures(readme)
    assert [path for _, path, _ in plots] == ["plots/scores_by_category.png", "plots/token_lengths_by_category.png"]
    assert all(caption.strip() for _, _, caption in plots)
    md = inline_markdown(readme, result.path)
    assert "](plots/" not in md and not md.startswith("---")
    images = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert len(images) == 2
    import base64
    assert base64.b64decode(images[0]) == (result.path / "plots/scores_by_category.png").read_bytes()
    assert "```yaml\n" in md and "license: other" in md.split("## YAML header")[1]


def test_preview_page_shows_the_header_and_the_rendered_body(tmp_path):
    from dagster_project.lib.export.preview import card_html

    result = make_export(tmp_path, "v1", simulated=True)
    page = card_html(result.path)
    assert f'<base href="{result.path.resolve().as_uri()}/">' in page
    assert "<b>license</b>other (mixed-source-terms, see LICENSE.md)" in page
    assert "<table>" in page and '<img alt="final score per category" src="plots/scores_by_category.png"' in page
    assert "<h2>Sources and licenses</h2>" in page and "---" not in page.split("<body>")[1][:200]
