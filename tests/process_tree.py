"""Find processes by an environment marker (Linux /proc), and wait on conditions with a deadline.

A test starts its subprocess with ``MARKER_ENV=<fresh uuid>`` in the environment; every process
that subprocess starts inherits it (the helpers under test do not clear their environment), so
`marked_processes` lists the whole tree, including orphans re-parented to init.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Callable

MARKER_ENV = "DISTILL_TEST_PROCESS_MARKER"


def new_marker() -> tuple[str, dict[str, str]]:
    """A fresh marker and a copy of the environment carrying it."""
    marker = uuid.uuid4().hex
    return marker, {**os.environ, MARKER_ENV: marker}


def marked_processes(marker: str) -> list[dict[str, Any]]:
    """Live processes (zombies excluded) whose environment has MARKER_ENV=marker."""
    found, needle = [], f"{MARKER_ENV}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")[:160]
            with open(f"/proc/{entry}/statm") as fh:
                rss_mb = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if fields[0] != "Z":
            found.append({"pid": int(entry), "ppid": int(fields[1]), "rss_mb": round(rss_mb), "cmd": cmd})
    return found


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy (returned); AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(poll_s)


def kill_all(processes: list[dict[str, Any]]) -> None:
    """SIGKILL the given processes (cleanup after a failed assertion); gone ones are ignored."""
    for p in processes:
        try:
            os.kill(p["pid"], 9)
        except ProcessLookupError:
            pass
