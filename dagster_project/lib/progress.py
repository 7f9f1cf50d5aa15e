"""Live progress of long steps, for whoever shows it (the `distill` command's progress line).

A step in this process reports one line per label (e.g. `r1[m-a-p-coig-cqia]`); the CLI's
renderer shows the latest. When nobody listens, reporters print their own line on a terminal.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_lines: dict[str, tuple[float, str]] = {}
_listeners = 0


def report(label: str, line: str) -> None:
    with _lock:
        _lines[label] = (time.monotonic(), line)


def done(label: str) -> None:
    with _lock:
        _lines.pop(label, None)


def latest() -> tuple[str, str] | None:
    """The most recently updated (label, line), or None."""
    with _lock:
        if not _lines:
            return None
        label, (_, line) = max(_lines.items(), key=lambda kv: kv[1][0])
        return label, line


def listening() -> bool:
    return _listeners > 0


class Listener:
    """While entered, reporters leave the terminal to the listener."""

    def __enter__(self) -> "Listener":
        global _listeners
        with _lock:
            _listeners += 1
        return self

    def __exit__(self, *exc: object) -> None:
        global _listeners
        with _lock:
            _listeners -= 1
            _lines.clear()
