"""Ad-hoc SQL over the warehouse for people, without getting in a running pipeline's way.

A query waits at most `wait_s` for the warehouse lock (the pipeline holds it only for short
transactions), then reads through a read-only connection and lets go at once. If the lock
is not free in time it says so clearly instead of hanging. The LLM journal is always
readable, lock-free, as the temporary views `r1_ledger` and `judge_ledger`.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb

from dagster_project.lib.llm.journal import Journal
from dagster_project.lib.warehouse import (
    WarehouseBusy,
    connection_config,
    warehouse_lock,
)

LEDGER_STAGES = {"r1_ledger": "r1", "judge_ledger": "judge"}


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool


@contextmanager
def _ledger_views(con: duckdb.DuckDBPyConnection, journal_dir: Path) -> Iterator[None]:
    """The ledger views, over journal files that stay in place until the query is done."""
    journal = Journal(journal_dir)  # folds what a killed writer left before the views read it
    with ExitStack() as reading:
        for view, stage in LEDGER_STAGES.items():
            reading.enter_context(journal.reading(stage))
            if journal.has_files(stage):
                con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {journal.relation_sql(stage)}")
        yield


def run_query(sql: str, database: Path, journal_dir: Path, *, wait_s: float = 10.0,
              max_rows: int = 1000, params: list | None = None) -> QueryResult:
    """Run one query; raises WarehouseBusy when the warehouse stays locked for `wait_s`."""
    if not database.exists():
        con = duckdb.connect(":memory:")
        try:
            return _execute(con, sql, journal_dir, max_rows, params)
        finally:
            con.close()
    with warehouse_lock(database, timeout_s=wait_s, purpose="distill sql"):
        con = duckdb.connect(str(database), read_only=True, config=connection_config())
        try:
            return _execute(con, sql, journal_dir, max_rows, params)
        finally:
            con.close()


def _execute(con: duckdb.DuckDBPyConnection, sql: str, journal_dir: Path, max_rows: int,
             params: list | None = None) -> QueryResult:
    with _ledger_views(con, journal_dir):
        cur = con.execute(sql, params or [])
        columns = [d[0] for d in cur.description or []]
        rows = cur.fetchmany(max_rows + 1) if columns else []
        con.execute("SELECT 1").fetchall()  # finish the result before closing
    return QueryResult(columns, rows[:max_rows], len(rows) > max_rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, limit: int) -> str:
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > limit - 1:
            return "".join(out) + "…"
        out.append(ch)
        used += w
    return "".join(out)


def format_result(result: QueryResult, fmt: str = "table", max_width: int = 60) -> str:
    if fmt == "json":
        return "\n".join(json.dumps({c: _jsonable(v) for c, v in zip(result.columns, row)}, ensure_ascii=False)
                         for row in result.rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(result.columns)
        writer.writerows([[_jsonable(v) for v in row] for row in result.rows])
        return buf.getvalue().rstrip("\n")
    cells = [[_clip("NULL" if v is None else str(v).replace("\n", "⏎"), max_width) for v in row]
             for row in result.rows]
    widths = [max([_width(c)] + [_width(r[i]) for r in cells]) for i, c in enumerate(result.columns)]

    def line(values: list[str]) -> str:
        return "│ " + " │ ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)) + " │"

    out = [line(result.columns), "├─" + "─┼─".join("─" * w for w in widths) + "─┤"]
    out += [line(r) for r in cells]
    note = f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
    note += ", truncated: raise --max-rows to see more)" if result.truncated else ")"
    return "\n".join(out + [note])


__all__ = ["QueryResult", "WarehouseBusy", "format_result", "run_query"]
