"""Dataset card (README.md with Hugging Face YAML front matter) and its PNG plots."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

CATEGORY_BY_REPO = {
    "coig/neo": "General",
    "zhihu/zhihu_score9.0-10_clean_v10": "General",
    "xhs/xhs": "General",
    "ruozhiba/ruozhiba_ruozhiba": "General",
    "human_value/100poison": "General",
    "logi_qa/logi-qa": "General",
    "Haijian/Advanced-Math": "Math",
    "meta-math/GSM8K_zh": "Math",
    "EduChat-Math": "Math",
    "gavinluo/applied_math": "Math",
    "stem_zh/chem": "STEM",
    "stem_zh/bio": "STEM",
    "stem_zh/med": "STEM",
    "stem_zh/phy": "STEM",
    "exam/coig_exam": "Exam",
    "exam/kaoyan": "Exam",
    "human_value/coig_human": "Exam",
}
"""repo_name -> category as published for Chinese-DeepSeek-R1-Distill-data-110k."""

TOKEN_COLUMNS = ("prompt_tokens_len", "reasoning_content_tokens_len", "content_tokens_len")
STATS_COLUMNS = ("category", "repo_name", "score", *TOKEN_COLUMNS)
"""The only columns the statistics and plots read: a table narrowed to these gives the same card."""
SIMULATED_BANNER = "**SIMULATED DATA: responses come from the project's simulator, not DeepSeek-R1.**"
PLOT_DIR = "plots"


@dataclass
class DatasetCard:
    """What the caller tells the card; statistics are computed from ``stats_table``."""

    title: str = "Chinese DeepSeek-R1 distillation dataset"
    summary: str = ""
    license: str = "other"  # placeholder: the caller sets the real licence id
    pretty_name: str | None = None
    stats_table: str | None = None  # default: "raw", then "sft", then the first table
    category_by_repo: Mapping[str, str] = field(default_factory=lambda: dict(CATEGORY_BY_REPO))
    config: Mapping[str, Any] = field(default_factory=dict)
    extra_sections: Mapping[str, str] = field(default_factory=dict)
    dataset_name: str = "chinese_r1_distill"  # key used in the LLaMA-Factory snippet
    plots: bool = True

    @classmethod
    def from_any(cls, card: "DatasetCard | Mapping[str, Any] | None") -> "DatasetCard":
        if card is None:
            return cls()
        if isinstance(card, DatasetCard):
            return card
        return cls(**dict(card))


def categories(table: pa.Table, category_by_repo: Mapping[str, str]) -> list[str]:
    """Per-row category: the ``category`` column if present, else mapped from ``repo_name``."""
    if "category" in table.column_names:
        return [c or "Other" for c in table.column("category").to_pylist()]
    if "repo_name" not in table.column_names:
        return ["Other"] * table.num_rows
    return [category_for_repo(r, category_by_repo) for r in table.column("repo_name").to_pylist()]


def category_for_repo(repo: str | None, category_by_repo: Mapping[str, str]) -> str:
    """Exact match, else the category shared by every known repo with the same ``prefix/``."""
    if repo in category_by_repo:
        return category_by_repo[repo]
    if repo and "/" in repo:
        prefix = repo.split("/")[0] + "/"
        found = {c for r, c in category_by_repo.items() if r.startswith(prefix)}
        if len(found) == 1:
            return found.pop()
    return "Other"


def distribution(table: pa.Table, cats: list[str]) -> list[tuple[str, str, int]]:
    """(category, repo_name, rows) sorted by category then descending rows."""
    repos = table.column("repo_name").to_pylist() if "repo_name" in table.column_names else ["?"] * len(cats)
    counts = Counter(zip(cats, repos))
    return sorted(((c, r, n) for (c, r), n in counts.items()), key=lambda x: (x[0], -x[2], str(x[1])))


def token_stats(table: pa.Table) -> dict[str, dict[str, int]]:
    """min / p50 / p90 / max / mean of each token-length column present (nulls ignored)."""
    stats = {}
    for name in TOKEN_COLUMNS:
        if name not in table.column_names:
            continue
        values = table.column(name).drop_null().cast(pa.float64()).to_numpy()
        if values.size == 0:
            continue
        p50, p90 = np.percentile(values, [50, 90])
        stats[name] = {
            "min": int(values.min()),
            "p50": int(round(p50)),
            "p90": int(round(p90)),
            "max": int(values.max()),
            "mean": int(round(values.mean())),
        }
    return stats


def score_counts(table: pa.Table, cats: list[str]) -> dict[str, Counter]:
    if "score" not in table.column_names:
        return {}
    by_category: dict[str, Counter] = {}
    for category, score in zip(cats, table.column("score").to_pylist()):
        by_category.setdefault(category, Counter())[score] += 1
    return dict(sorted(by_category.items()))


def write_plots(table: pa.Table, cats: list[str], out_dir: Path) -> list[str]:
    """Write PNG plots under ``out_dir/plots``; return their paths relative to ``out_dir``."""
    from matplotlib.figure import (
        Figure,  # object API: no global backend or pyplot state
    )

    (out_dir / PLOT_DIR).mkdir(exist_ok=True)
    written = []
    scores = score_counts(table, cats)
    if scores:
        fig = Figure(figsize=(3.2 * len(scores), 3.0), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(scores), squeeze=False)[0])
        for ax, (category, counter) in zip(axes, scores.items()):
            keys = sorted(k for k in counter if k is not None)
            ax.bar(keys, [counter[k] for k in keys], color="#4C72B0")
            if keys and all(float(k).is_integer() for k in keys) and max(keys) - min(keys) <= 20:
                ax.set_xticks(range(int(min(keys)), int(max(keys)) + 1))
            ax.set_title(f"{category} (n={sum(counter.values())})")
            ax.set_xlabel("score")
        axes[0].set_ylabel("rows")
        written.append(_save(fig, out_dir, "score_by_category.png"))
    for column, name in (
        ("reasoning_content_tokens_len", "reasoning_tokens.png"),
        ("content_tokens_len", "content_tokens.png"),
    ):
        if column not in table.column_names:
            continue
        values = table.column(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.subplots()
        present = ~np.isnan(values)
        bins = np.histogram_bin_edges(values[present], bins=40) if present.any() else 10
        labels = np.asarray(cats)
        for category in sorted(set(cats)):
            mask = present & (labels == category)
            if mask.any():
                ax.hist(values[mask], bins=bins, histtype="step", label=category)
        ax.set_xlabel(column)
        ax.set_ylabel("rows")
        ax.legend()
        written.append(_save(fig, out_dir, name))
    return written


def _save(fig, out_dir: Path, name: str) -> str:
    relative = f"{PLOT_DIR}/{name}"
    fig.savefig(out_dir / relative, dpi=100)
    return relative


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M"


def front_matter(card: DatasetCard, table_names: list[str], max_rows: int) -> str:
    default = "sft" if "sft" in table_names else table_names[0]
    lines = [
        "---",
        f"license: {json.dumps(card.license)}",
        "language:",
        "- zh",
        f"pretty_name: {json.dumps(card.pretty_name or card.title, ensure_ascii=False)}",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- reasoning",
        "- distillation",
        "- deepseek-r1",
        "size_categories:",
        f"- {_size_category(max_rows)}",
        "configs:",
    ]
    for name in [default] + [n for n in table_names if n != default]:
        lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {name}.parquet"]
        if name == default:
            lines.append("  default: true")
    lines.append("---")
    return "\n".join(lines)


def render(
    card: DatasetCard,
    *,
    rows: Mapping[str, int],
    stats: pa.Table | None,
    files: Mapping[str, Mapping[str, Any]],
    plots: list[str],
    version: str,
    created_at: str,
    manifest_extra: Mapping[str, Any],
    stats_name: str | None,
    cats: list[str],
) -> str:
    """The README.md text. ``rows``: table name -> row count, in export order; ``stats``: the
    ``stats_name`` table (only ``STATS_COLUMNS`` are read), or None for no statistics."""
    names = list(rows)
    out = [front_matter(card, names, max(rows.values())), "", f"# {card.title}", ""]
    if manifest_extra.get("simulated"):
        out += [f"> {SIMULATED_BANNER}", ""]
    if card.summary:
        out += [card.summary.strip(), ""]
    out += [f"Version `{version}`, built {created_at}.", ""]

    out += ["## Files", "", "| file | rows | bytes | sha256 |", "|---|---:|---:|---|"]
    for name, info in files.items():
        out.append(f"| `{name}` | {info.get('rows', '')} | {info['bytes']} | `{info['sha256'][:16]}…` |")
    out += ["", "Full checksums are in `manifest.json`.", ""]

    if stats_name is not None and stats is not None:
        out += _distribution_section(stats, cats, stats_name)
        out += _score_section(stats, cats, plots)
        out += _token_section(stats, plots)
    if card.config:
        out += ["## Configuration", ""]
        out += [f"- **{key}**: `{json.dumps(value, ensure_ascii=False, default=str)}`" for key, value in card.config.items()]
        out.append("")
    out += _how_to_load(names, card.dataset_name)
    for title, body in card.extra_sections.items():
        out += [f"## {title}", "", body.strip(), ""]
    if manifest_extra:
        out += ["## Provenance", "", "```json", json.dumps(dict(manifest_extra), ensure_ascii=False, indent=2, default=str), "```", ""]
    return "\n".join(out)


def _distribution_section(table: pa.Table, cats: list[str], name: str) -> list[str]:
    rows = distribution(table, cats)
    total = max(1, table.num_rows)
    out = [f"## Distribution (`{name}`, {table.num_rows} rows)", "", "| category | repo_name | rows | share |", "|---|---|---:|---:|"]
    out += [f"| {c} | {r} | {n} | {n / total:.2%} |" for c, r, n in rows]
    per_category = Counter(cats)
    out += ["", "| category | rows | share |", "|---|---:|---:|"]
    out += [f"| {c} | {n} | {n / total:.2%} |" for c, n in sorted(per_category.items())]
    return out + [""]


def _score_section(table: pa.Table, cats: list[str], plots: list[str]) -> list[str]:
    scores = score_counts(table, cats)
    if not scores:
        return []
    values = sorted({k for counter in scores.values() for k in counter if k is not None})
    out = ["## Scores", "", "| category | " + " | ".join(f"score {v}" for v in values) + " |"]
    out.append("|---|" + "---:|" * len(values))
    for category, counter in scores.items():
        out.append(f"| {category} | " + " | ".join(str(counter.get(v, 0)) for v in values) + " |")
    out.append("")
    if f"{PLOT_DIR}/score_by_category.png" in plots:
        out += [f"![score histogram per category]({PLOT_DIR}/score_by_category.png)", ""]
    return out


def _token_section(table: pa.Table, plots: list[str]) -> list[str]:
    stats = token_stats(table)
    if not stats:
        return []
    out = ["## Token lengths", "", "| column | min | p50 | p90 | max | mean |", "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {name} | {s['min']} | {s['p50']} | {s['p90']} | {s['max']} | {s['mean']} |" for name, s in stats.items()]
    out.append("")
    for plot, alt in (("reasoning_tokens.png", "reasoning token lengths"), ("content_tokens.png", "content token lengths")):
        if f"{PLOT_DIR}/{plot}" in plots:
            out += [f"![{alt}]({PLOT_DIR}/{plot})", ""]
    return out


def _how_to_load(names: list[str], dataset_name: str) -> list[str]:
    first = "sft" if "sft" in names else names[0]
    out = [
        "## How to load",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("json", data_files="{first}.jsonl", split="train")',
        f'ds = load_dataset("parquet", data_files="{first}.parquet", split="train")',
        "",
        "import pyarrow.parquet as pq",
        f'table = pq.read_table("{first}.parquet")',
        "```",
        "",
    ]
    if "sft" in names:
        entry = {dataset_name: {"file_name": "sft.jsonl", "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}
        out += [
            "LLaMA-Factory (`data/dataset_info.json`, alpaca format; `output` keeps the reasoning in `<think>…</think>`):",
            "",
            "```json",
            json.dumps(entry, ensure_ascii=False, indent=2),
            "```",
            "",
        ]
    if "messages" in names:
        entry = {
            f"{dataset_name}_messages": {
                "file_name": "messages.jsonl",
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant", "system_tag": "system"},
            }
        }
        out += ["Chat format (`messages` table):", "", "```json", json.dumps(entry, indent=2), "```", ""]
    return out
