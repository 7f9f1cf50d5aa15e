"""The DuckDB warehouse: one file, one writer at a time, short connections.

Every connection in the project goes through `open_warehouse`, which first takes an
exclusive `flock` on `<database>.lock`. DuckDB itself allows one writing process; the
lock turns "IOException: could not set lock" into an orderly wait, covers the CLI as well
as Dagster steps, and is released by the kernel when a process dies, so a cancelled or
killed run never leaves it held.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

_process_lock = threading.RLock()
_held: dict[str, list[Any]] = {}  # lock path -> [file object, depth]


class WarehouseBusy(RuntimeError):
    """The warehouse lock could not be taken in time."""


def lock_holder(database: Path) -> str:
    """Who holds the warehouse lock, as written by the holder (best effort)."""
    try:
        info = json.loads(Path(f"{database}.lock").read_text() or "{}")
    except (OSError, ValueError):
        return "unknown"
    if not info:
        return "nobody"
    return f"pid {info.get('pid')} ({info.get('purpose') or 'unnamed'}) since {info.get('since')}"


@contextmanager
def warehouse_lock(database: Path, *, timeout_s: float, purpose: str = "") -> Iterator[None]:
    """Hold the cross-process warehouse lock (re-entrant within a process)."""
    key = f"{database}.lock"
    with _process_lock:
        if key in _held:
            _held[key][1] += 1
            try:
                yield
            finally:
                _held[key][1] -= 1
            return
        Path(key).parent.mkdir(parents=True, exist_ok=True)
        fh = open(key, "a+")
        deadline = time.monotonic() + timeout_s
        next_note = time.monotonic() + 5
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    holder = lock_holder(database)
                    fh.close()
                    raise WarehouseBusy(
                        f"warehouse {database} is busy: lock held by {holder}; waited {timeout_s:.0f}s"
                    ) from None
                if now >= next_note:
                    log.info("waiting for the warehouse lock held by %s", lock_holder(database))
                    next_note = now + 30
                time.sleep(0.05)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "purpose": purpose,
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        fh.flush()
        _held[key] = [fh, 1]
        try:
            yield
        finally:
            _held[key][1] -= 1
            if _held[key][1] == 0:
                del _held[key]
                fh.seek(0)
                fh.truncate()
                fh.flush()
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()


def connection_config(memory_limit: str = "2GB", threads: int = 2) -> dict[str, Any]:
    """The one DuckDB config every connection uses (DuckDB refuses mixed configs in a process).

    Insertion order is not preserved: large CREATE TABLE AS / INSERT then stream instead of
    buffering to keep row order (the difference between fitting in `memory_limit` and running
    out of memory at 1M rows). Every read whose order matters says ORDER BY.
    """
    return {
        "memory_limit": memory_limit,
        "threads": threads,
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }


@contextmanager
def open_warehouse(database: Path, *, read_only: bool = False, timeout_s: float = 900.0,
                   purpose: str = "", config: dict[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Lock, connect, yield, close, unlock."""
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(database, timeout_s=timeout_s, purpose=purpose):
        con = duckdb.connect(str(database), read_only=read_only, config=config or connection_config())
        try:
            yield con
        finally:
            con.close()


# ---------------------------------------------------------------- table helpers

def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [name]).fetchall()[0][0])


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _reconcile(con: duckdb.DuckDBPyConnection, table: str, incoming: str) -> None:
    """Create `table` shaped like `incoming`, or bring an existing one to its columns (a changed
    model adds or drops columns; other partitions keep their rows, nulls in new columns)."""
    if not table_exists(con, table):
        con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM {incoming} LIMIT 0')
        return
    have, want = dict(_columns(con, f'"{table}"')), dict(_columns(con, incoming))
    for name, kind in want.items():
        if name in have and have[name] != kind:
            try:  # keep other partitions' values where they convert
                con.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{name}" TYPE {kind}')
                continue
            except duckdb.Error:
                con.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
                have.pop(name)
        if name not in have:
            con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}')
    for name in have.keys() - want.keys():
        con.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')


def replace_partition(con: duckdb.DuckDBPyConnection, table: str, column: str, key: str,
                      rows: pa.Table | str, transaction: bool = True, params: list | None = None) -> int:
    """Replace the rows of one partition with `rows` (an Arrow table, or a SELECT whose rows all
    belong to the partition), creating or reshaping the table as needed.

    Runs in its own transaction unless `transaction=False`, for callers that group
    several replacements into one.
    """
    is_sql = isinstance(rows, str)
    if is_sql:
        con.execute(f"CREATE OR REPLACE TEMP VIEW _incoming AS {rows}", params or [])
    else:
        con.register("_incoming", rows)
    try:
        if transaction:
            con.execute("BEGIN TRANSACTION")
        _reconcile(con, table, "_incoming")
        con.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', [key])
        n = con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _incoming').fetchall()[0][0]
        if transaction:
            con.execute("COMMIT")
    except BaseException:
        if transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        if is_sql:
            con.execute("DROP VIEW IF EXISTS _incoming")
        else:
            con.unregister("_incoming")
    return int(n)


def replace_table(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> int:
    """Create or replace a whole table from an Arrow table."""
    con.register("_incoming", rows)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _incoming')
    finally:
        con.unregister("_incoming")
    return rows.num_rows


@dataclass(frozen=True)
class TableInfo:
    row_count: int
    columns: list[tuple[str, str]]
    preview_md: str
    version: str  # a content hash: the same rows give the same version, whatever their order


def is_volatile(column: str) -> bool:
    """Columns that change on every rebuild without changing the data (load and run times)."""
    return column.endswith("_at") or column in VOLATILE_COLUMNS


VOLATILE_COLUMNS = frozenset({"seconds", "latency_s", "ttft_s"})


def content_version(con: duckdb.DuckDBPyConnection, name: str, columns: list[str], clause: str = "",
                    params: list | None = None) -> str:
    """Order-independent hash of the rows (volatile columns left out), plus the row count."""
    kept = [c for c in columns if not is_volatile(c)]
    row_hash = "hash(" + ", ".join(f'"{c}"' for c in kept) + ")" if kept else "0"
    count, total = con.execute(
        f'SELECT count(*), coalesce(sum({row_hash}::HUGEINT), 0) FROM "{name}"{clause}', params or []).fetchall()[0]
    digest = hashlib.sha256(f"{count}:{total}:{','.join(kept)}".encode()).hexdigest()
    return digest[:16]


def describe_table(con: duckdb.DuckDBPyConnection, name: str, where: str = "", params: list | None = None,
                   preview_rows: int = 5, max_chars: int = 60) -> TableInfo:
    """Row count, column schema, a small markdown preview and the content version of a table or view."""
    clause = f" WHERE {where}" if where else ""
    count = con.execute(f'SELECT count(*) FROM "{name}"{clause}', params or []).fetchall()[0][0]
    columns = _columns(con, f'"{name}"')
    rows = con.execute(f'SELECT * FROM "{name}"{clause} LIMIT {preview_rows}', params or []).fetchall()
    version = content_version(con, name, [c for c, _ in columns], clause, params)
    return TableInfo(count, columns, markdown_table([c for c, _ in columns], rows, max_chars), version)


def markdown_table(headers: list[str], rows: list[tuple], max_chars: int = 60) -> str:
    def cell(v: Any) -> str:
        s = "" if v is None else str(v)
        s = s.replace("\n", " ").replace("|", "\\|")
        return s if len(s) <= max_chars else s[: max_chars - 1] + "…"
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
