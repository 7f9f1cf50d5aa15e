"""Run the engine in its own process until a signal stops it (driven by test_stop.py).

    stop_child.py BASE_URL JOURNAL_DIR N GRACE_S main|helper

`main`: the engine's loop runs in the main thread; `helper`: run_requests_sync is called from a
coroutine, so the engine runs in its helper thread. Prints one JSON line and exits 3 when interrupted.
"""

from __future__ import annotations

import asyncio
import json
import sys

from conftest import math_requests

from dagster_project.lib.llm.engine import RunInterrupted, run_requests_sync
from dagster_project.lib.llm.journal import Journal, JournalWriter
from dagster_project.lib.llm.types import EndpointConfig


def main(base_url: str, root: str, n: int, grace: float, mode: str) -> int:
    cfg = EndpointConfig(base_url=base_url, model="deepseek-r1", api_key_env="DISTILL_TEST_API_KEY", concurrency=8,
                         shutdown_grace_seconds=grace, backoff_base_seconds=0.02)  # fmt: skip

    def go():
        # no offline token counts: the time to stop is the engine's alone
        with JournalWriter(Journal(root), "r1", flush_every=1, flush_seconds=0.1, count_tokens=False) as writer:
            return run_requests_sync(math_requests(n), cfg, writer, run_id=f"stop-{mode}")

    async def in_a_coroutine():
        return go()

    try:
        summary = asyncio.run(in_a_coroutine()) if mode == "helper" else go()
    except RunInterrupted as exc:
        print(json.dumps({"interrupted": str(exc), "sent": exc.sent, "journaled": exc.journaled,
                          "not_sent": exc.not_sent, "signal": exc.signal_name}), flush=True)  # fmt: skip
        return 3
    print(json.dumps({"finished": summary.requests}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
