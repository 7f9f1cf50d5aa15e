"""Decontamination of prompts against known evaluation sets (character n-gram overlap).

Eval sets are JSONL files ``<set_name>.jsonl`` in one directory, one object per line with
``question`` (text) and optional ``id`` (see ``assets/eval_sets/README.md``).

Both sides are normalized like near-dup (NFKC, lowercase, no whitespace/punctuation) and cut
into character ``ngram``-grams (default 13). For a prompt P and an eval item E sharing n-grams::

    overlap = |grams(P) & grams(E)| / min(|grams(P)|, |grams(E)|)

i.e. the share of the shorter text's n-grams found in the other one, so an eval question pasted
into a longer prompt scores 1.0, and so does a prompt that is a fragment of a longer eval item.
Pairs with ``overlap >= min_overlap`` are reported. A text shorter than ``ngram`` is one n-gram
(its whole normalized form), so it only matches an identical short text.

Speed: all prompt n-gram hashes are computed with numpy and tested against the sorted array of
eval n-gram hashes at once (``np.isin``); only the rare hits are looked up in the
hash -> eval items index. Hashes are 64-bit; ``matched_ngram`` is read back from the prompt text.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from dagster_project.lib.dedup.shingles import ngram_hashes, normalize_all

DEFAULT_NGRAM = 13
DEFAULT_MIN_OVERLAP = 0.5

RESULT_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("eval_set", pa.string()),
        ("eval_id", pa.string()),
        ("overlap", pa.float64()),
        ("matched_ngram", pa.string()),
    ]
)


@dataclass(frozen=True)
class EvalItem:
    set_name: str
    item_id: str
    text: str


def load_eval_sets(directory: Path | str) -> list[EvalItem]:
    """Read every ``*.jsonl`` in ``directory`` (sorted by name); the file stem is the set name.

    Each line needs a non-empty ``question``; ``id`` defaults to the 0-based line number.
    Blank lines are skipped. Ids must be unique within a set.
    """
    items: list[EvalItem] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        seen: set[str] = set()
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle):
                if not line.strip():
                    continue
                record = json.loads(line)
                question = record.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise ValueError(f"{path.name}:{line_no + 1}: missing 'question'")
                item_id = str(record.get("id", line_no))
                if item_id in seen:
                    raise ValueError(f"{path.name}:{line_no + 1}: duplicate id {item_id!r}")
                seen.add(item_id)
                items.append(EvalItem(path.stem, item_id, question))
    return items


class EvalIndex:
    """Hashed n-gram index of eval items: sorted unique hashes plus hash -> item positions."""

    def __init__(self, eval_items: Sequence[EvalItem], ngram: int = DEFAULT_NGRAM):
        self.items = list(eval_items)
        self.ngram = ngram
        hashes, offsets = ngram_hashes(normalize_all(item.text for item in self.items), ngram)
        self.sizes = np.zeros(len(self.items), dtype=np.int64)
        postings: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.items)):
            unique = np.unique(hashes[offsets[i] : offsets[i + 1]])
            self.sizes[i] = unique.size
            for h in unique.tolist():
                postings[h].append(i)
        self.postings = dict(postings)
        self.hashes = np.fromiter(self.postings, dtype=np.uint64, count=len(self.postings))
        self.hashes.sort()


def find_contamination(
    ids: Sequence[str],
    texts: Sequence[str],
    eval_items: Sequence[EvalItem] | EvalIndex,
    *,
    ngram: int = DEFAULT_NGRAM,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    batch_size: int = 8192,
) -> pa.Table:
    """Prompts that overlap an eval item: ``prompt_id, eval_set, eval_id, overlap, matched_ngram``.

    One row per (prompt, eval item) pair with overlap >= ``min_overlap``, in prompt input order,
    then by decreasing overlap. ``matched_ngram`` is the first shared n-gram (normalized text).
    """
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    index = eval_items if isinstance(eval_items, EvalIndex) else EvalIndex(eval_items, ngram)
    if index.ngram != ngram:
        raise ValueError(f"index built with ngram={index.ngram}, asked for {ngram}")
    rows: list[tuple[int, float, int, str]] = []
    for start in range(0, len(texts), batch_size):
        rows.extend(_scan_batch(texts[start : start + batch_size], start, index, min_overlap))
    rows.sort(key=lambda row: (row[0], -row[1], row[2]))
    return pa.table(
        {
            "prompt_id": [ids[p] for p, _, _, _ in rows],
            "eval_set": [index.items[e].set_name for _, _, e, _ in rows],
            "eval_id": [index.items[e].item_id for _, _, e, _ in rows],
            "overlap": [overlap for _, overlap, _, _ in rows],
            "matched_ngram": [gram for _, _, _, gram in rows],
        },
        schema=RESULT_SCHEMA,
    )


def _scan_batch(
    texts: Sequence[str], first: int, index: EvalIndex, min_overlap: float
) -> list[tuple[int, float, int, str]]:
    if index.hashes.size == 0:
        return []
    normalized = normalize_all(texts)
    hashes, offsets = ngram_hashes(normalized, index.ngram)
    hit_positions = np.flatnonzero(np.isin(hashes, index.hashes))
    if hit_positions.size == 0:
        return []
    hit_docs = np.searchsorted(offsets, hit_positions, side="right") - 1
    rows = []
    for doc in np.unique(hit_docs).tolist():
        positions = hit_positions[hit_docs == doc]
        shared: dict[int, set[int]] = defaultdict(set)
        first_hit: dict[int, int] = {}
        for pos in positions.tolist():
            h = int(hashes[pos])
            for item in index.postings[h]:
                shared[item].add(h)
                first_hit.setdefault(item, pos - int(offsets[doc]))
        prompt_size = np.unique(hashes[offsets[doc] : offsets[doc + 1]]).size
        for item, grams in shared.items():
            overlap = len(grams) / min(prompt_size, int(index.sizes[item]))
            if overlap >= min_overlap:
                text = normalized[doc]
                at = first_hit[item]
                rows.append((first + doc, overlap, item, text[at : at + index.ngram]))
    return rows
