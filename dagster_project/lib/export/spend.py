"""Requests, tokens and cost of the LLM stages across all partitions, from the journal.

The journal holds every attempt ever sent (retries and responses no longer selected included),
so this is what was paid, not only what the export uses. It is read lock-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.llm.journal import Journal

STAGES = ("r1", "judge")
COST_DIGITS = 4  # costs are reported rounded to this many decimals


@dataclass(frozen=True)
class PartitionSpend:
    stage: str
    partition: str
    requests: int
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    currency: str
    simulated: bool

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def spend_by_partition(journal_dir: Path) -> list[PartitionSpend]:
    """One row per (stage, partition) with anything journaled."""
    journal = Journal(journal_dir)
    out = []
    for stage in STAGES:
        table = journal.read_sql(stage, None, """
            SELECT partition, count(DISTINCT request_hash) AS requests, count(*) AS attempts,
                   coalesce(sum(usage_prompt_tokens), 0)::BIGINT AS prompt_tokens,
                   coalesce(sum(usage_completion_tokens), 0)::BIGINT AS completion_tokens,
                   coalesce(sum(cost), 0)::DOUBLE AS cost, coalesce(string_agg(DISTINCT currency, '+'), '') AS currency,
                   coalesce(bool_or(simulated), false) AS simulated
            FROM j GROUP BY partition ORDER BY partition""")
        for row in (table.to_pylist() if table is not None else []):
            out.append(PartitionSpend(stage=stage, cost=round(float(row.pop("cost")), COST_DIGITS), **row))
    return out


def totals(rows: list[PartitionSpend]) -> dict[str, object]:
    """Sums over all rows; the cost only when every row is in one currency."""
    currencies = sorted({r.currency for r in rows if r.currency})
    out: dict[str, object] = {
        "requests": sum(r.requests for r in rows),
        "tokens": sum(r.tokens for r in rows),
        "simulated": any(r.simulated for r in rows),
    }
    for stage in STAGES:
        out[f"{stage}_tokens"] = sum(r.tokens for r in rows if r.stage == stage)
    if len(currencies) == 1:
        out["currency"] = currencies[0]
        out["cost"] = round(sum(r.cost for r in rows), COST_DIGITS)
        for stage in STAGES:
            out[f"{stage}_cost"] = round(sum(r.cost for r in rows if r.stage == stage), COST_DIGITS)
    return out


def spend_markdown(rows: list[PartitionSpend]) -> str:
    """A table per stage and partition, with a total line."""
    head = "| stage | partition | requests | attempts | prompt tokens | completion tokens | cost |\n" \
           "|---|---|---:|---:|---:|---:|---:|"
    lines = [f"| {r.stage} | {r.partition} | {r.requests} | {r.attempts} | {r.prompt_tokens:,} | "
             f"{r.completion_tokens:,} | {r.cost:,.{COST_DIGITS}f} {r.currency} |" for r in rows]
    total = totals(rows)
    cost = f"{total['cost']:,.{COST_DIGITS}f} {total['currency']}" if "cost" in total else "mixed currencies"
    lines.append(f"| **total** | | {total['requests']} | {sum(r.attempts for r in rows)} | "
                 f"{sum(r.prompt_tokens for r in rows):,} | {sum(r.completion_tokens for r in rows):,} | {cost} |")
    note = "\n\nSimulated run: the costs are what the configured prices would charge." if total["simulated"] else ""
    return head + "\n" + "\n".join(lines) + note
