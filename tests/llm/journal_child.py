"""Append N final rows with a JournalWriter that never folds on its own, say so, then wait.

    python journal_child.py ROOT PARTITION N

Prints "appended" once every row is written; closing its stdin closes the writer normally, and
the tests SIGKILL it instead to leave an orphaned write-ahead segment.
"""

from __future__ import annotations

import sys
import time

from conftest import math_requests

from dagster_project.lib.llm.journal import PROMPT_TEXT_KEY, Journal, JournalWriter, request_hash
from dagster_project.lib.llm.types import EndpointConfig

CFG = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="deepseek-r1")


def rows(partition: str, n: int) -> list[dict]:
    """Final ok rows for `math_requests(n, partition)` under CFG, as the engine gives them."""
    out = []
    for i, req in enumerate(math_requests(n, partition)):
        now = time.time()
        out.append({
            "request_hash": request_hash(CFG, req), "partition": partition, "prompt_id": req.prompt_id,
            "sample_index": 0, "purpose": "", "model": CFG.model, "max_tokens": CFG.max_tokens, "attempt": 1,
            "is_final": True, "status": "ok", "finish_reason": "stop", "reasoning": f"先算 {i} 乘以 3。",
            "content": f"\\boxed{{{3 * i}}}", "usage_prompt_tokens": 20, "usage_completion_tokens": 12,
            "cost": 0.001, "started_at": now - 1.0, "finished_at": now, "simulated": True, "run_id": "child",
            PROMPT_TEXT_KEY: req.user_prompt(),
        })  # fmt: skip
    return out


def main(root: str, partition: str, n: int) -> None:
    writer = JournalWriter(Journal(root), "r1", flush_every=10**9, flush_seconds=10**9)
    for row in rows(partition, n):
        writer.append(row)
    print("appended", flush=True)
    sys.stdin.read()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
