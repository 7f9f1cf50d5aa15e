"""The project's code location with Dagster's multiprocess executor (a process per step) instead of the
in-process one it ships with, for tests of what happens to step processes."""

import dagster as dg

from dagster_project import definitions

defs = dg.Definitions(
    assets=definitions.defs.assets,
    asset_checks=definitions.defs.asset_checks,
    resources=definitions.defs.resources,
    executor=dg.multiprocess_executor,
)
