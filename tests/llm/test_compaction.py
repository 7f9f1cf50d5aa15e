"""Compaction folds small parts into one, and readers see every row exactly once before, during and
after it, also when it dies at any step."""

from __future__ import annotations

import os
import threading
import uuid

import pyarrow.parquet as pq
import pytest

from dagster_project.lib.llm import journal as journal_module
from dagster_project.lib.llm import wal
from dagster_project.lib.llm.journal import Journal, JournalWriter, rows_to_table
from dagster_project.lib.query import run_query


def row(i: int, partition: str = "p") -> dict:
    return {"request_hash": f"h{i:06d}", "partition": partition, "prompt_id": f"q{i}", "attempt": 1,
            "is_final": True, "status": "ok", "content": f"答案 {i}", "started_at": 1000.0 + i,
            "finished_at": 1000.5 + i}  # fmt: skip


def write(journal: Journal, ids: range, rows_per_part: int, partition: str = "p", compact: bool = False) -> None:
    with JournalWriter(journal, "r1", flush_every=rows_per_part, count_tokens=False, compact=compact) as writer:
        for i in ids:
            writer.append(row(i, partition))


def hashes(journal: Journal, partition: str | None = "p") -> list[str]:
    table = journal.read_sql("r1", partition, "SELECT request_hash FROM j ORDER BY 1")
    return [] if table is None else table.column("request_hash").to_pylist()


def expected(ids: range) -> list[str]:
    return [row(i)["request_hash"] for i in ids]


def stray_files(journal: Journal, partition: str = "p") -> list[str]:
    return sorted(n for n in os.listdir(journal.partition_dir("r1", partition))
                  if n.startswith(".") and n != ".compact.lock" or n.startswith("compaction-"))


def test_closing_a_writer_compacts_what_it_wrote(journal) -> None:
    write(journal, range(100), rows_per_part=5, compact=True)  # 20 segments, one part each
    assert len(journal.parts("r1", "p")) == 1
    assert hashes(journal) == expected(range(100)) and stray_files(journal) == []


def test_on_demand_compaction_merges_old_and_new_parts_once(journal) -> None:
    write(journal, range(60), rows_per_part=4)
    legacy = journal.partition_dir("r1", "p") / f"part-20250101T000000000000Z-{uuid.uuid4().hex}.parquet"
    pq.write_table(rows_to_table([row(i) for i in range(60, 70)]), legacy)  # a part from the earlier writer
    write(journal, range(0, 40), rows_per_part=4, partition="q")
    assert len(journal.parts("r1", "p")) == 16
    assert journal.compact("r1") == 16 + 10  # every partition of the stage
    assert [len(journal.parts("r1", p)) for p in ("p", "q")] == [1, 1] and not legacy.exists()
    assert hashes(journal) == expected(range(70))
    ledger = run_query("SELECT count(*), count(DISTINCT request_hash) FROM r1_ledger",
                       journal.root / "absent.duckdb", journal.root).rows
    assert ledger == [(110, 70)]  # p's 70 rows and q's 40 (the same hashes as p's first 40)
    assert journal.compact("r1") == 0  # one part per partition: nothing left to merge


def test_readers_never_see_a_row_twice_or_miss_one_while_compacting(journal) -> None:
    write(journal, range(200), rows_per_part=5)
    seen: list[list[tuple[int, int]]] = [[] for _ in range(3)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(counts: list[tuple[int, int]]) -> None:
        try:
            while not stop.is_set():
                t = journal.read_sql("r1", "p", "SELECT count(*) AS n, count(DISTINCT request_hash) AS d FROM j")
                counts.append((t.column("n")[0].as_py(), t.column("d")[0].as_py()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(counts,)) for counts in seen]
    for t in threads:
        t.start()
    try:
        for step in range(4):  # more parts arrive between compactions, as from later runs
            write(journal, range(200 + 50 * step, 250 + 50 * step), rows_per_part=5)
            assert journal.compact("r1", "p", min_files=2) > 0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    for counts in seen:
        assert counts and all(n == d for n, d in counts)  # never a row twice
        assert [d for _, d in counts] == sorted(d for _, d in counts)  # never a row lost
    assert hashes(journal) == expected(range(400))


class Crash(Exception):
    """Stands for the process dying at this point."""


@pytest.mark.parametrize("step", range(1, 13))  # 11 file operations merge 8 parts; at 12 nothing fails
def test_a_compaction_that_dies_at_any_step_loses_and_duplicates_nothing(tmp_path, monkeypatch, step) -> None:
    journal = Journal(tmp_path / "journal")
    write(journal, range(40), rows_per_part=5)
    calls = {"n": 0}
    real_replace, real_unlink = os.replace, journal_module.Path.unlink

    def counted(real):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == step:
                raise Crash(f"died at file operation {step}")
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(journal_module.os, "replace", counted(real_replace))
    monkeypatch.setattr(journal_module.Path, "unlink", counted(real_unlink))
    try:
        journal.compact("r1", "p")
        finished = True
    except Crash:
        finished = False
    monkeypatch.undo()
    assert finished == (step == 12)
    assert hashes(journal) == expected(range(40))  # right after the crash: each row once
    journal.compact("r1", "p")  # the next compaction finishes or discards the dead one
    assert hashes(journal) == expected(range(40)) and stray_files(journal) == []
    assert len(journal.parts("r1", "p")) == 1


def test_a_part_is_not_compacted_until_its_segment_is_gone(journal) -> None:
    write(journal, range(20), rows_per_part=5)
    segment = wal.Segment.create(journal.wal_dir("r1"))
    for i in range(20, 30):
        segment.append(wal.encode(row(i)))
    journal.fold("r1", segment, with_token_counts=False)  # a live writer between writing the part and
    folded = journal.partition_dir("r1", "p") / f"part-{segment.id}.parquet"  # deleting its segment
    assert journal.compact("r1", "p", min_files=2) == 4  # the four finished parts only
    assert folded.exists() and hashes(journal) == expected(range(30))
    segment.release()  # the writer dies there: the next reader folds the segment again, to the same file
    assert hashes(journal) == expected(range(30)) and not segment.path.exists()
    assert journal.compact("r1", "p", min_files=2) == 2 and hashes(journal) == expected(range(30))
