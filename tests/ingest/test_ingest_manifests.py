"""Manifests are checked when read: every mistake is one line naming the manifest and the key, and
one bad manifest leaves the other sources (and the code location) working."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project import partitions
from dagster_project.lib.sources import manifest as manifest_module
from dagster_project.lib.sources.manifest import ManifestError, load_manifests, parse_manifest
from dagster_project.lib.verify import gold

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = REPO_ROOT / "assets" / "sources"

BASE = """key = "typo-test"
repo = "test/rows"
description = "rows for the manifest tests"
license = "mit"
online = { huggingface = "test/rows" }

[origin]
kind = "real"
note = "tests"

[defaults]
format = "jsonl"
native_id = "id"

[[files]]
path = "samples/applied_math/valid.ape.json"
repo_name = "test/rows"
category = "Math"
question = "original_text"
gold = "ans"
gold_format = "ape210k"

[[files.reject]]
field = "original_text"
contains = "<ImageHere>"
reason = "needs an image"
"""

# (what to replace, replacement, what the one-line error must say after "<file>: ")
TYPOS = [
    ('license = "mit"', 'licence = "mit"', "unknown key 'licence' (did you mean license?)"),
    ("[defaults]", "[defualts]", "unknown key 'defualts' (did you mean defaults?)"),
    ('native_id = "id"', 'native_idd = "id"', "[defaults]: unknown key 'native_idd' (did you mean native_id?)"),
    ('gold = "ans"', 'gold = "ans"\nnative_idd = "id"', "files[0]: unknown key 'native_idd' (did you mean native_id?)"),
    ('gold = "ans"', 'gold = "ans"\nencoding = "utf-9"', "files[0].encoding: unknown encoding 'utf-9'"),
    ('gold = "ans"', 'gold = "ans"\nencoding = "utf-16"', "files[0].encoding: encoding 'utf-16' is not ASCII-compatible"),
    ('gold_format = "ape210k"', 'gold_format = "ape21k"',
     "files[0].gold_format: 'ape21k' is not a valid gold format (did you mean ape210k?)"),
    ('category = "Math"', 'category = "math"', "files[0].category: 'math' is not a valid category (did you mean Math?)"),
    ('format = "jsonl"', 'format = "jsonlines"', "files[0].format: 'jsonlines' is not a valid format (did you mean jsonl?)"),
    ('kind = "real"', 'knd = "real"', "[origin]: unknown key 'knd' (did you mean kind?)"),
    ('kind = "real"', 'kind = "handwritten"', "origin.kind: 'handwritten' is not a valid origin kind (did you mean hand_written?)"),
    ('contains = "<ImageHere>"', 'contain = "<ImageHere>"', "files[0].reject[0]: unknown key 'contain' (did you mean contains?)"),
    ('reason = "needs an image"', "", "files[0].reject[0]: missing `reason`"),
    ('key = "typo-test"', f'key = "{"a" * 300}"', "key: 'aaaa"),
    ('key = "typo-test"', 'key = "My_Source"', "key: 'My_Source' must be 1-64 lowercase letters"),
    ('key = "typo-test"', 'key = "trailing-"', "key: 'trailing-' must be"),
    ('license = "mit"', 'license = "MIT License"', "license: 'MIT License' is not a license id"),
    ('license = "mit"', 'license = "other"', "license_note: required when license = \"other\""),
    ('license = "mit"', "", "missing `license`"),
    ('question = "original_text"', "question = 5", "files[0].question: expected a string, got an integer"),
    ('question = "original_text"', "question = []", "files[0].question: an empty list of fields"),
    ('gold = "ans"', 'gold = "ans"\nallow_empty = "yes"', "files[0].allow_empty: expected true or false, got a string"),
    ('online = { huggingface = "test/rows" }', "online = { huggingface = 5 }", "online.huggingface: expected a string"),
    ('repo = "test/rows"', 'repo = "test/rows"\nfiles = []', ""),  # TOML: `files` defined twice
    ('key = "typo-test"', 'key = "typo-test', ""),  # TOML syntax error
]


def _write(tmp_path: Path, text: str, name: str = "source.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_base_manifest_is_valid(tmp_path):
    m = parse_manifest(_write(tmp_path, BASE))
    assert m.key == "typo-test" and m.files[0].native_id == "id" and m.files[0].rules[0].reason == "needs an image"


@pytest.mark.parametrize("old,new,expected", TYPOS, ids=[f"{i}:{t[1][:24]}" for i, t in enumerate(TYPOS)])
def test_each_mistake_is_one_line_naming_the_manifest_and_key(tmp_path, old, new, expected):
    assert old in BASE
    path = _write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ManifestError) as exc:
        parse_manifest(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message and len(message) < 400


def test_every_gold_format_of_the_verifier_is_accepted(tmp_path):
    assert manifest_module.GOLD_FORMATS is gold.GOLD_FORMATS  # one list, owned by the verifier
    for fmt in (*gold.GOLD_FORMATS, "none"):
        path = _write(tmp_path, BASE.replace('gold_format = "ape210k"', f'gold_format = "{fmt}"'))
        assert parse_manifest(path).files[0].gold_format == fmt


def test_unreadable_manifests_are_one_line(tmp_path):
    bad = tmp_path / "gbk.toml"
    bad.write_bytes(BASE.replace("rows for", "给测试用的").encode("gbk"))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    for path in (bad, folder):
        with pytest.raises(ManifestError) as exc:
            parse_manifest(path)
        assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value)


def _manifest_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The bundled manifests plus four bad ones (named -> the text its error must hold)."""
    folder = tmp_path / "sources"
    shutil.copytree(BUNDLED, folder)
    (folder / "README.md").unlink()
    bad = {
        "typo.toml": ("[defaults]", "[defualts]", "did you mean defaults?"),
        "long-key.toml": ('key = "typo-test"', f'key = "{"k" * 300}"', "key: 'kkkk"),
        "syntax.toml": ('license = "mit"', 'license = mit"', "syntax.toml: "),
        "gold.toml": ('gold_format = "ape210k"', 'gold_format = "numbr"', "did you mean number?"),
    }
    for name, (old, new, _) in bad.items():
        text = BASE.replace(old, new, 1).replace('key = "typo-test"', f'key = "{name.removesuffix(".toml")}"')
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "zz-duplicate.toml").write_text(
        (BUNDLED / "educhat-math.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return folder, {name: want for name, (_, _, want) in bad.items()} | {"zz-duplicate.toml": "already used by"}


def test_one_bad_manifest_does_not_disable_the_others(tmp_path):
    folder, expected = _manifest_folder(tmp_path)
    loaded = load_manifests(folder)
    assert set(loaded.manifests) == set(load_manifests(BUNDLED).manifests) and len(loaded.manifests) == 7
    lines = loaded.error_lines()
    assert len(lines) == len(expected)
    for name, want in expected.items():
        [line] = [line for line in lines if line.startswith(str(folder / name))]
        assert want in line and "\n" not in line
    assert load_manifests(tmp_path / "nowhere").error_lines() == [f"{tmp_path / 'nowhere'}: the manifests folder does not exist"]


def test_a_command_naming_a_broken_source_is_told_why(tmp_path, monkeypatch):
    folder, _ = _manifest_folder(tmp_path)
    monkeypatch.setattr(partitions, "manifest_set", lambda: load_manifests(folder))
    with pytest.raises(ManifestError) as exc:
        partitions.manifest_for("typo")
    assert "source 'typo' is not available" in str(exc.value) and str(folder / "typo.toml") in str(exc.value)
    assert partitions.manifest_for("educhat-math").key == "educhat-math"
    assert len(partitions.manifest_errors()) == 5


_PROBE = """
import json, sys
import dagster as dg
from dagster_project import definitions
from dagster_project.lib.warehouse import connection_config
from dagster_project.partitions import source_partitions
from dagster_project.resources import WarehouseResource
keys = source_partitions.get_partition_keys()
raw = definitions.defs.resolve_assets_def("raw_prompts")
wh = WarehouseResource(database=sys.argv[1], connection_config=connection_config())
with dg.instance_for_test() as instance:
    result = dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key="meta-math-gsm8k-zh",
                            resources={**definitions.defs.resources, "warehouse": wh}, instance=instance)
[check] = result.get_asset_check_evaluations()
print(json.dumps({"keys": keys, "description": raw.descriptions_by_key[raw.key], "success": result.success,
                  "check": [check.check_name, check.passed, check.description]}))
"""


@pytest.mark.slow
def test_the_code_location_loads_and_reports_the_bad_manifests(tmp_path):
    folder, expected = _manifest_folder(tmp_path)
    env = {**os.environ, "DISTILL_SOURCES__MANIFESTS": str(folder), "DAGSTER_HOME": str(tmp_path),
           "DISTILL_WAREHOUSE__DIR": str(tmp_path / "warehouse")}
    shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", tmp_path / "dagster.yaml")
    validate = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert validate.returncode == 0 and "Validation successful" in validate.stdout + validate.stderr
    assert "source manifest not loaded" in validate.stdout + validate.stderr  # shown in the console too
    probe = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "wh.duckdb")], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    assert len(out["keys"]) == 7 and "typo" not in out["keys"] and out["success"]
    name, passed, description = out["check"]
    assert name == "source_manifests" and not passed
    for bad in expected:
        assert str(folder / bad) in description and str(folder / bad) in out["description"]
