"""Durable, append-only ledger of every attempt sent to an LLM endpoint.

Layout under the journal root (every directory name comes from `safe_name`):

    <stage>/_wal/<segment>.wal                    write-ahead segments: JSON lines (see `wal.py`)
    <stage>/<partition>/part-<segment>.parquet    a segment's rows for that partition
    <stage>/<partition>/part-<stamp>-c-<id>.parquet, compaction-<id>.json    compacted parts

Write path: `JournalWriter.append` writes one line to the writer's segment and returns; from
then on the attempt survives the process being killed. Its background thread fdatasyncs the
segment every `sync_seconds` (so a machine crash loses at most that much; throughput does not
wait for the disk), seals the segment every `flush_every` rows or `flush_seconds`, and folds
sealed segments into Parquet parts, filling in the offline token counts. A part is written to a
temporary name, fsynced and renamed, and only then is its segment deleted; the part is named
after the segment, so folding a segment twice (a crash in between) rewrites the same file.

Readers (`has_files`, `relation_sql` and everything built on them: `plan`, `final_records`,
`final_state`, `read_sql`) first fold the segments of writers that died (`recover`): a segment
is claimable only once its writer's `flock` is gone, so live writers, in this process or
another, never have their segments folded by someone else.

Compaction (`compact`, also when a writer closes) merges small parts into one file: it writes
the merged file and a `compaction-<id>.json` listing its inputs, then puts the merged file in
place; from that moment readers skip the listed inputs, so they see every row exactly once. The
inputs are deleted once no reader holds the stage's read lock (`reading`: `read_sql`, the ledger
views and `final_rows` hold it for their query), so a query never loses a file it has listed. A
raw `read_parquet` glob over the part files takes neither precaution: in the moment between the
two steps it may count a compaction's rows twice or miss a deleted file.

One row per attempt; `is_final` marks the attempt whose outcome is the request's outcome for
that run. Query with DuckDB: ``SELECT ... FROM {journal.relation_sql("r1")}``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.lib.llm import wal
from dagster_project.lib.llm.parsing import (
    CONTENT_FILTER,
    EMPTY_REASONING,
    OK,
    TRUNCATED,
)
from dagster_project.lib.llm.tokens import count_tokens, get_tokenizer
from dagster_project.lib.llm.types import EndpointConfig, LLMRequest

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
FOLD_BATCH_ROWS = 512  # rows token-counted and written per row group while folding: bounds memory
COMPACT_MIN_FILES = 4  # compact a partition once it has this many small parts
COMPACT_TARGET_BYTES = 128 * 2**20  # merged parts grow up to about this size; parts over half of it stay
QUERY_MEMORY_LIMIT = "1GB"  # DuckDB memory_limit for queries over the journal
PROMPT_TEXT_KEY = "_prompt_text"
# The row whose outcome is a request's outcome: its latest final attempt. `WHERE {LATEST_FINAL}`.
LATEST_FINAL = ("is_final QUALIFY row_number() OVER "
                "(PARTITION BY request_hash ORDER BY finished_at DESC, attempt DESC) = 1")

WAL_DIR = "_wal"  # reserved: `safe_name` never starts a name with "_"
_COMPACT_LOCK = ".compact.lock"  # per partition: one compaction at a time
_READ_LOCK = ".read.lock"  # per stage: readers share it; deleting merged parts takes it exclusively
_GATE_LOCK = ".read-gate.lock"  # per stage: held by a compaction waiting for readers, so new ones queue
READER_WAIT_S = 10.0  # how long compaction waits for readers before leaving merged parts for next time
_PART = re.compile(r"part-(?P<id>.+)\.parquet")
_COMPACTED = re.compile(r"part-\d{8}T\d{12}Z-c-(?P<cid>[0-9a-f]{16})\.parquet")
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
                 pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE", _TS: "TIMESTAMPTZ"}


def safe_name(name: str) -> str:
    """The directory name for a stage or partition name: the name itself when it is short, lowercase
    and plain (`[a-z0-9][a-z0-9._-]`, at most 64 characters), otherwise a readable prefix plus a hash
    of the whole name (``"Foo/Bar" -> "foo_bar~3f2a..."``). Never fails, never collides, never
    needs more than 64 characters, and is the same on case-insensitive file systems."""
    if _SAFE_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = re.sub(r"[^a-z0-9._-]+", "_", name.lower()).strip("._-")[:40].rstrip("._-")
    return f"{prefix or 'name'}~{digest}"


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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class Journal:
    """A journal root directory: layout, recovery, compaction and DuckDB reads."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # ---- layout ---------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        return self.root / safe_name(stage)

    def partition_dir(self, stage: str, partition: str) -> Path:
        return self.stage_dir(stage) / safe_name(partition)

    def wal_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / WAL_DIR

    def glob(self, stage: str, partition: str | None = None) -> str:
        """Glob of the parquet parts for a stage (all partitions when partition is None).
        For queries prefer `relation_sql`, which also recovers and never counts a row twice."""
        part = "*" if partition is None else safe_name(partition)
        return str(self.stage_dir(stage) / part / "part-*.parquet")

    def _partition_dirs(self, stage: str, partition: str | None) -> list[Path]:
        if partition is not None:
            return [self.partition_dir(stage, partition)]
        try:
            entries = list(os.scandir(self.stage_dir(stage)))
        except FileNotFoundError:
            return []
        return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("_"))

    def parts(self, stage: str, partition: str | None = None) -> list[Path]:
        """The part files a reader should read now: every row exactly once (see the module doc)."""
        return [p for d in self._partition_dirs(stage, partition) for p in _visible_parts(d)]

    # ---- reads ----------------------------------------------------------------------------
    def has_files(self, stage: str, partition: str | None = None) -> bool:
        self.recover(stage)
        return bool(self.parts(stage, partition))

    def relation_sql(self, stage: str, partition: str | None = None, *, row_ids: bool = False) -> str:
        """SQL table expression over the journal's rows, for embedding in DuckDB queries. Folds
        orphaned segments first; the file list is fixed when this is called.

        ``row_ids``: add ``filename`` and ``file_row_number``, which locate each row.
        """
        self.recover(stage)
        files = self.parts(stage, partition)
        if not files:
            cols = [f'NULL::{_DUCKDB_TYPES[f.type]} AS "{f.name}"' for f in JOURNAL_SCHEMA]
            if row_ids:
                cols += ["NULL::VARCHAR AS filename", "NULL::BIGINT AS file_row_number"]
            return f"(SELECT {', '.join(cols)} LIMIT 0)"
        extra = ", filename=true, file_row_number=true" if row_ids else ""
        return f"read_parquet([{', '.join(_quote(f) for f in files)}], union_by_name=true{extra})"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection (never the warehouse file), capped at
        QUERY_MEMORY_LIMIT so a large partition spills to disk instead of growing the process."""
        spill = Path(tempfile.gettempdir()) / "distill-duckdb-spill"
        return duckdb.connect(":memory:", config={"memory_limit": QUERY_MEMORY_LIMIT, "temp_directory": str(spill)})

    def read_sql(self, stage: str, partition: str | None, select_sql: str) -> pa.Table | None:
        """Run `select_sql` where the relation `j` is the journal; None when there are no files."""
        with self.reading(stage):
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
        table = self.read_sql(stage, partition, f"SELECT * FROM j WHERE {LATEST_FINAL}")
        if table is None:
            return JOURNAL_SCHEMA.empty_table()
        return conform(table)

    def final_state(self, stage: str, partition: str) -> dict[str, tuple[str, int]]:
        """request_hash -> (status, max_tokens) of the latest final row."""
        table = self.read_sql(stage, partition, f"SELECT request_hash, status, max_tokens FROM j WHERE {LATEST_FINAL}")
        if table is None:
            return {}
        cols = table.to_pydict()
        return {h: (s, m) for h, s, m in zip(cols["request_hash"], cols["status"], cols["max_tokens"])}

    # ---- folding and recovery -------------------------------------------------------------
    def fold(self, stage: str, segment: wal.Segment, *, with_token_counts: bool = True) -> int:
        """Write a locked segment's records as one part per partition, named after the segment
        (so folding it again rewrites the same files). Returns the number of rows."""
        name = f"part-{segment.id}.parquet"
        open_parts: dict[str, tuple[Path, pq.ParquetWriter]] = {}
        rows = 0
        try:
            for batch in _batched(wal.read_records(segment.path), FOLD_BATCH_ROWS):
                if with_token_counts:
                    _add_token_counts(batch)
                by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for r in batch:
                    by_partition[r.get("partition") or ""].append(r)
                for partition, part_rows in by_partition.items():
                    if partition not in open_parts:
                        directory = self._make_partition_dir(stage, partition)
                        tmp = directory / f".{name}.tmp"
                        open_parts[partition] = (tmp, pq.ParquetWriter(tmp, JOURNAL_SCHEMA, compression="zstd"))
                    open_parts[partition][1].write_table(rows_to_table(part_rows))
                rows += len(batch)
            for tmp, writer in open_parts.values():
                writer.close()
                _fsync_file(tmp)
                os.replace(tmp, tmp.with_name(name))
                wal.fsync_dir(tmp.parent)
        except BaseException:
            for tmp, writer in open_parts.values():
                try:
                    writer.close()
                finally:
                    tmp.unlink(missing_ok=True)
            raise
        return rows

    def _make_partition_dir(self, stage: str, partition: str) -> Path:
        directory = self.partition_dir(stage, partition)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            wal.fsync_dir(directory.parent)
        return directory

    def recover(self, stage: str) -> int:
        """Fold the segments whose writers are gone (killed, crashed, or never closed) into
        parts, then delete them. Segments held by live writers are left alone. Returns rows folded."""
        wal_dir = self.wal_dir(stage)
        try:
            names = sorted(n for n in os.listdir(wal_dir) if n.endswith(wal.SUFFIX))
        except FileNotFoundError:
            return 0
        total = 0
        for name in names:
            segment = wal.claim(wal_dir / name)
            if segment is None:
                continue
            try:
                rows = self.fold(stage, segment)
            except BaseException:
                segment.release()
                raise
            segment.remove()
            total += rows
            log.info("journal %s: folded %d rows from %s, left by a writer that did not finish", stage, rows, name)
        return total

    # ---- compaction -----------------------------------------------------------------------
    @contextmanager
    def reading(self, stage: str) -> Iterator[None]:
        """Hold for as long as a query may open the files `relation_sql` listed: compaction deletes
        the parts it has merged only when no reader of the stage holds this (a shared flock)."""
        gate, fd = _open_lock(self.stage_dir(stage) / _GATE_LOCK), _open_lock(self.stage_dir(stage) / _READ_LOCK)
        try:
            if gate is not None and fd is not None:  # else no stage yet, or a read-only journal
                fcntl.flock(gate, fcntl.LOCK_SH)  # waits while a compaction is deleting merged parts
                fcntl.flock(fd, fcntl.LOCK_SH)
                fcntl.flock(gate, fcntl.LOCK_UN)
            yield
        finally:
            for f in (gate, fd):
                if f is not None:
                    os.close(f)

    def compact(self, stage: str, partition: str | None = None, *, min_files: int = COMPACT_MIN_FILES,
                target_bytes: int = COMPACT_TARGET_BYTES) -> int:
        """Merge small parts (under half of `target_bytes`) into larger ones, once a partition has at
        least `min_files` of them; a partition another process is compacting is skipped. Safe while
        readers read and writers write. Returns the number of part files merged away."""
        self.recover(stage)
        merged = 0
        for directory in self._partition_dirs(stage, partition):
            fd = _open_lock(directory / _COMPACT_LOCK)
            if fd is None:
                continue
            try:
                if _flock(fd, fcntl.LOCK_EX, wait_s=0):
                    merged += self._compact_dir(stage, directory, min_files, target_bytes)
            finally:
                os.close(fd)
        return merged

    def _compact_dir(self, stage: str, directory: Path, min_files: int, target_bytes: int) -> int:
        if not self._finish_compactions(stage, directory):
            return 0  # readers still read the inputs of an earlier one: merge again later
        try:
            segments = {n.removesuffix(wal.SUFFIX) for n in os.listdir(self.wal_dir(stage))}
        except FileNotFoundError:
            segments = set()
        # a part whose segment still exists may be folded again: it is not final yet
        small = [p for p in _visible_parts(directory)
                 if _PART.fullmatch(p.name)["id"] not in segments and p.stat().st_size < target_bytes // 2]
        if len(small) < min_files:
            return 0
        merged, batch, size = 0, [], 0
        for path in small:
            batch.append(path)
            size += path.stat().st_size
            if size >= target_bytes:
                merged += _merge(directory, batch)
                batch, size = [], 0
        if len(batch) >= 2:
            merged += _merge(directory, batch)
        self._finish_compactions(stage, directory)
        return merged

    def _finish_compactions(self, stage: str, directory: Path) -> bool:
        """Delete the inputs of compactions whose output is in place, once no reader of the stage could
        still open them, and discard compactions that died before theirs was (the caller holds the
        partition's compaction lock). False if readers kept some inputs for longer than READER_WAIT_S."""
        done = True
        for name in os.listdir(directory):
            if name.endswith(".tmp") and (name.startswith(".compaction-") or name.startswith(".part-") and "-c-" in name):
                (directory / name).unlink(missing_ok=True)  # never put in place
            elif name.startswith("compaction-") and name.endswith(".json"):
                info = json.loads((directory / name).read_text())
                if (directory / info["output"]).exists() and not _delete_when_unread(
                        self.stage_dir(stage), [directory / n for n in info["inputs"]]):
                    done = False
                    continue
                (directory / name).unlink()
                wal.fsync_dir(directory)
        return done


def _open_lock(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        return None
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None


def _flock(fd: int, mode: int, wait_s: float) -> bool:
    """Take `mode` on `fd`, retrying for up to `wait_s`; whether it was taken."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _delete_when_unread(stage_dir: Path, paths: list[Path]) -> bool:
    """Delete `paths` once no reader of the stage can still open them: close the gate to new
    readers, wait for the current ones (up to READER_WAIT_S each), delete. Whether done."""
    gate, fd = _open_lock(stage_dir / _GATE_LOCK), _open_lock(stage_dir / _READ_LOCK)
    try:
        if gate is None or fd is None or not (_flock(gate, fcntl.LOCK_EX, READER_WAIT_S)
                                              and _flock(fd, fcntl.LOCK_EX, READER_WAIT_S)):
            return False
        for path in paths:
            path.unlink(missing_ok=True)
        wal.fsync_dir(paths[0].parent)
        return True
    finally:
        for f in (gate, fd):
            if f is not None:
                os.close(f)


def _compaction_inputs(directory: Path, cid: str) -> list[str]:
    try:
        return json.loads((directory / f"compaction-{cid}.json").read_text())["inputs"]
    except FileNotFoundError:
        return []  # finished: its inputs are gone


def _visible_parts(directory: Path) -> list[Path]:
    """Part files in `directory`, without the inputs of a compaction whose output is in place."""
    try:
        names = {n for n in os.listdir(directory) if _PART.fullmatch(n)}
    except FileNotFoundError:
        return []
    for name in list(names):
        if m := _COMPACTED.fullmatch(name):
            names.difference_update(_compaction_inputs(directory, m["cid"]))
    return [directory / n for n in sorted(names)]


def _merge(directory: Path, inputs: list[Path]) -> int:
    """Write `inputs` as one part, list them next to it, and put it in place: from then on readers
    read it instead of them (they are deleted by `_finish_compactions`). Returns len(inputs)."""
    cid = uuid.uuid4().hex[:16]
    output = directory / f"part-{_utc_stamp()}-c-{cid}.parquet"
    tmp = directory / f".{output.name}.tmp"
    schema = pa.unify_schemas([pq.read_schema(p) for p in inputs])
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        for path in inputs:
            pending.append(_to_schema(pq.read_table(path), schema))
            if sum(t.num_rows for t in pending) >= FOLD_BATCH_ROWS * 8:
                writer.write_table(pa.concat_tables(pending))
                pending = []
        if pending:
            writer.write_table(pa.concat_tables(pending))
    _fsync_file(tmp)
    listing = directory / f"compaction-{cid}.json"
    listing_tmp = directory / f".{listing.name}.tmp"
    listing_tmp.write_text(json.dumps({"output": output.name, "inputs": [p.name for p in inputs]}))
    _fsync_file(listing_tmp)
    os.replace(listing_tmp, listing)
    wal.fsync_dir(directory)
    os.replace(tmp, output)
    wal.fsync_dir(directory)
    log.info("journal: compacted %d parts into %s", len(inputs), output.name)
    return len(inputs)


def _to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns (missing ones null), in its order."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


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
    Duplicate requests (same hash) are sent once. Orphaned segments are folded first.
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


def _add_token_counts(rows: list[dict[str, Any]]) -> None:
    """Fill the offline *_tokens_len columns of final ok/truncated rows in one batch."""
    targets = [r for r in rows if r.get("is_final") and r.get("status") in _COUNTED_STATUSES
               and r.get("content_tokens_len") is None]
    if not targets:
        return
    texts: list[str] = []
    for r in targets:
        texts.extend((r.get(PROMPT_TEXT_KEY) or "", r.get("reasoning") or "", r.get("content") or ""))
    counts = count_tokens(texts)
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


class JournalFoldError(RuntimeError):
    """Rows could not be folded into Parquet parts; they are safe in the write-ahead segments."""


class JournalWriter:
    """Thread-safe writer for one stage: `append` is one write to a write-ahead segment.

    The segment is created (and its directory name decided) here, before any request is sent.
    A background thread fdatasyncs it every `sync_seconds`, seals it after `flush_every` rows or
    `flush_seconds`, and folds sealed segments into Parquet parts with offline token counts
    (`count_tokens`). `flush()` folds everything appended so far; `close()` flushes, then
    compacts the partitions written (`compact`). No thread or process of the writer outlives the
    process, and none keeps it from exiting: what was not folded is recovered by the next reader.
    """

    def __init__(
        self,
        journal: Journal,
        stage: str,
        *,
        flush_every: int = 2048,
        flush_seconds: float = 5.0,
        sync_seconds: float = 1.0,
        count_tokens: bool = True,
        compact: bool = True,
    ) -> None:
        self.journal, self.stage = journal, stage
        self.flush_every = max(1, flush_every)
        self.flush_seconds, self.sync_seconds = flush_seconds, sync_seconds
        self.count_tokens, self.compact = count_tokens, compact
        self.rows_written = 0
        self.files_written = 0
        if count_tokens:
            get_tokenizer()  # loading holds the GIL for a while: now, not in the middle of the run
        self._dir = journal.wal_dir(stage)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._segment: wal.Segment | None = wal.Segment.create(self._dir)
        wal.fsync_dir(self._dir)
        self._sealed: list[wal.Segment] = []
        self._partitions: set[str] = set()
        self._lock = threading.Lock()  # the active segment and the sealed list
        self._fold_lock = threading.Lock()  # folding, syncing and closing segment files
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
        """Record one attempt; when this returns it survives the process being killed."""
        row["stage"] = self.stage
        line = wal.encode(row)
        with self._lock:
            segment = self._segment
            if segment is None:
                raise RuntimeError("journal writer is closed")
            segment.append(line)
            segment.rows += 1
            if segment.first_row_at is None:
                segment.first_row_at = time.monotonic()
            segment.partitions.add(row.get("partition") or "")
            if segment.rows >= self.flush_every:
                self._seal()
                self._wake.set()

    def _seal(self, reopen: bool = True) -> None:
        """Move the active segment to the sealed list (caller holds `_lock`)."""
        segment = self._segment
        if segment is None or not segment.rows:
            return
        self._segment = wal.Segment.create(self._dir) if reopen else None
        self._sealed.append(segment)

    def flush(self) -> None:
        """Fold everything appended so far into Parquet parts (blocking)."""
        with self._lock:
            self._seal()
        self._fold_sealed()
        if self._error is not None:
            raise JournalFoldError(self._fold_failure()) from self._error

    def _fold_failure(self) -> str:
        return (f"journal {self.stage}: rows could not be folded into Parquet parts; they are safe in "
                f"{self._dir} and are folded by the next run or reader")

    def _fold_sealed(self) -> None:
        with self._fold_lock:
            while True:
                with self._lock:
                    if not self._sealed:
                        return
                    segment = self._sealed[0]
                try:
                    rows = self.journal.fold(self.stage, segment, with_token_counts=self.count_tokens)
                except Exception as exc:  # the segment stays (and stays ours); retried on flush/close
                    log.exception("journal %s: folding %s failed", self.stage, segment.path.name)
                    self._error = exc
                    return
                self._error = None
                segment.remove()
                with self._lock:
                    self._sealed.pop(0)
                    self._partitions |= segment.partitions
                self.rows_written += rows
                self.files_written += len(segment.partitions)

    def _sync(self) -> None:
        """fdatasync every segment with unsynced rows (and the directory, for a new segment)."""
        with self._fold_lock:  # segment files are closed under this lock only
            with self._lock:
                todo = [(s, s.rows) for s in [*self._sealed, self._segment] if s is not None and s.synced_rows < s.rows]
            for segment, rows in todo:
                segment.sync()
                if not segment.synced_rows:
                    wal.fsync_dir(self._dir)
                segment.synced_rows = rows

    def _run(self) -> None:
        # Normal priority on purpose: a niced thread preempted while it holds the GIL stalls the
        # engine's event loop, and a folding backlog only grows the wait at the end of the run.
        while not self._closed:
            self._wake.wait(min(self.sync_seconds, self.flush_seconds))
            self._wake.clear()
            if self._closed:
                return
            try:
                self._sync()
                with self._lock:
                    active = self._segment
                    if (active is not None and active.first_row_at is not None
                            and time.monotonic() - active.first_row_at >= self.flush_seconds):
                        self._seal()
                if self._error is None:
                    self._fold_sealed()
            except Exception:  # never let the thread die: appends do not depend on it
                log.exception("journal %s: background sync/fold failed", self.stage)

    def close(self) -> None:
        """Fold what is left, delete the segments, compact; never leaves a thread behind."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        with self._lock:
            self._seal(reopen=False)
            empty, self._segment = self._segment, None
        if empty is not None:
            empty.remove()
        self._error = None
        self._fold_sealed()
        if self._error is not None:
            for segment in self._sealed:
                segment.release()  # unlocked: the next reader or run folds them
            raise JournalFoldError(self._fold_failure()) from self._error
        if self.compact:
            for partition in sorted(self._partitions):
                try:
                    self.journal.compact(self.stage, partition)
                except Exception:  # an optimisation: never fail a run for it
                    log.exception("journal %s[%s]: compaction failed", self.stage, partition)
