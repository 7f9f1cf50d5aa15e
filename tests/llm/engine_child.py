"""Run plan + engine + the default JournalWriter in a separate process (killed with SIGKILL by the resume tests).

    python engine_child.py BASE_URL JOURNAL_ROOT N CONCURRENCY [PARTITION [FIRST_PROMPT]]
"""

from __future__ import annotations

import os
import sys

from conftest import math_requests

from dagster_project.lib.llm.engine import run_requests_sync
from dagster_project.lib.llm.journal import Journal, JournalWriter, plan
from dagster_project.lib.llm.types import EndpointConfig


def main(base_url: str, root: str, n: int, concurrency: int, partition: str = "math", start: int = 0) -> None:
    cfg = EndpointConfig(base_url=base_url, model="deepseek-r1", api_key_env="DISTILL_TEST_API_KEY",
                         concurrency=concurrency, min_concurrency=1, backoff_base_seconds=0.02)  # fmt: skip
    journal = Journal(root)
    to_send, _ = plan(cfg, math_requests(n, partition, start), journal)
    with JournalWriter(journal, "r1") as writer:  # the default policy, as the pipeline uses it
        run_requests_sync(to_send, cfg, writer, run_id=f"child-{os.getpid()}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6], *map(int, sys.argv[6:7]))
