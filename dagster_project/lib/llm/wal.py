"""Write-ahead segments: the journal's first, durable record of every attempt.

A segment is a file of JSON lines, one per attempt, written with one `write()` each. A write
that returned is in the kernel's page cache, so it survives the writing process being killed
(SIGKILL, OOM killer, a crash) at any moment; `sync()` (fdatasync) makes it survive a machine
crash too. The owner holds an exclusive `flock` on its segment for as long as it has it open:
the kernel drops the lock when the owner dies, and that is how a reader knows a segment is
orphaned and may be folded into the Parquet parts (`claim`). A live writer's segment is
never claimable, so two writers never fold each other's work. (A child forked without exec
while a writer is open shares the lock: the segment waits for both to be gone. Local POSIX
file systems, and NFSv4, implement `flock` across processes.)

A line that does not parse (cut short by a kill in the middle of its `write()`, or zeros a
machine crash left at the end of the file) was still in flight: `read_records` drops it and
logs how many it dropped. A record cut just before its newline is complete, and kept.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

log = logging.getLogger("dagster_project.lib.llm.wal")

SUFFIX = ".wal"
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(eq=False)
class Segment:
    """An open, exclusively locked segment file."""

    path: Path
    fd: int
    rows: int = 0
    synced_rows: int = 0
    first_row_at: float | None = None  # time.monotonic() of the first append
    partitions: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @classmethod
    def create(cls, directory: Path) -> "Segment":
        """A new, empty segment in `directory`, locked by this process. It is locked under a
        hidden name and then renamed, so no reader ever sees it unlocked."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        hidden = directory / f".{path.name}.tmp"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, path)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    def append(self, data: bytes) -> None:
        """Write one record (a complete line) with as few `write()` calls as the kernel allows."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def sync(self) -> None:
        _fdatasync(self.fd)

    def remove(self) -> None:
        """Delete the file (its rows are folded), then let go of the lock."""
        try:
            self.path.unlink(missing_ok=True)
            fsync_dir(self.path.parent)
        finally:
            self.release()

    def release(self) -> None:
        """Close without deleting: the file stays for whoever recovers it next."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def claim(path: Path) -> Segment | None:
    """Lock the segment at `path` if its owner is gone; None while a live writer holds it, or if
    it was folded and removed meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        opened = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
            os.close(fd)  # the owner folded and removed it between our open and our lock
            return None
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return Segment(path, fd)


def encode(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The complete records of a segment, in order; torn or damaged lines are dropped and logged."""
    dropped = 0
    with open(path, "rb") as fh:
        for line in fh:  # a complete record that lost only its newline still parses, and is kept
            body = line.strip(b"\0 \t\r\n")
            if not body:
                continue
            try:
                record = orjson.loads(body)
            except orjson.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                dropped += 1
                continue
            yield record
    if dropped:
        log.warning("%s: dropped %d torn or damaged record(s); they were still in flight when the writer stopped",
                    path.name, dropped)
