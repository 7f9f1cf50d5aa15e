"""Math-Verify at scale: worker processes, chunked dispatch, a hard per-item wall-clock limit.

Why processes: Math-Verify's own timeouts use SIGALRM, which only works in a process's
main thread, and some inputs keep running past that alarm (C-level big-number work).
Each worker runs :func:`check_one` in its main thread; the parent enforces
``item_timeout_s`` per item from outside and kills the worker when it is exceeded.

How a run proceeds:

* Items without a gold answer yield ``no_gold`` at once, without touching a worker.
* The parent sends each worker a chunk of items (one pickle per chunk) and the next chunk
  before the current one ends; the worker reads the chunks waiting in its pipe whenever
  its local queue runs empty.
* The worker writes the item it is running and its start time into a small shared-memory
  slot, and sends its finished results in batches (every ``RESULT_FLUSH_S`` and whenever
  it runs out of work): the parent knows at any moment which item runs since when without
  a message per item, which kept it busy on a core the workers need.
* An item running longer than ``item_timeout_s`` -> the worker is killed, that item is
  recorded ``timeout``, everything else the worker held and had not reported goes back to
  the queue and a fresh worker takes the slot. Results are keyed by item and the first
  one wins, so a re-run item is never counted twice.
* A worker that dies (segfault, ``os._exit``, OOM kill) -> results it already sent are
  kept, the item it was running is retried once on its own (then recorded ``error``), the
  rest is re-queued.
* A chunk is sent ahead to a busy worker only while the unacknowledged payload stays well
  under the socket buffer: a worker stuck in C code (holding the GIL) cannot drain its
  pipe, and the parent must never block on it.

Output order: ``no_gold`` results first, then in completion order (not input order).
Every input item yields exactly one :class:`VerifyResult`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import multiprocessing as mp
import os
import re
import selectors
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

MATH_VERIFY_VERSION = importlib.metadata.version("math-verify")
STATUSES = ("correct", "incorrect", "unextractable", "no_gold", "timeout", "error")

DEFAULT_CHUNK_SIZE = 64
MAX_CHUNK_BYTES = 256 * 1024
PREFETCH_BYTES = 96 * 1024  # well under the default 208 KiB Unix-socket send buffer
MAX_CRASH_RETRIES = 1
WORKER_START_TIMEOUT_S = 120.0
MAX_FAILED_STARTS = 3
RESULT_FLUSH_S = 0.02  # a worker sends its finished results at least this often

# Test hooks, read by workers: an answer containing the marker crashes / hangs its worker.
CRASH_MARKER_ENV = "VERIFY_POOL_TEST_CRASH_MARKER"
HANG_MARKER_ENV = "VERIFY_POOL_TEST_HANG_MARKER"

logger = logging.getLogger(__name__)


@dataclass
class VerifyItem:
    completion_id: str
    gold: str | None
    answer: str


@dataclass
class VerifyResult:
    """One item's verdict; the fields after ``error`` are `checker.CheckResult`'s audit fields."""

    completion_id: str
    status: str
    extracted_answer: str | None
    parsed_gold: str | None
    seconds: float
    error: str | None
    parsed_answer: str | None = None
    method: str | None = None
    answer_source: str | None = None
    rules: str | None = None


def verify_items(
    items: Iterable[VerifyItem],
    *,
    workers: int = 0,
    item_timeout_s: float = 20.0,
    parse_timeout_s: int = 5,
    verify_timeout_s: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_method: str = "spawn",
) -> Iterator[VerifyResult]:
    """Verify ``items`` in ``workers`` processes (0 = ``os.cpu_count()``), one result per item.

    ``parse_timeout_s``/``verify_timeout_s`` are Math-Verify's own whole-second alarms
    (``verify_timeout_s`` defaults to ``parse_timeout_s``); ``item_timeout_s`` is the hard
    wall-clock limit per item. ``progress(done, total)`` is called after every result.
    ``start_method`` must be "spawn" or "forkserver" (callers may have threads).
    Results come back in completion order (``no_gold`` first), exactly one per item.
    """
    if start_method not in ("spawn", "forkserver"):
        raise ValueError("start_method must be 'spawn' or 'forkserver'")
    if item_timeout_s <= 0 or chunk_size < 1:
        raise ValueError("item_timeout_s must be > 0 and chunk_size >= 1")
    for seconds in (parse_timeout_s, verify_timeout_s):
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0):
            raise TypeError(f"Math-Verify timeouts must be positive whole seconds, got {seconds!r}")
    items = list(items)
    total = len(items)
    done = 0

    def report(result: VerifyResult) -> VerifyResult:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)
        return result

    pending: list[int] = []
    for index, item in enumerate(items):
        if item.gold is None or not str(item.gold).strip():
            yield report(VerifyResult(item.completion_id, "no_gold", None, None, 0.0, None))
        else:
            pending.append(index)
    if not pending:
        return

    supervisor = _Supervisor(
        items=items,
        indices=pending,
        workers=min(workers or os.cpu_count() or 1, len(pending)),
        item_timeout_s=float(item_timeout_s),
        parse_timeout_s=parse_timeout_s,
        verify_timeout_s=verify_timeout_s if verify_timeout_s is not None else parse_timeout_s,
        chunk_size=chunk_size,
        context=mp.get_context(start_method),
    )
    for result in supervisor.run():
        yield report(result)


# ----------------------------------------------------------------------------- worker side


def _worker_main(conn: Connection, slot, parse_timeout_s: int, verify_timeout_s: int) -> None:
    """Worker loop: take chunks of ``(index, gold, answer)``, send results in batches.

    Math-Verify runs in the main thread (its SIGALRM timeouts need it). ``slot`` holds
    ``[index of the running item or -1, its start on the monotonic clock]`` for the parent.
    """
    from dagster_project.lib.verify.checker import (
        check_one,  # imported here so the parent stays light
    )

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    check_one("$1$", "\\boxed{1}", parse_timeout_s, verify_timeout_s)  # load the ANTLR parser
    crash_marker = os.environ.get(CRASH_MARKER_ENV) or None
    hang_marker = os.environ.get(HANG_MARKER_ENV) or None
    todo: deque = deque()
    finished: list[tuple] = []
    conn.send(("ready", os.getpid()))
    last_flush = time.monotonic()
    while True:
        if not todo:
            if finished:
                conn.send(finished)
                finished = []
            if not _receive(conn, todo):
                return
            last_flush = time.monotonic()
        index, gold, answer = todo.popleft()
        started = time.monotonic()
        slot[1] = started  # the time first: a reader never sees an index with an older start
        slot[0] = index
        if crash_marker and crash_marker in answer:
            os._exit(70)
        if hang_marker and hang_marker in answer:
            _hang_ignoring_alarms()
        try:
            result = tuple(check_one(gold, answer, parse_timeout_s, verify_timeout_s))
        except BaseException as exc:  # noqa: BLE001 - report, keep the worker alive
            result = ("error", None, None, f"{type(exc).__name__}: {exc}"[:300])
        now = time.monotonic()
        slot[0] = -1
        finished.append((index, now - started, result))
        if now - last_flush >= RESULT_FLUSH_S:
            conn.send(finished)
            finished = []
            last_flush = now


def _result(completion_id: str, seconds: float, result: tuple) -> VerifyResult:
    """A VerifyResult from a worker's `CheckResult` tuple (status, extracted, parsed_gold, error, audit...)."""
    status, extracted, parsed_gold, error, *audit = result
    return VerifyResult(completion_id, status, extracted, parsed_gold, seconds, error, *audit)


def _receive(conn: Connection, todo: deque) -> bool:
    """Wait for a chunk, then move every chunk that has arrived into ``todo``.

    False when the parent said stop (``None``) or went away.
    """
    block = True
    try:
        while block or conn.poll():
            chunk = conn.recv()
            if chunk is None:
                return False
            todo.extend(chunk)
            block = False
    except (EOFError, OSError):
        return False
    return True


def _hang_ignoring_alarms() -> None:
    """Test hook: hang like a runaway C call, holding the GIL so no signal handler can run.

    (Catastrophic regex backtracking runs inside the C regex engine for ~2**60 steps.)
    """
    re.match(r"(a+)+$", "a" * 60 + "b")


# ----------------------------------------------------------------------------- parent side


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    spawned_at: float
    slot: object  # shared [running index or -1, its start time], written by the worker
    ready: bool = False
    running: dict[int, None] = field(default_factory=dict)  # sent and not reported, in order
    queued_bytes: int = 0  # payload sent since the worker was last idle

    def current(self) -> tuple[int, float] | None:
        """The item the worker is running and since when, or None between items."""
        index, started = int(self.slot[0]), self.slot[1]
        return (index, started) if index >= 0 else None


class _Supervisor:
    """Owns the worker processes and the bookkeeping that guarantees one result per item."""

    def __init__(self, *, items, indices, workers, item_timeout_s, parse_timeout_s,
                 verify_timeout_s, chunk_size, context) -> None:
        self.items = items
        self.queue: deque[int] = deque(indices)
        self.solo: deque[int] = deque()  # items that crashed a worker, retried alone
        self.remaining = set(indices)
        self.n_workers = workers
        self.item_timeout_s = item_timeout_s
        self.parse_timeout_s = parse_timeout_s
        self.verify_timeout_s = verify_timeout_s
        self.chunk_size = chunk_size
        self.context = context
        self.workers: list[_Worker] = []
        self.crashes: Counter[int] = Counter()
        self.sizes: dict[int, int] = {}
        self.failed_starts = 0
        self.out: list[VerifyResult] = []
        self.selector = selectors.DefaultSelector()

    def run(self) -> Iterator[VerifyResult]:
        try:
            while self.remaining:
                self._top_up_workers()
                self._dispatch()
                self._wait_and_collect()
                self._enforce_deadlines()
                while self.out:
                    yield self.out.pop(0)
        finally:
            self._shutdown()

    # -- lifecycle

    def _top_up_workers(self) -> None:
        busy_or_ready = len(self.workers)
        waiting = len(self.queue) + len(self.solo) + sum(len(w.running) for w in self.workers)
        while busy_or_ready < min(self.n_workers, max(waiting, 1)) and (self.queue or self.solo):
            parent_conn, child_conn = self.context.Pipe(duplex=True)
            slot = self.context.RawArray("d", [-1.0, 0.0])
            process = self.context.Process(
                target=_worker_main,
                args=(child_conn, slot, self.parse_timeout_s, self.verify_timeout_s),
                name="math-verify-worker",
                daemon=not mp.current_process().daemon,
            )
            process.start()
            child_conn.close()
            worker = _Worker(process, parent_conn, spawned_at=time.monotonic(), slot=slot)
            self.selector.register(parent_conn, selectors.EVENT_READ, worker)
            self.selector.register(process.sentinel, selectors.EVENT_READ, worker)
            self.workers.append(worker)
            busy_or_ready += 1

    def _retire(self, worker: _Worker, *, kill: bool) -> None:
        self.selector.unregister(worker.conn)
        self.selector.unregister(worker.process.sentinel)
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self.workers.remove(worker)

    def _shutdown(self) -> None:
        for worker in list(self.workers):
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in list(self.workers):
            worker.process.join(timeout=2)
            self._retire(worker, kill=True)
        self.selector.close()

    # -- work distribution

    def _dispatch(self) -> None:
        for worker in self.workers:
            if not worker.ready or len(worker.running) > self.chunk_size // 2:
                continue
            chunk, size = self._next_chunk()
            if not chunk:
                return
            # A worker stuck in C code cannot drain its pipe, so a chunk sent ahead of time
            # must fit in the socket buffer: otherwise wait until the worker is idle.
            if worker.running and worker.queued_bytes + size > PREFETCH_BYTES:
                self._put_back(chunk)
                continue
            payload = [(i, self.items[i].gold, self.items[i].answer or "") for i in chunk]
            if not worker.running:
                worker.queued_bytes = 0
            worker.running.update(dict.fromkeys(chunk))
            worker.queued_bytes += size
            try:
                worker.conn.send(payload)
            except OSError:
                self._handle_death(worker)
                return  # the worker list changed; dispatch again next round

    def _next_chunk(self) -> tuple[list[int], int]:
        """Crash retries alone; otherwise up to ``chunk_size`` items and MAX_CHUNK_BYTES."""
        if self.solo:
            index = self.solo.popleft()
            return [index], self._size(index)
        target = max(1, min(self.chunk_size, math.ceil(len(self.queue) / len(self.workers))))
        chunk, total = [], 0
        while self.queue and len(chunk) < target:
            size = self._size(self.queue[0])
            if chunk and total + size > MAX_CHUNK_BYTES:
                break
            chunk.append(self.queue.popleft())
            total += size
        return chunk, total

    def _put_back(self, chunk: list[int]) -> None:
        if len(chunk) == 1 and self.crashes[chunk[0]]:
            self.solo.appendleft(chunk[0])
        else:
            self.queue.extendleft(reversed(chunk))

    def _size(self, index: int) -> int:
        """Approximate pickled size of one item (cached: it is asked for on send and receipt)."""
        size = self.sizes.get(index)
        if size is None:
            item = self.items[index]
            size = len((item.gold or "").encode()) + len((item.answer or "").encode()) + 64
            self.sizes[index] = size
        return size

    def _wait_and_collect(self) -> None:
        """Sleep until a worker has news or the next deadline comes, then read what is ready."""
        if not self.workers:
            return
        now = time.monotonic()
        deadlines = []
        for worker in self.workers:
            if not worker.ready:
                deadlines.append(worker.spawned_at + WORKER_START_TIMEOUT_S)
            elif (current := worker.current()) is not None:
                deadlines.append(current[1] + self.item_timeout_s)
        wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
        events = self.selector.select(timeout=wait_s)
        dead: list[_Worker] = []
        for key, _ in events:
            worker = key.data
            if worker in dead:
                continue
            if not self._drain(worker) or key.fileobj == worker.process.sentinel:
                dead.append(worker)
        for worker in dead:
            if worker in self.workers:
                self._drain(worker)
                self._handle_death(worker)

    def _drain(self, worker: _Worker) -> bool:
        """Read every message already sent by ``worker``; False once its pipe is closed."""
        try:
            while worker.conn.poll():
                self._on_message(worker, worker.conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _on_message(self, worker: _Worker, message) -> None:
        if isinstance(message, tuple) and message[0] == "ready":
            worker.ready = True
            self.failed_starts = 0
            return
        for index, seconds, result in message:
            if index in worker.running:
                del worker.running[index]
                worker.queued_bytes = max(0, worker.queued_bytes - self._size(index))
            if index in self.remaining:  # the first result wins; never count an item twice
                self.remaining.discard(index)
                self.out.append(_result(self.items[index].completion_id, seconds, result))

    # -- failures

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if not worker.ready:
                if now - worker.spawned_at > WORKER_START_TIMEOUT_S:
                    self._retire(worker, kill=True)
                    self._count_failed_start("did not start in time")
                continue
            current = worker.current()
            if current is None or now - current[1] <= self.item_timeout_s:
                continue
            # Overdue: read what it sent, then look again (it may have just moved on).
            if self._drain(worker) and worker.current() == current and current[0] in worker.running:
                self._handle_timeout(worker, *current)

    def _handle_timeout(self, worker: _Worker, culprit: int, started: float) -> None:
        elapsed = time.monotonic() - started
        rest = [i for i in worker.running if i != culprit]
        worker.running.clear()
        self._retire(worker, kill=True)
        self._requeue(rest)
        self._finish(culprit, "timeout", elapsed,
                     f"exceeded the {self.item_timeout_s:g} s hard limit; worker killed")

    def _handle_death(self, worker: _Worker) -> None:
        if worker not in self.workers:
            return
        was_ready = worker.ready
        current = worker.current()
        running = list(worker.running)
        worker.running.clear()
        self._retire(worker, kill=True)
        code = worker.process.exitcode
        if not was_ready:
            self._requeue(running)
            self._count_failed_start(f"exited with code {code} during start-up")
            return
        culprit = current[0] if current is not None and current[0] in running else None
        self._requeue([i for i in running if i != culprit])
        if culprit is None:
            if running:
                logger.warning("verify worker died (exit code %s) between items; re-queued its items", code)
            return
        self.crashes[culprit] += 1
        if self.crashes[culprit] > MAX_CRASH_RETRIES:
            self._finish(culprit, "error", 0.0, f"worker died (exit code {code}) on this item")
        else:
            logger.warning("verify worker died (exit code %s); retrying its item alone", code)
            self.solo.append(culprit)

    def _requeue(self, indices) -> None:
        self.queue.extendleft(reversed([i for i in indices if i in self.remaining]))

    def _finish(self, index: int, status: str, seconds: float, error: str) -> None:
        if index in self.remaining:
            self.remaining.discard(index)
            self.out.append(VerifyResult(self.items[index].completion_id, status, None, None, seconds, error))

    def _count_failed_start(self, why: str) -> None:
        self.failed_starts += 1
        logger.warning("verify worker %s", why)
        if self.failed_starts >= MAX_FAILED_STARTS:
            raise RuntimeError(f"verify workers keep failing to start ({why})")
