"""Find a generation that has fallen into a loop: its tail is one passage repeated back to back.

R1 sometimes repeats the same sentence or paragraph until `max_tokens` (32k tokens is ~21 minutes
of a slot, paid in full). A loop is declared when the last `span` characters of the text are one
unit of `p` characters copied over and over, exactly, with `span >= max(min_repeats * p, min_chars)`
and `span <= window_chars`. Exact copies only: lists, tables and repeated formulas differ from row
to row (numbers, names), so they are never taken for a loop; a loop that varies a counter is not
caught either (it ends at `max_tokens` as before).

Cost: the text is checked every `check_every` new characters; a check finds the candidate periods
with `str.rfind` of the last few characters and verifies each with one slice comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_CHARS = 16  # the tail fragment whose earlier occurrences give candidate periods


@dataclass(frozen=True)
class Loop:
    period: int  # characters in the repeated unit
    span: int  # characters of the tail covered by copies of it

    @property
    def repeats(self) -> float:
        return self.span / self.period


def find_loop(text: str, window_chars: int, min_repeats: int, min_chars: int) -> Loop | None:
    """The shortest repeating unit that makes `text`'s tail a loop, or None."""
    n = len(text)
    if n < min_chars:
        return None
    tail = text[-window_chars:] if n > window_chars else text
    n = len(tail)
    max_period = n // min_repeats
    if max_period < 1:
        return None
    k = min(PROBE_CHARS, max_period)
    probe = tail[n - k :]
    lo = max(0, n - k - max_period)
    hi = n - 1  # an occurrence must end before the text does: period >= 1
    while True:
        j = tail.rfind(probe, lo, hi)
        if j < 0:
            return None
        period = n - k - j
        span = max(min_repeats * period, min_chars)
        if span <= n and tail[n - span : n - period] == tail[n - span + period :]:
            return Loop(period, _extent(tail, period, span))
        hi = j + k - 1


def _extent(tail: str, period: int, span: int) -> int:
    """How far back the copies reach (at least `span`), for reporting."""
    n = len(tail)
    while span + period <= n and tail[n - span - period : n - span] == tail[n - span : n - span + period]:
        span += period
    return span


class RepetitionWatch:
    """Feed text as it streams in; `loop` is set once the tail loops."""

    __slots__ = ("window_chars", "min_repeats", "min_chars", "check_every", "_parts", "_size", "_unchecked", "loop")

    def __init__(self, window_chars: int, min_repeats: int, min_chars: int, check_every: int = 256) -> None:
        self.window_chars, self.min_repeats, self.min_chars = window_chars, min_repeats, min_chars
        self.check_every = check_every
        self._parts: list[str] = []
        self._size = 0
        self._unchecked = 0
        self.loop: Loop | None = None

    def feed(self, piece: str) -> Loop | None:
        if not piece or self.loop is not None:
            return self.loop
        self._parts.append(piece)
        self._size += len(piece)
        self._unchecked += len(piece)
        if self._unchecked >= self.check_every and self._size >= self.min_chars:
            self._unchecked = 0
            text = "".join(self._parts)
            if len(text) > self.window_chars:
                text = text[-self.window_chars :]
            self._parts, self._size = [text], len(text)
            self.loop = find_loop(text, self.window_chars, self.min_repeats, self.min_chars)
        return self.loop
