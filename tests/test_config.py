"""The configuration schema: typos and wrong types are one-line errors naming the key; every knob is documented."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.config import DistillConfig, SettingsError, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
DISTILL_TOML = REPO_ROOT / "distill.toml"


def _with_line(tmp_path: Path, old: str, new: str) -> Path:
    text = DISTILL_TOML.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "distill.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_shipped_file_loads_and_hashes_stably() -> None:
    a, b = load_config(DISTILL_TOML, {}), load_config(DISTILL_TOML, {})
    assert a.hash() == b.hash() and len(a.hash()) == 16
    assert a.generation.kind == "r1" and a.judge.kind == "judge"


@pytest.mark.parametrize("old, new, expected", [
    ("max_cost_per_run = 0.0 ", "max_cost_per_runn = 5.0 ",
     "unknown key 'max_cost_per_runn' in [generation] (did you mean max_cost_per_run?)"),
    ("[curation]", "[curation]\nnear_dup_treshold = 0.7", "unknown key 'near_dup_treshold' in [curation] (did you mean near_dup_threshold?)"),
    ("[export]", "[exprot]", "unknown section [exprot] (did you mean export?)"),
    ("concurrency = 300 ", 'concurrency = "lots" ', "[generation] concurrency: expected an integer"),
    ("max_tokens = 32768 ", "max_tokens = 0 ", "[generation] max_tokens: input should be greater than or equal to 1"),
    ('think_prefix = "template"         #', 'think_prefix = "templat"         #', "[generation] think_prefix: input should be"),
    ("request_timeout_seconds = 3600 ", "request_timeout_seconds = -1 ", "[generation] request_timeout_seconds"),
])
def test_mistakes_in_the_file_are_one_line_naming_file_and_key(tmp_path, old, new, expected) -> None:
    path = _with_line(tmp_path, old, new)
    with pytest.raises(SettingsError) as info:
        load_config(path, {})
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message, message


@pytest.mark.parametrize("name, value, expected", [
    ("DISTILL_GENERATION__MAX_COST_PERRUN", "5", "unknown key 'max_cost_perrun' in [generation] (did you mean max_cost_per_run?)"),
    ("DISTILL_GENERATION__CONCURRENCY", "abc", "[generation] concurrency: expected an integer"),
    ("DISTILL_GENERATON__MODEL", "x", "unknown section [generaton] (did you mean generation?)"),
    ("DISTILL_JUDGE__API_KEY_ENV", "sk-live-0123456789abcdef", "the NAME of an environment variable, not a key"),
])
def test_mistakes_in_overrides_name_the_variable_and_never_echo_the_value(name, value, expected) -> None:
    with pytest.raises(SettingsError) as info:
        load_config(DISTILL_TOML, {name: value})
    message = str(info.value)
    assert message.startswith(name) and expected in message and value not in message.replace(name, ""), message


def test_overrides_keep_their_type_and_win() -> None:
    cfg = load_config(DISTILL_TOML, {"DISTILL_GENERATION__CONCURRENCY": "12", "DISTILL_GENERATION__LOOP_REASK": "false",
                                     "DISTILL_GENERATION__BASE_URL": "https://api.example.com/v1"})
    assert cfg.generation.concurrency == 12 and cfg.generation.loop_reask is False
    assert cfg.generation.base_url == "https://api.example.com/v1"


def test_a_url_with_a_credential_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as info:
        load_config(DISTILL_TOML, {"DISTILL_GENERATION__BASE_URL": "https://user:hunter2@api.example.com/v1"})
    assert "hunter2" not in str(info.value) and "https://api.example.com/v1" in str(info.value)


def test_every_key_of_the_schema_is_documented_in_distill_toml() -> None:
    text = DISTILL_TOML.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^\[(\w+)\][^\n]*\n(.*?)(?=^\[|\Z)", text, flags=re.S | re.M))
    for name, field in DistillConfig.model_fields.items():
        if field.exclude:
            continue
        model = field.annotation
        keys = set(re.findall(r"^(\w+)\s*=", sections.get(name, ""), flags=re.M))
        wanted = [k for k, f in model.model_fields.items() if k != "kind"]
        if name == "simulator":  # fault knobs are for tests and benchmarks; see simulator/settings.py
            wanted = ["host", "port", "reasoning_format", "p_correct", "latency_scale", "seed"]
        missing = [k for k in wanted if k not in keys]
        assert not missing, f"[{name}] keys not in distill.toml: {missing}"


def test_the_cli_reports_a_typo_in_one_line_with_exit_code_2(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DISTILL_GENERATION__MAX_COST_PERRUN": "5",
           "DAGSTER_HOME": str(tmp_path / "home"), "DISTILL_WAREHOUSE__DIR": str(tmp_path / "wh")}
    proc = subprocess.run([sys.executable, "-m", "dagster_project.cli.main", "plan"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISTILL_GENERATION__MAX_COST_PERRUN" in lines[0] and "max_cost_per_run" in lines[0]


def test_without_a_config_file_every_key_takes_its_default(tmp_path, monkeypatch) -> None:
    import dagster_project.config as config_module

    monkeypatch.setattr(config_module, "REPO_ROOT", tmp_path / "installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISTILL_CONFIG", raising=False)
    assert config_module.config_path() is None
    cfg = load_config(environ={})
    assert cfg == DistillConfig(root=tmp_path) and cfg.warehouse_dir == tmp_path / "warehouse"


@pytest.mark.slow
def test_a_wheel_carries_the_sql_models_contracts_manifests_and_prompts(tmp_path) -> None:
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"dagster_project/_data/{p.relative_to(REPO_ROOT)}" for folder in ("sql", "assets")
              for p in (REPO_ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    wanted |= {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "dagster_project").rglob("*.yml")}
    wanted.add("dagster_project/dagster.yaml")
    assert wanted and not wanted - names, sorted(wanted - names)[:5]
