"""Text normalization and character n-gram hashing shared by near-dup and decontamination.

Normalization (applied before any n-gram is taken):
  1. Unicode NFKC (full-width ASCII -> ASCII, compatibility forms folded),
  2. lowercase,
  3. delete whitespace, punctuation (Chinese and ASCII), control and format characters
     (Unicode categories Z*, P*, Cc, Cf). Symbols (S*: ``+ = < $ ^``), letters and digits stay.
  (For speed the deletion also runs once before NFKC; the result is the same except that a
  combining mark separated from its base by punctuation may now compose with it.)

A text whose normalized form is shorter than ``n`` contributes one shingle: the whole
normalized string. A text that normalizes to the empty string has no shingles.

N-gram hashes are 64-bit, computed with numpy over all texts at once (a linear combination of
code points with fixed odd multipliers, then a splitmix64 finalizer). They are deterministic
across processes and platforms; they do not depend on Python's ``hash``.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

_DELETED_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_MAX_NGRAM = 64
_HASH_SEED = 0x5EED_C0DE


@lru_cache(maxsize=1)
def _deletion_table() -> dict[int, None]:
    table: dict[int, None] = {}
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        if category[0] == "P" or category in _DELETED_CATEGORIES:
            table[cp] = None
    return table


def normalize(text: str) -> str:
    """NFKC, lowercase, then drop whitespace, punctuation and control characters."""
    table = _deletion_table()
    stripped = text.translate(table)
    # Deleting first keeps most Chinese text on NFKC's quick "already normalized" path; NFKC can
    # still produce spaces or punctuation (e.g. "㈠" -> "(一)"), so delete again when it changed.
    folded = unicodedata.normalize("NFKC", stripped)
    if folded != stripped:
        folded = folded.translate(table)
    return folded.lower()


@lru_cache(maxsize=1)
def _deleted_mask() -> np.ndarray:
    mask = np.zeros(sys.maxunicode + 1, dtype=bool)
    mask[list(_deletion_table())] = True
    return mask


def _delete_all(texts: list[str]) -> list[str]:
    """Drop deleted-category characters from every text, vectorized over code points."""
    code_points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    deleted = np.flatnonzero(_deleted_mask()[code_points])
    if deleted.size == 0:
        return texts
    boundaries = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=boundaries[1:])
    kept_bounds = (boundaries - np.searchsorted(deleted, boundaries)) * 4  # byte offsets in data
    data = np.delete(code_points, deleted).tobytes()
    return [data[s:e].decode("utf-32-le") for s, e in zip(kept_bounds[:-1].tolist(), kept_bounds[1:].tolist())]


def normalize_all(texts: Iterable[str]) -> list[str]:
    """``normalize`` over many texts, with the character deletions vectorized."""
    stripped = _delete_all(list(texts))
    if not stripped:
        return []
    nfkc = unicodedata.normalize
    folded = [nfkc("NFKC", t) for t in stripped]
    changed = [i for i, (a, b) in enumerate(zip(stripped, folded)) if a != b]
    if changed:
        for i, text in zip(changed, _delete_all([folded[i] for i in changed])):
            folded[i] = text
    return [t.lower() for t in folded]


def ngram_set(normalized: str, n: int) -> set[str]:
    """Exact character n-gram set of an already-normalized text."""
    if not normalized:
        return set()
    if len(normalized) < n:
        return {normalized}
    return {normalized[i : i + n] for i in range(len(normalized) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


@lru_cache(maxsize=1)
def _multipliers() -> np.ndarray:
    rng = np.random.default_rng(_HASH_SEED)
    return rng.integers(1, 2**63, size=_MAX_NGRAM + 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, in place on a uint64 array."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def ngram_hashes(normalized: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every character n-gram of every (normalized) text.

    Returns ``(hashes, offsets)``: ``hashes[offsets[d]:offsets[d + 1]]`` are the uint64 hashes of
    text ``d``'s n-grams in position order (duplicates included). Texts shorter than ``n`` give
    one hash of the whole string; empty texts give none.
    """
    if not 1 <= n <= _MAX_NGRAM:
        raise ValueError(f"ngram must be in 1..{_MAX_NGRAM}, got {n}")
    lengths = np.fromiter((len(t) for t in normalized), dtype=np.int64, count=len(normalized))
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.zeros(len(normalized) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    if out.size == 0:
        return out, offsets

    starts = np.zeros(len(normalized), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    code_points = np.frombuffer("".join(normalized).encode("utf-32-le"), dtype=np.uint32)
    mult = _multipliers()

    long_docs = np.flatnonzero(lengths >= n)
    if long_docs.size:
        span = code_points.size - n + 1
        window = code_points[:span].astype(np.uint64) * mult[0]
        for k in range(1, n):
            window += code_points[k : k + span].astype(np.uint64) * mult[k]
        long_counts = counts[long_docs]
        # position of every valid window: starts[d] + 0..count-1 for each long doc d
        shift = np.repeat(starts[long_docs] - (np.cumsum(long_counts) - long_counts), long_counts)
        out_pos = np.repeat(offsets[long_docs] - (np.cumsum(long_counts) - long_counts), long_counts)
        local = np.arange(int(long_counts.sum()), dtype=np.int64)
        out[local + out_pos] = window[local + shift]

    for d in np.flatnonzero((lengths > 0) & (lengths < n)):
        s, length = int(starts[d]), int(lengths[d])
        terms = code_points[s : s + length].astype(np.uint64) * mult[:length]
        length_tag = mult[_MAX_NGRAM:] * np.uint64(length)  # keeps short texts apart from n-grams
        out[offsets[d]] = (terms.sum(dtype=np.uint64) + length_tag)[0]

    return _mix64(out), offsets
