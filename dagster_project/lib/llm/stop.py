"""Stop means stop: the engine owns SIGINT/SIGTERM while it runs, and says what a stop left behind.

A host may have its own handlers (Dagster's step process raises `DagsterExecutionInterruptedError` at
the next bytecode, which inside an event-loop callback is caught by the loop and lost). While a run
is in progress the engine replaces them: on the loop itself when the loop runs in the main thread,
or from the main thread when the loop runs in a helper thread. The previous handlers are restored
when the run ends, and the run raises `RunInterrupted` (a KeyboardInterrupt, so hosts treat it as
an interruption: Dagster marks the step failed and the run FAILURE, or CANCELED when it was asked to
cancel).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("dagster_project.lib.llm.stop")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal: its message counts what was sent, journaled and not sent."""

    def __init__(self, message: str, *, sent: int, journaled: int, not_sent: int | None, signal_name: str) -> None:
        super().__init__(message)
        self.message, self.sent, self.journaled, self.not_sent = message, sent, journaled, not_sent
        self.signal_name = signal_name

    def __str__(self) -> str:
        return self.message


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _restore(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        if handler is not None:
            signal.signal(sig, handler)


@contextmanager
def signals_on_loop(loop: Any, on_signal: Callable[[str], None]) -> Iterator[bool]:
    """SIGINT/SIGTERM call `on_signal(name)` on `loop` (which runs in this, the main, thread)."""
    if not _in_main_thread():
        yield False
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    installed = []
    try:
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        yield True
    finally:
        for sig in installed:
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):  # the loop is closing
                pass
        _restore(previous)


@contextmanager
def signals_forwarded(loop: Any, on_signal: Callable[[str], None]) -> Iterator[bool]:
    """SIGINT/SIGTERM reaching this (main) thread call `on_signal(name)` on `loop`, running elsewhere."""
    if not _in_main_thread():
        yield False
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def forward(signum: int, _frame: Any) -> None:
        try:
            loop.call_soon_threadsafe(on_signal, signal.Signals(signum).name)
        except RuntimeError:  # the loop has closed: the run is over
            pass

    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, forward)
        yield True
    finally:
        _restore(previous)
