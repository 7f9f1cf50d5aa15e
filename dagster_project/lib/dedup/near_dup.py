"""Near-duplicate detection for Chinese prompts (and responses) with MinHash LSH.

Pipeline:
  1. normalize every text (see ``shingles.normalize``); texts with identical normalized forms are
     exact duplicates (similarity 1.0) and only the first of them goes through MinHash;
  2. hash character n-grams once (uint64), then MinHash with ``num_perm`` universal hashes
     ``(a * x + b) mod (2**31 - 1)`` evaluated with numpy over blocks of n-grams;
  3. LSH banding (``bands`` x ``rows``) proposes candidate pairs;
  4. every candidate pair is verified with the exact Jaccard similarity of the two normalized
     texts' character n-gram sets; pairs below ``threshold`` are discarded;
  5. winner rule (greedy, order = priority): walk the texts in input order; a text is kept unless
     it is verified-similar to an already kept text, in which case it is dropped and points at the
     earliest such kept text. So every reported pair has direct exact Jaccard >= threshold, a row is
     never both kept and dropped, and similarity does not propagate through chains (with A~B, B~C
     and A!~C, A is kept, B points at A and C is kept). The caller sorts best-first.

LSH parameters: with ``threshold=0.8`` and ``num_perm=128`` the default is 21 bands of 6 rows
(126 of the 128 values used): a pair with Jaccard exactly 0.8 becomes a candidate with probability
1 - (1 - 0.8**6)**21 = 0.998; at Jaccard 0.5 with 0.28, at 0.3 with 0.015. Since candidates are
verified exactly, bands are chosen for recall (``choose_bands``): the largest ``rows`` whose
candidate probability at the threshold is still >= 0.995.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Sequence

import numpy as np
import pyarrow as pa

from dagster_project.lib.dedup.shingles import (
    _mix64,
    jaccard,
    ngram_hashes,
    ngram_set,
    normalize_all,
)

DEFAULT_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_BANDS = 21
DEFAULT_ROWS = 6
MIN_CANDIDATE_PROBABILITY = 0.995
MAX_FULL_BUCKET = 100  # buckets larger than this pair every member with the first 100 only

_PRIME = np.uint64((1 << 31) - 1)
_BLOCK_NGRAMS = 8192
_BATCH_DOCS = 1024

RESULT_SCHEMA = pa.schema(
    [("duplicate_id", pa.string()), ("kept_id", pa.string()), ("similarity", pa.float64())]
)
PAIR_SCHEMA = pa.schema([("left", pa.int64()), ("right", pa.int64()), ("similarity", pa.float64())])


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard shares at least one LSH band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows): the largest ``rows`` keeping candidate probability >= 0.995 at threshold."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= MIN_CANDIDATE_PROBABILITY:
            best = (bands, rows)
    return best


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_PRIME), size=num_perm, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), size=num_perm, dtype=np.uint64)
    return a, b


def _minhash_batch(normalized: Sequence[str], ngram: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (len(normalized), num_perm) uint32 for non-empty normalized texts."""
    hashes, offsets = ngram_hashes(normalized, ngram)
    x = hashes >> np.uint64(33)  # 31-bit inputs keep a * x + b inside uint64
    num_perm = a.size
    signature = np.full((len(normalized), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    work = np.empty((num_perm, _BLOCK_NGRAMS), dtype=np.uint64)
    doc_starts = offsets[:-1]
    for start in range(0, x.size, _BLOCK_NGRAMS):
        stop = min(start + _BLOCK_NGRAMS, x.size)
        block = work[:, : stop - start]
        np.multiply(a[:, None], x[start:stop], out=block)
        block += b[:, None]
        np.remainder(block, _PRIME, out=block)
        first_doc = int(np.searchsorted(offsets, start, side="right")) - 1
        last_doc = int(np.searchsorted(offsets, stop - 1, side="right")) - 1
        docs = np.arange(first_doc, last_doc + 1)
        docs = docs[offsets[docs + 1] > offsets[docs]]  # empty texts have no n-grams
        segment_starts = np.maximum(doc_starts[docs], start) - start
        mins = np.minimum.reduceat(block, segment_starts, axis=1).T.astype(np.uint32)
        np.minimum.at(signature, docs, mins)
    return signature


def minhash_signatures(
    normalized: Sequence[str],
    *,
    ngram: int = 5,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = 1,
    workers: int | None = None,
) -> np.ndarray:
    """MinHash signatures of already-normalized texts, shape (len, num_perm), dtype uint32."""
    a, b = _permutations(num_perm, seed)
    batches = [normalized[i : i + _BATCH_DOCS] for i in range(0, len(normalized), _BATCH_DOCS)]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers == 1 or len(batches) <= 1:
        parts = [_minhash_batch(batch, ngram, a, b) for batch in batches]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda batch: _minhash_batch(batch, ngram, a, b), batches))
    if not parts:
        return np.empty((0, num_perm), dtype=np.uint32)
    return np.concatenate(parts, axis=0)


@lru_cache(maxsize=8)
def _band_multipliers(rows: int) -> np.ndarray:
    rng = np.random.default_rng(0xBA2D)
    return rng.integers(1, 2**63, size=rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _band_keys(signature: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One uint64 key per row for the band's ``rows`` signature values (collisions only add candidates)."""
    cols = signature[:, band * rows : (band + 1) * rows].astype(np.uint64)
    return _mix64(np.ascontiguousarray(cols @ _band_multipliers(rows), dtype=np.uint64))


def lsh_candidates(signature: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Candidate pairs (k, 2) int64 of row indices (left < right) sharing at least one band."""
    if bands * rows > signature.shape[1]:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={signature.shape[1]}")
    n = signature.shape[0]
    found: list[np.ndarray] = []
    for band in range(bands):
        keys = _band_keys(signature, band, rows)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        boundaries = np.flatnonzero(np.diff(sorted_keys)) + 1
        run_starts = np.concatenate(([0], boundaries))
        run_lengths = np.diff(np.concatenate((run_starts, [n])))
        twos = run_starts[run_lengths == 2]
        if twos.size:
            found.append(np.stack([order[twos], order[twos + 1]], axis=1))
        for start, length in zip(run_starts[run_lengths > 2], run_lengths[run_lengths > 2]):
            members = np.sort(order[start : start + length])
            if length <= MAX_FULL_BUCKET:
                pairs = list(itertools.combinations(members.tolist(), 2))
            else:
                head = members[:MAX_FULL_BUCKET].tolist()
                pairs = [(h, m) for h in head for m in members.tolist() if h < m]
            found.append(np.asarray(pairs, dtype=np.int64))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)


def _verified_pairs(
    normalized: Sequence[str], candidates: np.ndarray, threshold: float, ngram: int
) -> list[tuple[int, int, float]]:
    cache: dict[int, set[str]] = {}

    def grams(i: int) -> set[str]:
        if i not in cache:
            cache[i] = ngram_set(normalized[i], ngram)
        return cache[i]

    verified = []
    for left, right in candidates.tolist():
        similarity = jaccard(grams(left), grams(right))
        if similarity >= threshold:
            verified.append((left, right, similarity))
    return verified


def similar_pairs(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ngram: int = 5,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = 1,
    bands: int | None = None,
    rows: int | None = None,
    workers: int | None = None,
) -> pa.Table:
    """All verified pairs (left < right, by index) with exact Jaccard >= threshold.

    Exact duplicates (identical normalized text) are included with similarity 1.0.
    """
    normalized = normalize_all(texts)
    representative, reps = _exact_groups(normalized)
    pairs = _rep_pairs(normalized, reps, threshold, ngram, num_perm, seed, bands, rows, workers)
    members: dict[int, list[int]] = {}
    for i, rep in enumerate(representative):
        if rep >= 0:
            members.setdefault(rep, []).append(i)
    out: list[tuple[int, int, float]] = []
    for group in members.values():
        out.extend((x, y, 1.0) for x, y in itertools.combinations(group, 2))
    for left, right, similarity in pairs:
        out.extend(
            (min(x, y), max(x, y), similarity) for x in members[left] for y in members[right]
        )
    out.sort()
    return pa.Table.from_pylist(
        [dict(zip(PAIR_SCHEMA.names, row)) for row in out], schema=PAIR_SCHEMA
    )


def _exact_groups(normalized: Sequence[str]) -> tuple[list[int], list[int]]:
    """Per text, the index of the first text with the same normalized form (-1 if empty)."""
    first: dict[str, int] = {}
    representative = []
    for i, text in enumerate(normalized):
        representative.append(first.setdefault(text, i) if text else -1)
    reps = [i for i, rep in enumerate(representative) if rep == i]
    return representative, reps


def _rep_pairs(
    normalized: Sequence[str],
    reps: list[int],
    threshold: float,
    ngram: int,
    num_perm: int,
    seed: int,
    bands: int | None,
    rows: int | None,
    workers: int | None,
) -> list[tuple[int, int, float]]:
    """Verified pairs among representatives, as original indices (left < right)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if bands is None or rows is None:
        bands, rows = choose_bands(threshold, num_perm)
    rep_texts = [normalized[i] for i in reps]
    signature = minhash_signatures(rep_texts, ngram=ngram, num_perm=num_perm, seed=seed, workers=workers)
    candidates = lsh_candidates(signature, bands, rows)
    verified = _verified_pairs(rep_texts, candidates, threshold, ngram)
    return [(reps[left], reps[right], similarity) for left, right, similarity in verified]


def find_near_duplicates(
    ids: Sequence[str],
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ngram: int = 5,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = 1,
    bands: int | None = None,
    rows: int | None = None,
    workers: int | None = None,
) -> pa.Table:
    """Rows to drop as near-duplicates: ``duplicate_id, kept_id, similarity``.

    Input order is the priority (earliest wins). ``similarity`` is the exact Jaccard of the
    normalized character ``ngram`` sets of the duplicate and its kept text (always >= threshold).
    Rows come out in input order of ``duplicate_id``. Texts that normalize to "" are never paired.
    """
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    normalized = normalize_all(texts)
    representative, reps = _exact_groups(normalized)
    pairs = _rep_pairs(normalized, reps, threshold, ngram, num_perm, seed, bands, rows, workers)

    earlier: dict[int, list[tuple[int, float]]] = {}
    for left, right, similarity in pairs:
        earlier.setdefault(right, []).append((left, similarity))
    winner: dict[int, tuple[int, float]] = {}  # dropped representative -> (kept index, similarity)
    for rep in reps:
        kept = [(left, sim) for left, sim in earlier.get(rep, ()) if left not in winner]
        if kept:
            winner[rep] = min(kept)

    duplicate_ids, kept_ids, similarities = [], [], []
    for i, rep in enumerate(representative):
        if rep < 0 or (rep == i and rep not in winner):
            continue
        kept, similarity = winner.get(rep, (rep, 1.0))
        duplicate_ids.append(ids[i])
        kept_ids.append(ids[kept])
        similarities.append(similarity)
    return pa.table(
        {"duplicate_id": duplicate_ids, "kept_id": kept_ids, "similarity": similarities},
        schema=RESULT_SCHEMA,
    )
