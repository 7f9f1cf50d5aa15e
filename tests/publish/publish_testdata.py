"""Helpers of the publishing tests: a small export of real rows."""

import json
from pathlib import Path

import pyarrow as pa

from dagster_project.lib.export.provenance import source_refs
from dagster_project.lib.export.writer import write_export
from dagster_project.lib.sources.manifest import load_manifests

ROOT = Path(__file__).resolve().parents[2]
SOURCES = source_refs(load_manifests(ROOT / "assets" / "sources").manifests.values())
TOKEN = "hf_TESTtokenNEVERlogged0123456789abcdef"


def real_rows(n: int = 30) -> list[dict]:
    """Real COIG-CQIA rows (tests/fixtures/curation/ORIGIN.md)."""
    path = ROOT / "tests" / "fixtures" / "curation" / "coig_cqia_prompts.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n]]


def sft_table(rows: list[dict], repo_names: list[str] | None = None) -> pa.Table:
    prompts = [r["instruction"] + ("\n" + r["input"] if r["input"] else "") for r in rows]
    repos = repo_names or [r["repo_name"] for r in rows]
    return pa.table({
        "instruction": prompts,
        "input": [""] * len(rows),
        "output": [f"<think>\n想一想。\n</think>\n\n{r['output']}" for r in rows],
        "repo_name": repos,
        "prompt_tokens_len": pa.array([len(p) for p in prompts], pa.int64()),
        "reasoning_content_tokens_len": pa.array([40 + 7 * i for i in range(len(rows))], pa.int64()),
        "content_tokens_len": pa.array([len(r["output"]) for r in rows], pa.int64()),
        "score": pa.array([10 - i % 4 for i in range(len(rows))], pa.int64()),
    })


def make_export(root: Path, version: str, *, simulated: bool, sources=SOURCES, repo_names=None, **card):
    table = sft_table(real_rows(), repo_names)
    return write_export({"sft": table, "raw": table}, root, version=version,
                        manifest_extra={"simulated": simulated, "config_hash": "c0ffee"},
                        card={"sources": sources, "generation_model": "deepseek-r1", **card})


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
