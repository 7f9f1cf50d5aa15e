"""The DuckDB warehouse: one file, one writer at a time, short connections.

Every connection in the project goes through `open_warehouse`, which first takes an
exclusive `flock` on `<database>.lock`. DuckDB itself allows one writing process; the
lock turns "IOException: could not set lock" into an orderly wait, covers the CLI as well
as Dagster steps, and is released by the kernel when a process dies, so a cancelled or
killed run never leaves it held.
"""

from __future__ import annotations

import fcntl
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


def replace_partition(con: duckdb.DuckDBPyConnection, table: str, column: str, key: str,
                      rows: pa.Table, transaction: bool = True) -> int:
    """Replace the rows of one partition (creating the table if needed).

    Runs in its own transaction unless `transaction=False`, for callers that group
    several replacements into one.
    """
    con.register("_incoming", rows)
    try:
        if transaction:
            con.execute("BEGIN TRANSACTION")
        if not table_exists(con, table):
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _incoming LIMIT 0')
        con.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', [key])
        con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _incoming')
        if transaction:
            con.execute("COMMIT")
    except BaseException:
        if transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_incoming")
    return rows.num_rows


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


def describe_table(con: duckdb.DuckDBPyConnection, name: str, where: str = "", params: list | None = None,
                   preview_rows: int = 5, max_chars: int = 60) -> TableInfo:
    """Row count, column schema and a small markdown preview of a table or view."""
    clause = f" WHERE {where}" if where else ""
    count = con.execute(f'SELECT count(*) FROM "{name}"{clause}', params or []).fetchall()[0][0]
    columns = [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
    rows = con.execute(f'SELECT * FROM "{name}"{clause} LIMIT {preview_rows}', params or []).fetchall()
    return TableInfo(count, columns, markdown_table([c for c, _ in columns], rows, max_chars))


def markdown_table(headers: list[str], rows: list[tuple], max_chars: int = 60) -> str:
    def cell(v: Any) -> str:
        s = "" if v is None else str(v)
        s = s.replace("\n", " ").replace("|", "\\|")
        return s if len(s) <= max_chars else s[: max_chars - 1] + "…"
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
