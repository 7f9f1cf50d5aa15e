"""Durable, append-only ledger of every attempt sent to an LLM endpoint.

Layout: ``<root>/<stage>/<partition>/part-<utc timestamp>-<uuid>.parquet``. Each file is
written to a hidden temp name in the same directory, fsynced, renamed with `os.replace`
and the directory is fsynced, so readers never see a partial file and a crash loses at
most the rows still buffered in a `JournalWriter` (< `flush_seconds` old).

One row per attempt; `is_final` marks the attempt whose outcome is the request's outcome
for that run. Query with DuckDB: ``read_parquet(journal.glob("r1"), union_by_name=true)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.lib.llm.parsing import (
    CONTENT_FILTER,
    EMPTY_REASONING,
    OK,
    TRUNCATED,
)
from dagster_project.lib.llm.tokens import count_tokens, count_tokens_offloaded
from dagster_project.lib.llm.types import ConfigError, EndpointConfig, LLMRequest

log = logging.getLogger("dagster_project.lib.llm.journal")

_TS = pa.timestamp("us", tz="UTC")
JOURNAL_SCHEMA = pa.schema(
    [
        ("request_hash", pa.string()),
        ("stage", pa.string()),
        ("partition", pa.string()),
        ("prompt_id", pa.string()),
        ("sample_index", pa.int32()),
        ("purpose", pa.string()),
        ("model", pa.string()),
        ("base_url", pa.string()),
        ("params_json", pa.string()),
        ("max_tokens", pa.int32()),
        ("attempt", pa.int16()),
        ("is_final", pa.bool_()),
        ("status", pa.string()),
        ("http_status", pa.int16()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("finish_reason", pa.string()),
        ("reasoning", pa.string()),
        ("content", pa.string()),
        ("usage_prompt_tokens", pa.int64()),
        ("usage_completion_tokens", pa.int64()),
        ("usage_reasoning_tokens", pa.int64()),
        ("prompt_tokens_len", pa.int32()),
        ("reasoning_tokens_len", pa.int32()),
        ("content_tokens_len", pa.int32()),
        ("cost", pa.float64()),
        ("currency", pa.string()),
        ("latency_s", pa.float64()),
        ("ttft_s", pa.float64()),
        ("retry_after_s", pa.float64()),
        ("started_at", _TS),
        ("finished_at", _TS),
        ("simulated", pa.bool_()),
        ("run_id", pa.string()),
    ]
)
"""The ledger schema. `started_at`/`finished_at` are given to the writer as epoch seconds."""

_TIMESTAMP_FIELDS = ("started_at", "finished_at")
_COUNTED_STATUSES = (OK, TRUNCATED)
REUSED_ALWAYS = (OK, CONTENT_FILTER, EMPTY_REASONING)
# A writer that falls behind (an endpoint answering faster than tokens are counted) flushes its
# backlog in batches of this size, so token counting and part files stay bounded in memory.
MAX_FLUSH_ROWS = 512
QUERY_MEMORY_LIMIT = "1GB"  # DuckDB memory_limit for queries over the journal
PROMPT_TEXT_KEY = "_prompt_text"
# The row whose outcome is a request's outcome: its latest final attempt. `WHERE {LATEST_FINAL}`.
LATEST_FINAL = ("is_final QUALIFY row_number() OVER "
                "(PARTITION BY request_hash ORDER BY finished_at DESC, attempt DESC) = 1")
_BAD_PARTITION = re.compile(r"[\\/*?\[\]{}]|^\.|^$")


def validate_name(name: str, what: str = "partition") -> str:
    if _BAD_PARTITION.search(name):
        raise ConfigError(f"invalid journal {what} name {name!r}: no path separators, glob characters or leading dot")
    return name


def request_hash(cfg: EndpointConfig, req: LLMRequest) -> str:
    """sha256 of what determines the generated text: model, sampling params (not max_tokens),
    think-prefix strategy, messages, sample index and response format."""
    payload = {
        "model": cfg.model,
        "sampling": cfg.sampling_params(),
        "messages": req.messages_list(),
        "sample_index": req.sample_index,
        "response_format": req.response_format_dict(),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """A journal root directory: file layout, atomic writes and DuckDB reads."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def partition_dir(self, stage: str, partition: str) -> Path:
        return self.root / validate_name(stage, "stage") / validate_name(partition)

    def glob(self, stage: str, partition: str | None = None) -> str:
        """Glob of the parquet parts for a stage (all partitions when partition is None)."""
        part = "*" if partition is None else validate_name(partition)
        return str(self.root / validate_name(stage, "stage") / part / "part-*.parquet")

    def relation_sql(self, stage: str, partition: str | None = None, *, row_ids: bool = False) -> str:
        """SQL table expression over the journal files, for embedding in DuckDB queries.

        ``row_ids``: add ``filename`` and ``file_row_number``, which locate each row.
        """
        quoted = self.glob(stage, partition).replace("'", "''")
        extra = ", filename=true, file_row_number=true" if row_ids else ""
        return f"read_parquet('{quoted}', union_by_name=true{extra})"

    def has_files(self, stage: str, partition: str | None = None) -> bool:
        dirs = [self.partition_dir(stage, partition)] if partition is not None else [
            p for p in (self.root / stage).glob("*") if p.is_dir()
        ]
        for d in dirs:
            if d.is_dir() and any(e.name.startswith("part-") and e.name.endswith(".parquet") for e in os.scandir(d)):
                return True
        return False

    def write_table(self, stage: str, partition: str, table: pa.Table) -> Path:
        """Atomically write one part file and return its path."""
        directory = self.partition_dir(stage, partition)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(directory.parent)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        final = directory / f"part-{stamp}-{uuid.uuid4().hex}.parquet"
        tmp = directory / f".{final.name}.tmp"
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
        return final

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection (never the warehouse file), capped at
        QUERY_MEMORY_LIMIT so a large partition spills to disk instead of growing the process."""
        spill = Path(tempfile.gettempdir()) / "distill-duckdb-spill"
        return duckdb.connect(":memory:", config={"memory_limit": QUERY_MEMORY_LIMIT, "temp_directory": str(spill)})

    def read_sql(self, stage: str, partition: str | None, select_sql: str) -> pa.Table | None:
        """Run `select_sql` where the relation `j` is the journal; None when there are no files."""
        if not self.has_files(stage, partition):
            return None
        con = self.connect()
        try:
            con.execute(f"CREATE TEMP VIEW j AS SELECT * FROM {self.relation_sql(stage, partition)}")
            return con.sql(select_sql).to_arrow_table()
        finally:
            con.close()

    def final_records(self, stage: str, partition: str | None = None) -> pa.Table:
        """The latest final row per request_hash (empty table with the schema if none)."""
        table = self.read_sql(
            stage,
            partition,
            f"SELECT * FROM j WHERE {LATEST_FINAL}",
        )
        if table is None:
            return JOURNAL_SCHEMA.empty_table()
        return conform(table)

    def final_state(self, stage: str, partition: str) -> dict[str, tuple[str, int]]:
        """request_hash -> (status, max_tokens) of the latest final row."""
        table = self.read_sql(
            stage,
            partition,
            f"SELECT request_hash, status, max_tokens FROM j WHERE {LATEST_FINAL}",
        )
        if table is None:
            return {}
        cols = table.to_pydict()
        return {h: (s, m) for h, s, m in zip(cols["request_hash"], cols["status"], cols["max_tokens"])}


def conform(table: pa.Table) -> pa.Table:
    """Cast a journal query result back to JOURNAL_SCHEMA (DuckDB reports tz as Etc/UTC)."""
    if set(JOURNAL_SCHEMA.names) <= set(table.column_names):
        return table.select(JOURNAL_SCHEMA.names).cast(JOURNAL_SCHEMA)
    return table


def is_reusable(status: str, journaled_max_tokens: int | None, max_tokens: int) -> bool:
    """Reuse rule for a request's latest final row."""
    if status in REUSED_ALWAYS:
        return True
    if status == TRUNCATED:
        return journaled_max_tokens is not None and max_tokens <= journaled_max_tokens
    return False


def plan(
    cfg: EndpointConfig, requests: Iterable[LLMRequest], journal: Journal, stage: str | None = None
) -> tuple[list[LLMRequest], list[LLMRequest]]:
    """Split requests into (to_send, reused) against the journal of `stage` (default cfg.kind).

    Final ok / content_filter / empty_reasoning rows are reused whatever max_tokens is now;
    a final truncated row is reused unless max_tokens grew; final errors are re-sent.
    Duplicate requests (same hash) are sent once.
    """
    stage = stage or cfg.kind
    by_partition: dict[str, list[LLMRequest]] = defaultdict(list)
    for req in requests:
        by_partition[req.partition].append(req)
    to_send: list[LLMRequest] = []
    reused: list[LLMRequest] = []
    for partition, reqs in by_partition.items():
        state = journal.final_state(stage, partition)
        seen: set[str] = set()
        for req in reqs:
            h = request_hash(cfg, req)
            if h in seen:
                continue
            seen.add(h)
            prior = state.get(h)
            if prior is not None and is_reusable(prior[0], prior[1], cfg.max_tokens):
                reused.append(req)
            else:
                to_send.append(req)
    log.info("plan %s: %d to send, %d reused from journal", stage, len(to_send), len(reused))
    return to_send, reused


def _add_token_counts(rows: list[dict[str, Any]], offload: bool) -> None:
    """Fill the offline *_tokens_len columns of final ok/truncated rows in one batch."""
    targets = [r for r in rows if r.get("is_final") and r.get("status") in _COUNTED_STATUSES and r.get("content_tokens_len") is None]
    if not targets:
        return
    texts: list[str] = []
    for r in targets:
        texts.extend((r.get(PROMPT_TEXT_KEY) or "", r.get("reasoning") or "", r.get("content") or ""))
    counts = count_tokens_offloaded(texts) if offload else count_tokens(texts)
    for i, r in enumerate(targets):
        r["prompt_tokens_len"], r["reasoning_tokens_len"], r["content_tokens_len"] = counts[3 * i : 3 * i + 3]


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Build a JOURNAL_SCHEMA table from row dicts (timestamps as epoch seconds)."""
    arrays = []
    for f in JOURNAL_SCHEMA:
        values = [r.get(f.name) for r in rows]
        if f.name in _TIMESTAMP_FIELDS:
            micros = pa.array([None if v is None else int(v * 1_000_000) for v in values], type=pa.int64())
            arrays.append(micros.cast(_TS))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=JOURNAL_SCHEMA)


class JournalWriter:
    """Thread-safe buffered writer for one stage.

    Rows are flushed (one part file per partition) when `flush_every` rows are buffered,
    every `flush_seconds` by a background thread, and on `close()`. Offline token counts
    are added at flush time, in batch: in a helper process by default ("process"), since the
    tokenizer holds the GIL; "thread" counts in the flush thread; False leaves them null.
    """

    def __init__(
        self,
        journal: Journal,
        stage: str,
        *,
        flush_every: int = 64,
        flush_seconds: float = 2.0,
        count_tokens: bool | str = "process",
    ) -> None:
        self.journal = journal
        self.stage = validate_name(stage, "stage")
        self.flush_every = max(1, flush_every)
        self.flush_seconds = flush_seconds
        if count_tokens not in (True, False, "process", "thread"):
            raise ValueError("count_tokens must be 'process', 'thread', True or False")
        self.count_tokens = count_tokens
        self.rows_written = 0
        self.files_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"journal-{stage}", daemon=True)
        self._thread.start()

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, row: dict[str, Any]) -> None:
        if self._error is not None:
            raise RuntimeError("journal writer failed") from self._error
        if self._closed:
            raise RuntimeError("journal writer is closed")
        row["stage"] = self.stage
        with self._lock:
            self._buffer.append(row)
            full = len(self._buffer) >= self.flush_every
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything buffered now (blocking), at most MAX_FLUSH_ROWS rows per part file."""
        while self._flush_some():
            pass

    def _flush_some(self) -> bool:
        with self._lock:
            rows, self._buffer = self._buffer[:MAX_FLUSH_ROWS], self._buffer[MAX_FLUSH_ROWS:]
        if not rows:
            return False
        with self._write_lock:
            if self.count_tokens:
                _add_token_counts(rows, offload=self.count_tokens in ("process", True))
            by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                by_partition[r["partition"]].append(r)
            for partition, part_rows in by_partition.items():
                self.journal.write_table(self.stage, partition, rows_to_table(part_rows))
                self.files_written += 1
            self.rows_written += len(rows)
        return True

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except BaseException as exc:  # surfaced to the caller on the next append/close
                log.exception("journal flush failed")
                self._error = exc
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()
        if self._error is not None:
            raise RuntimeError("journal writer failed") from self._error


def now() -> float:
    return time.time()
