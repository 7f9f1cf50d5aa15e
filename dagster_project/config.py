"""The project's one configuration schema: `distill.toml` plus `DISTILL_<SECTION>__<KEY>` overrides.

Every section is a pydantic model with `extra="forbid"`: an unknown key or a value of the wrong
type is an error when the file is loaded, reported in one line that names the file (or the
environment variable), the key and, for a typo, the closest valid key. Defaults live here and
nowhere else; Dagster resources and run config are derived from these models.

`DISTILL_CONFIG` selects another file. An override's value is parsed as TOML when it can be
(`DISTILL_GENERATION__CONCURRENCY=64` is an integer), otherwise taken as a string. Relative
paths are relative to the directory of the config file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dagster_project.lib.export.provenance import HUB_ID as _HUB_ID
from dagster_project.lib.llm.types import EndpointConfig
from dagster_project.simulator.settings import SimulatorServe

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = Path(__file__).resolve().parent / "_data"  # wheels carry sql/ and assets/ here
ENV_PREFIX = "DISTILL_"


class SettingsError(ValueError):
    """A configuration mistake, reported as one clear line."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class WarehouseSettings(Section):
    dir: str = Field("warehouse", description="runtime output (git-ignored): the DuckDB file, journal, exports")
    database: str = Field("warehouse.duckdb", description="the DuckDB file inside `dir`")
    lock_timeout_seconds: float = Field(900.0, gt=0, description="how long a writer waits for the warehouse lock")
    memory_limit: str = Field("2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
                              description="DuckDB memory_limit for every connection (it spills to disk past it)")
    threads: int = Field(2, ge=1, description="DuckDB threads for every connection")


class SourcesSettings(Section):
    manifests: str = Field("assets/sources", description="folder with one manifest per source repo")
    seeds: str = Field("assets/seeds", description="folder of CSV seeds loaded as tables")
    eval_sets: str = Field("assets/eval_sets", description="evaluation sets prompts are decontaminated against")
    prompts: str = Field("assets/prompts", description="judge prompt templates")
    math_suffix: str = Field("请一步步推理，并把最终答案放到 \\boxed{}。",
                             description="appended to the request (never to the stored input) where the seed says so")
    selection_seed: int = Field(20250219, description="seeds the deterministic choice when a category is over quota")
    max_question_chars: int = Field(20000, ge=1, le=1_000_000,
                                    description="longer questions are quarantined at ingestion, never sent")


class GenerationSettings(EndpointConfig):
    """`[generation]`: the R1 endpoint (EndpointConfig) plus what the generation stage does with it."""

    samples_per_prompt: int = Field(1, ge=1, description="n samples per prompt, for rejection sampling")
    max_requests_per_run: int = Field(0, ge=0, description="spending guard: requests sent per run, 0 = no cap")
    max_cost_per_run: float = Field(0.0, ge=0, description="spending guard: cost per run, 0 = no cap (each request "
                                    "reserves its worst case when sent: the cap is passed by one request at most)")
    expected_output_tokens: int = Field(3000, ge=1, description="`distill plan` estimate of output tokens per request")


class JudgeSettings(EndpointConfig):
    """`[judge]`: the judge endpoint plus how the judge stage uses it."""

    model: str = Field("qwen2.5-72b-instruct", min_length=1, description="model name sent with every request")
    api_key_env: str = Field("JUDGE_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="name of the environment variable holding the API key (never the key)")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(1024, ge=1, description="output token budget per request")
    stream: bool = Field(False, description="stream the response (server-sent events)")
    concurrency: int = Field(64, ge=1, description="requests in flight at most")
    min_concurrency: int = Field(2, ge=1, description="flow control never goes below this")
    request_timeout_seconds: float = Field(600.0, gt=0, description="total deadline per attempt")
    max_attempts: int = Field(4, ge=1, description="attempts per request, retries included")
    kind: Literal["r1", "judge"] = Field("judge", description="r1 (reasoning traces) or judge")
    loop_reask: bool = Field(False, description="after a loop, ask once more as another sample (the judge stage "
                                                "asks again itself when a score cannot be read)")
    structured_output: bool = Field(True, description="send a JSON schema as response_format")
    reasoning_excerpt_tokens: int = Field(1024, ge=0, description="how much of the R1 reasoning the judge sees")
    judge_audit_fraction: float = Field(0.05, ge=0.0, le=1.0,
                                        description="share of Math-Verify-decided rows also judged, to measure agreement")


class VerificationSettings(Section):
    workers: int = Field(0, ge=0, description="Math-Verify worker processes, 0 = all cores")
    item_timeout_seconds: float = Field(20.0, gt=0, description="hard wall-clock limit per item (the worker is killed)")
    parse_timeout_seconds: int = Field(5, ge=1, description="Math-Verify's own (signal based) timeout, whole seconds")


class CurationSettings(Section):
    near_dup_threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard over character n-grams")
    near_dup_ngram: int = Field(5, ge=1, description="n of the character n-grams")
    response_dup_threshold: float = Field(0.9, gt=0.0, le=1.0, description="Jaccard for near-identical responses")
    decontam_ngram: int = Field(13, ge=1, description="n-gram length matched against evaluation sets")
    decontam_min_overlap: float = Field(0.5, gt=0.0, le=1.0, description="share of a prompt's n-grams found in an item")
    min_chinese_ratio: float = Field(0.3, ge=0.0, le=1.0, description="language check on answers to Chinese prompts; 0 = off")
    balance_seed: int = Field(7, description="seeds the deterministic choice within a category")
    balance_mode: Literal["ratios", "counts"] = Field(
        "ratios", description="ratios: keep the target distribution; counts: up to each target_rows")


_LICENSE_ID = r"^[a-z0-9][a-z0-9.+-]*$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ExportSettings(Section):
    license: str = Field("auto", pattern=_LICENSE_ID,
                         description="auto: the most restrictive of the sources' licenses (their manifests) and the "
                                     "reference dataset's; or a Hugging Face license id to state instead")
    reference_dataset: str = Field("Congliu/Chinese-DeepSeek-R1-Distill-data-110k", pattern=f"^{_HUB_ID}$",
                                   description="the Hub dataset whose schema and category targets the export follows")
    reference_license: str = Field("apache-2.0", pattern=_LICENSE_ID, description="the reference dataset's license id")


class PublishSettings(Section):
    """`[publish]`: where `distill publish` (and the publish_to_hub job) uploads an export version."""

    repo_id: str = Field("", pattern=f"^({_HUB_ID})?$",
                         description="the Hub dataset repo, `user-or-org/name`; empty: give it with --repo-id")
    token_env: str = Field("HF_TOKEN", pattern=_ENV_NAME,
                           description="NAME of the environment variable holding a Hub write token (never the token)")
    endpoint: str = Field("https://huggingface.co", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
                          description="the Hub's base URL, like HF_ENDPOINT")
    private: bool = Field(True, description="create the repo private (an existing repo keeps its visibility)")
    commit_message: str = Field("Publish export {version}", min_length=1, max_length=200,
                                description="commit message; {version} becomes the export version")


class DistillConfig(Section):
    """The whole configuration. `root` is where relative paths start (the config file's folder)."""

    warehouse: WarehouseSettings = WarehouseSettings()
    sources: SourcesSettings = SourcesSettings()
    generation: GenerationSettings = GenerationSettings()
    judge: JudgeSettings = JudgeSettings()
    verification: VerificationSettings = VerificationSettings()
    curation: CurationSettings = CurationSettings()
    export: ExportSettings = ExportSettings()
    publish: PublishSettings = PublishSettings()
    simulator: SimulatorServe = SimulatorServe()

    root: Path = Field(REPO_ROOT, exclude=True)

    @model_validator(mode="after")
    def _kinds(self) -> "DistillConfig":
        if self.generation.kind != "r1" or self.judge.kind != "judge":
            raise ValueError("`kind` is fixed per section: r1 in [generation], judge in [judge]")
        return self

    # ---- paths ---------------------------------------------------------------------------
    def path(self, value: str | Path) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    def data_path(self, value: str | Path) -> Path:
        """A project data folder (assets/..., sql): from `root`, else the copy installed with the package."""
        p = self.path(value)
        if p.exists() or Path(value).is_absolute():
            return p
        installed = PACKAGE_DATA / value
        return installed if installed.exists() else p

    @property
    def warehouse_dir(self) -> Path:
        return self.path(self.warehouse.dir)

    @property
    def database_path(self) -> Path:
        return self.warehouse_dir / self.warehouse.database

    @property
    def journal_dir(self) -> Path:
        return self.warehouse_dir / "journal"

    @property
    def exports_dir(self) -> Path:
        return self.warehouse_dir / "exports"

    @property
    def manifests_dir(self) -> Path:
        return self.data_path(self.sources.manifests)

    @property
    def seeds_dir(self) -> Path:
        return self.data_path(self.sources.seeds)

    @property
    def eval_sets_dir(self) -> Path:
        return self.data_path(self.sources.eval_sets)

    @property
    def prompts_dir(self) -> Path:
        return self.data_path(self.sources.prompts)

    @property
    def sql_dir(self) -> Path:
        return self.data_path("sql")

    @property
    def assets_dir(self) -> Path:
        """Where manifest `path`s start."""
        return self.data_path("assets")

    # ---- identity ------------------------------------------------------------------------
    def effective(self) -> dict[str, Any]:
        """Every value as loaded (secrets are never in the config: only variable names)."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        blob = json.dumps(self.effective(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- loading ---------------------------------------------------------------------------------

def config_path() -> Path | None:
    """$DISTILL_CONFIG, else the checkout's distill.toml, else one in the working directory; None when
    there is none (an installed package run elsewhere: every key takes its default)."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (REPO_ROOT / "distill.toml", Path.cwd() / "distill.toml"):
        if candidate.is_file():
            return candidate
    return None


def _coerce(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else f"; valid keys: {', '.join(options)}"


def _fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid keys at `loc` inside DistillConfig (for 'did you mean')."""
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return [n for n, f in model.model_fields.items() if not f.exclude]


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
               "list": "a list", "dict": "a table", "literal": "one of"}


def _describe(err: dict) -> str:
    kind = err["type"]
    if kind == "string_pattern_mismatch":
        return "has the wrong form" + (" (the NAME of an environment variable, not a key)"
                                       if err["loc"][-1] in ("api_key_env", "token_env") else "")
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix) and prefix != "literal":
            return f"expected {words}"
    msg = str(err.get("msg") or kind).removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> DistillConfig:
    """Read, override and validate; every mistake is one SettingsError line."""
    path = Path(path) if path else config_path()
    if path is None:
        data, path = {}, Path.cwd() / "distill.toml"  # defaults only; relative paths start here
    elif not path.is_file():
        raise SettingsError(f"config file not found: {path}")
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
    env = os.environ if environ is None else environ
    origin: dict[tuple[str, str], str] = {}
    sections = _fields(DistillConfig, ())
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in sections:
            raise SettingsError(f"{name}: unknown section [{section}]{_closest(section, sections)}")
        keys = _fields(DistillConfig, (section,))
        if key not in keys:
            raise SettingsError(f"{name}: unknown key {key!r} in [{section}]{_closest(key, keys)}")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise SettingsError(f"{path}: [{section}] must be a table")
        table[key] = _coerce(env[name])
        origin[(section, key)] = name  # the value is not echoed: it could be a misplaced secret
    try:
        return DistillConfig(**data, root=path.resolve().parent)
    except ValidationError as exc:
        raise SettingsError(_error_line(exc.errors()[0], path, origin)) from None


def _error_line(err: dict, path: Path, origin: dict[tuple[str, str], str]) -> str:
    loc = tuple(err["loc"])
    where = f"[{loc[0]}] {'.'.join(str(x) for x in loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]" if loc else ""
    source = origin.get(tuple(str(x) for x in loc[:2]), str(path)) if len(loc) >= 2 else str(path)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        kind = "section" if len(loc) == 1 else "key"
        head = f"unknown {kind} [{key}]" if kind == "section" else f"unknown key {key!r} in [{'.'.join(map(str, loc[:-1]))}]"
        return f"{source}: {head}{_closest(key, _fields(DistillConfig, loc[:-1]))}"
    return f"{source}: {where}: {_describe(err)}"


@lru_cache(maxsize=1)
def _cached() -> DistillConfig:
    return load_config()


def config() -> DistillConfig:
    """The process-wide configuration (read once)."""
    return _cached()


def reload_config() -> DistillConfig:
    _cached.cache_clear()
    return _cached()
