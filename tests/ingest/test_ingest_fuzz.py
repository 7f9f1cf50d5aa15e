"""Random byte-level damage to real rows: a few bad bytes cost a few records, never the file, and the
loader never raises anything but a one-line SourceFileError."""

import random

import pytest
from bad_files import ROWS, Case, csv_bytes, jsonl, manifest_text, pretty_array

from dagster_project.lib.sources.loader import SourceFileError, load_source
from dagster_project.lib.sources.manifest import parse_manifest

N = 40
RECORDS = [{"id": f"f{i}", "question": ROWS[i % len(ROWS)]["question"] + f"（第{i}题）", "answer": str(i)}
           for i in range(N)]
WRITERS = {"jsonl": jsonl, "json": pretty_array, "csv": csv_bytes}
DAMAGE = b'\x00\xff\x80"{}[],:\n\r\\ \xe4'


def _damage(data: bytes, rng: random.Random, hits: int, keep: int = 0) -> bytes:
    """`hits` random deletions, insertions or replacements of a byte, after the first `keep` bytes."""
    out = bytearray(data)
    for _ in range(hits):
        at = rng.randrange(keep, len(out))
        action = rng.randrange(3)
        if action == 0:
            out[at:at + 1] = b""
        elif action == 1:
            out.insert(at, rng.choice(DAMAGE))
        else:
            out[at] = rng.choice(DAMAGE)
    return bytes(out)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_random_damage_costs_only_the_records_it_touches(fmt, tmp_path):
    rng = random.Random(f"ingest-fuzz-{fmt}")
    clean = WRITERS[fmt](RECORDS)
    case = Case("fuzz", fmt, lambda p: None, N)
    path = tmp_path / f"fuzz.{fmt}"
    manifest = tmp_path / "m.toml"
    manifest.write_text(manifest_text(case, path), encoding="utf-8")
    worst = 0
    for trial in range(80):
        hits = 1 + trial % 3
        # a CSV header is not a record: damage to it is a whole-file error (tested elsewhere)
        path.write_bytes(_damage(clean, rng, hits, keep=clean.index(b"\n") + 1 if fmt == "csv" else 0))
        try:
            result = load_source(parse_manifest(manifest), tmp_path, tmp_path, max_question_chars=20000)
        except SourceFileError as exc:  # only when no record at all survives, which a few bytes cannot do
            pytest.fail(f"trial {trial}: {exc}")
        [counts] = result.counts
        assert counts.records == counts.loaded + counts.rejected == result.prompts.num_rows + result.rejected.num_rows
        lost = N - result.prompts.num_rows
        worst = max(worst, lost / hits)
        assert lost <= 2 * hits + 1, (trial, hits, result.rejected.column("reason").to_pylist())
        ids = result.prompts.column("native_id").to_pylist()
        assert len(set(ids)) == len(ids)
        assert all(r["source_line"] >= 1 and r["reason"] for r in result.rejected.to_pylist())
    assert worst <= 3
