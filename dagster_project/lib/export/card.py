"""The dataset card: README.md built with huggingface_hub's DatasetCard / DatasetCardData.

The YAML header holds what the Hub indexes (license, source datasets, size, one config per
exported form); the body describes the rows from their own statistics. Licenses, sources and
categories come from the `SourceRef`s the caller passes (built from the source manifests).
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from dagster_project.lib.export.plots import Plot
from dagster_project.lib.export.provenance import (
    LicenseDecision,
    SourceRef,
    bibtex,
    category_by_repo,
    combine_licenses,
    used,
)

TOKEN_COLUMNS = ("prompt_tokens_len", "reasoning_content_tokens_len", "content_tokens_len")
STATS_COLUMNS = ("category", "repo_name", "score", *TOKEN_COLUMNS)
"""The only columns the statistics and plots read: a table narrowed to these gives the same card."""
SIMULATED_BANNER = ("**SIMULATED DATA: responses come from the project's simulator, not DeepSeek-R1. "
                    "Use it to try the pipeline, not to train a model.**")
README, LICENSE_FILE = "README.md", "LICENSE.md"


@dataclass
class CardSpec:
    """What the caller tells the card; statistics are computed from ``stats_table``."""

    title: str = "Chinese DeepSeek-R1 distillation dataset"
    summary: str = ""  # empty: written from the fields below
    pretty_name: str | None = None
    license: str = "auto"  # auto: the most restrictive of `sources`; otherwise the id to state
    sources: Sequence[SourceRef] = ()  # prompt sources and the reference dataset
    generation_model: str | None = None
    judge_model: str | None = None
    hub_repo_id: str | None = None  # the Hub repo the export is meant for, shown in the loading snippet
    stats_table: str | None = None  # default: "raw", then "sft", then the first table
    category_by_repo: Mapping[str, str] | None = None  # default: from `sources`
    config: Mapping[str, Any] = field(default_factory=dict)
    extra_sections: Mapping[str, str] = field(default_factory=dict)
    dataset_name: str = "chinese_r1_distill"  # key used in the LLaMA-Factory snippet
    plots: bool = True

    @classmethod
    def from_any(cls, card: "CardSpec | Mapping[str, Any] | None") -> "CardSpec":
        if card is None:
            return cls()
        if isinstance(card, CardSpec):
            return card
        return cls(**dict(card))

    def categories(self) -> dict[str, str]:
        return dict(self.category_by_repo) if self.category_by_repo is not None else category_by_repo(self.sources)


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
        stats[name] = {"min": int(values.min()), "p50": int(round(p50)), "p90": int(round(p90)),
                       "max": int(values.max()), "mean": int(round(values.mean()))}
    return stats


def score_counts(table: pa.Table, cats: list[str]) -> dict[str, Counter]:
    if "score" not in table.column_names:
        return {}
    by_category: dict[str, Counter] = {}
    for category, score in zip(cats, table.column("score").to_pylist()):
        by_category.setdefault(category, Counter())[score] += 1
    return dict(sorted(by_category.items()))


def size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M")):
        if rows < limit:
            return label
    return "10M<n<100M"


def license_of(card: CardSpec, refs: Sequence[SourceRef]) -> LicenseDecision:
    if card.license != "auto":
        return LicenseDecision(card.license, "set in the configuration ([export] license)",
                               *(("custom", LICENSE_FILE) if card.license == "other" else ()))
    return combine_licenses(refs)


def card_data(card: CardSpec, table_names: list[str], max_rows: int, refs: Sequence[SourceRef],
              decision: LicenseDecision, simulated: bool):
    """The YAML header as a huggingface_hub DatasetCardData."""
    from huggingface_hub import DatasetCardData

    default = "sft" if "sft" in table_names else table_names[0]
    configs = [{"config_name": name, "data_files": [{"split": "train", "path": f"{name}.parquet"}],
                **({"default": True} if name == default else {})}
               for name in [default, *(n for n in table_names if n != default)]]
    tags = ["reasoning", "distillation", "chinese", *(["simulated"] if simulated else ["deepseek-r1"])]
    return DatasetCardData(
        language=["zh"], license=decision.license, license_name=decision.license_name,
        license_link=decision.license_link, pretty_name=card.pretty_name or card.title,
        task_categories=["text-generation"], tags=tags, size_categories=[size_category(max_rows)],
        annotations_creators=["machine-generated"], language_creators=["found", "machine-generated"],
        multilinguality=["monolingual"], source_datasets=[r.dataset_id for r in refs] or None, configs=configs,
    )


def render(
    card: CardSpec,
    *,
    rows: Mapping[str, int],
    stats: pa.Table | None,
    files: Mapping[str, Mapping[str, Any]],
    plots: list[Plot],
    version: str,
    created_at: str,
    manifest_extra: Mapping[str, Any],
    stats_name: str | None,
    cats: list[str],
) -> dict[str, str]:
    """The card's files by name: README.md, plus LICENSE.md when the license is "other".

    ``rows``: table name -> row count, in export order; ``stats``: the ``stats_name`` table (only
    ``STATS_COLUMNS`` are read), or None for no statistics."""
    from huggingface_hub import DatasetCard

    names = list(rows)
    simulated = bool(manifest_extra.get("simulated"))
    repo_names = stats.column("repo_name").to_pylist() if stats is not None and "repo_name" in stats.column_names else []
    refs = used(card.sources, repo_names)
    decision = license_of(card, refs)
    data = card_data(card, names, max(rows.values()), refs, decision, simulated)

    out = [f"# {card.title}", ""]
    if simulated:
        out += [f"> {SIMULATED_BANNER}", ""]
    out += [(card.summary or _summary(card, refs, simulated)).strip(), ""]
    out += [f"Version `{version}`, built {created_at}.", ""]
    out += _contents(rows, files)
    if stats_name is not None and stats is not None:
        out += _distribution_section(stats, cats, stats_name)
        out += _score_section(stats, cats, plots)
        out += _token_section(stats, plots)
    out += _method_section(card, simulated)
    for title, body in card.extra_sections.items():
        out += [f"## {title}", "", body.strip(), ""]
    out += _license_section(refs, decision)
    out += _how_to_load(names, card.dataset_name, card.hub_repo_id)
    out += _citation_section(card, refs, version)
    out += _provenance(manifest_extra)
    readme = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(out))
    result = {README: str(readme)}
    if decision.license_link == LICENSE_FILE:
        result[LICENSE_FILE] = _license_file(card, refs, decision)
    return result


def _summary(card: CardSpec, refs: Sequence[SourceRef], simulated: bool) -> str:
    sources = sum(r.role == "prompts" for r in refs)
    origin = f"from {sources} open Chinese datasets" if sources else "from open Chinese datasets"
    models = ", ".join(f"{role} `{m}`" for role, m in (("generation", card.generation_model),
                                                        ("judge", card.judge_model)) if m)
    if simulated:
        said = (f"The configured models ({models}) were not called." if models else "No model was called.")
        return (f"Prompts {origin}. The responses and judge scores were produced by the project's built-in "
                f"simulator, which returns placeholder texts in the shape of real ones. {said} The rows went "
                "through the same verification, deduplication, decontamination and category balancing as a "
                "real run.")
    answered = f" answered by `{card.generation_model}` with its reasoning," if card.generation_model else ""
    judge = f"the `{card.judge_model}` judge" if card.judge_model else "an LLM judge"
    return (f"Prompts {origin},{answered} verified with Math-Verify against gold answers or scored by {judge}, "
            "deduplicated, decontaminated and balanced by category.")


def _contents(rows: Mapping[str, int], files: Mapping[str, Mapping[str, Any]]) -> list[str]:
    default = "sft" if "sft" in rows else next(iter(rows))
    out = ["## Files", "", "| config | rows | files |", "|---|---:|---|"]
    for name, n in rows.items():
        mark = " (default)" if name == default else ""
        out.append(f"| `{name}`{mark} | {n} | `{name}.parquet`, `{name}.jsonl` |")
    out += ["", "| file | bytes | sha256 |", "|---|---:|---|"]
    out += [f"| `{name}` | {info['bytes']} | `{info['sha256'][:16]}…` |" for name, info in files.items()]
    return out + ["", "Full checksums are in `manifest.json`.", ""]


def _distribution_section(table: pa.Table, cats: list[str], name: str) -> list[str]:
    rows = distribution(table, cats)
    total = max(1, table.num_rows)
    out = [f"## Distribution (`{name}`, {table.num_rows} rows)", "", "| category | repo_name | rows | share |",
           "|---|---|---:|---:|"]
    out += [f"| {c} | {r} | {n} | {n / total:.2%} |" for c, r, n in rows]
    out += ["", "| category | rows | share |", "|---|---:|---:|"]
    out += [f"| {c} | {n} | {n / total:.2%} |" for c, n in sorted(Counter(cats).items())]
    return out + [""]


def _figure(plots: list[Plot], name: str) -> list[str]:
    for plot in plots:
        if plot.path.endswith(name):
            return [f"![{plot.alt}]({plot.path})", "", f"*{plot.caption}*", ""]
    return []


def _score_section(table: pa.Table, cats: list[str], plots: list[Plot]) -> list[str]:
    scores = score_counts(table, cats)
    if not scores:
        return []
    values = sorted({k for counter in scores.values() for k in counter if k is not None})
    out = ["## Scores", "", "| category | " + " | ".join(f"score {v}" for v in values) + " |"]
    out.append("|---|" + "---:|" * len(values))
    for category, counter in scores.items():
        out.append(f"| {category} | " + " | ".join(str(counter.get(v, 0)) for v in values) + " |")
    return out + [""] + _figure(plots, "scores_by_category.png")


def _token_section(table: pa.Table, plots: list[Plot]) -> list[str]:
    stats = token_stats(table)
    if not stats:
        return []
    out = ["## Token lengths", "", "| column | min | p50 | p90 | max | mean |", "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {name} | {s['min']} | {s['p50']} | {s['p90']} | {s['max']} | {s['mean']} |"
            for name, s in stats.items()]
    return out + [""] + _figure(plots, "token_lengths_by_category.png")


def _method_section(card: CardSpec, simulated: bool) -> list[str]:
    gen = f"`{card.generation_model}`" if card.generation_model else "the configured R1 endpoint"
    judge = f"`{card.judge_model}`" if card.judge_model else "the configured judge"
    out = ["## How it was made", "",
           "- **Prompts**: exact and near-duplicate prompts (MinHash over character 5-grams) removed across "
           "sources, prompts overlapping an evaluation set removed, per-category quotas.",
           (f"- **Responses**: the project's simulator in place of {gen} (simulated run)." if simulated else
            f"- **Responses**: {gen}, reasoning kept in `<think>…</think>` in the `sft` form."),
           "- **Scores**: Math and Exam answers checked with Math-Verify against the gold answer (10 or 0); "
           f"answers it cannot extract, and all other categories, scored 0-10 by {judge}"
           + (" (simulated)." if simulated else "."),
           "- **Curation**: near-identical responses removed, a minimum score per category, then balanced "
           "towards the category targets."]
    out += [f"- **{key}**: `{json.dumps(value, ensure_ascii=False, default=str)}`" for key, value in card.config.items()]
    return out + [""]


def _license_section(refs: Sequence[SourceRef], decision: LicenseDecision) -> list[str]:
    out = ["## Sources and licenses", ""]
    if refs:
        out += ["| dataset | used for | license | terms |", "|---|---|---|---|"]
        for r in refs:
            name = f"[{r.name}]({r.url})" if r.url else r.name
            role = "prompts" if r.role == "prompts" else "schema and category targets"
            out.append(f"| {name} | {role} | `{r.license}` | {_cell(r.license_note) or '-'} |")
        out.append("")
    out += [f"**License of this dataset: `{decision.license}`**: {decision.reason}."]
    if decision.license == "other":
        out += ["", "The rows keep the terms of the dataset each prompt comes from (see the table and "
                    f"`{LICENSE_FILE}`): check them before redistributing or training a commercial model. "
                    "The responses are model outputs, subject to the generation model's terms."]
    return out + [""]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _license_file(card: CardSpec, refs: Sequence[SourceRef], decision: LicenseDecision) -> str:
    out = [f"# Terms of {card.title}", "",
           f"This dataset has no single license ({decision.reason}). Each row keeps the terms of the dataset "
           "its prompt comes from:", ""]
    out += [f"- {r.name} ({'prompts' if r.role == 'prompts' else 'reference'}): `{r.license}`"
            + (f", {' '.join(r.license_note.split())}" if r.license_note else "") + (f" - {r.url}" if r.url else "")
            for r in refs]
    return "\n".join(out + ["", "The responses are model outputs, subject to the generation model's terms.", ""])


def _how_to_load(names: list[str], dataset_name: str, hub_repo_id: str | None) -> list[str]:
    first = "sft" if "sft" in names else names[0]
    out = ["## How to load", "", "```python", "from datasets import load_dataset", ""]
    if hub_repo_id:
        out += [f'ds = load_dataset("{hub_repo_id}", "{first}", split="train")  # configs: {", ".join(names)}', ""]
    out += [f'ds = load_dataset("json", data_files="{first}.jsonl", split="train")  # from a local copy',
            f'ds = load_dataset("parquet", data_files="{first}.parquet", split="train")', "```", ""]
    if "sft" in names:
        entry = {dataset_name: {"file_name": "sft.jsonl",
                                "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}
        out += ["LLaMA-Factory (`data/dataset_info.json`, alpaca format; `output` keeps the reasoning in "
                "`<think>…</think>`):", "", "```json", json.dumps(entry, ensure_ascii=False, indent=2), "```", ""]
    if "messages" in names:
        entry = {f"{dataset_name}_messages": {
            "file_name": "messages.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                     "system_tag": "system"}}}
        out += ["Chat format (`messages` form):", "", "```json", json.dumps(entry, indent=2), "```", ""]
    return out


def _citation_section(card: CardSpec, refs: Sequence[SourceRef], version: str) -> list[str]:
    entries = [bibtex(r) for r in refs]
    if card.hub_repo_id:
        this = SourceRef(name=card.hub_repo_id, hub_id=card.hub_repo_id,
                         url=f"https://huggingface.co/datasets/{card.hub_repo_id}", license="")
        entries.insert(0, bibtex(this, title=f"{card.title} (version {version})"))
    if not entries:
        return []
    what = "This dataset and the datasets" if card.hub_repo_id else "The datasets"
    return ["## Citation", "", f"{what} it is built from (their pages may give the authors' own entries):", "",
            "```bibtex", "\n\n".join(entries), "```", ""]


def _provenance(extra: Mapping[str, Any]) -> list[str]:
    if not extra:
        return []
    out = ["## Provenance", ""]
    for key, value in extra.items():
        if key == "package_versions" and isinstance(value, Mapping):
            out.append("- **package versions**: " + ", ".join(f"{p} {v}" for p, v in value.items()))
        elif value is None or isinstance(value, (str, int, float, bool)):
            out.append(f"- **{key.replace('_', ' ')}**: `{value if isinstance(value, str) else json.dumps(value)}`")
    return out + ["", "Everything else the export records (per-file checksums, the category balance) is in "
                      "`manifest.json`.", ""]


_FIGURE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<path>plots/[^)\s]+\.png)\)(?:\n\n\*(?P<caption>[^\n]+)\*)?")


def figures(readme: str) -> list[tuple[str, str, str]]:
    """(alt, path, caption) of each plot the card shows, in order."""
    return [(m["alt"], m["path"], m["caption"] or "") for m in _FIGURE.finditer(readme)]


def inline_markdown(readme: str, folder: Path) -> str:
    """The card for a Markdown viewer that has no files beside it (the Dagster UI): plots inlined as
    data URIs, the YAML header shown as a code block at the end."""
    match = re.match(r"^---\n([\s\S]*?)\n---\n", readme)
    header, body = (match[1], readme[match.end():]) if match else ("", readme)

    def inline(m: re.Match) -> str:
        data = base64.b64encode((folder / m["path"]).read_bytes()).decode("ascii")
        return m[0].replace(f"]({m['path']})", f"](data:image/png;base64,{data})", 1)

    body = _FIGURE.sub(inline, body).strip()
    return body + (f"\n\n## YAML header\n\n```yaml\n{header}\n```\n" if header else "\n")
