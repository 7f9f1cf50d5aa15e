"""Materialize `r1_completions` for one partition in a real Dagster run (interrupted by test_stop.py).

    stop_dagster_child.py PARTITION

Settings come from the environment the test sets (DAGSTER_HOME, DISTILL_WAREHOUSE__DIR,
DISTILL_GENERATION__*). Prints the run id once the run has started, then its outcome.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from dagster_project import definitions


def main(partition: str) -> int:
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(definitions.defs.assets, selection=["r1_completions"], partition_key=partition,
                                resources=definitions.defs.resources, instance=instance, raise_on_error=False)  # fmt: skip
        print(json.dumps({"run_id": result.run_id, "success": result.success}), flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
