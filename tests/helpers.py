"""Helpers shared by the Dagster-level tests."""

import dagster as dg
import duckdb

from dagster_project import definitions
from dagster_project.lib.warehouse import connection_config
from dagster_project.partitions import source_partitions
from dagster_project.resources import WarehouseResource


def resources_for(warehouse: WarehouseResource) -> dict:
    """The code location's resources with the warehouse swapped for a test one."""
    return {**definitions.defs.resources, "warehouse": warehouse}


def load_all_sources(warehouse: WarehouseResource, instance: dg.DagsterInstance) -> None:
    """Materialize raw_prompts for every partition, then seeds and the prompt models."""
    for key in source_partitions.get_partition_keys():
        result = dg.materialize(definitions.defs.assets, selection=["raw_prompts"], partition_key=key,
                                resources=resources_for(warehouse), instance=instance)
        assert result.success
    result = dg.materialize(
        definitions.defs.assets,
        selection=dg.AssetSelection.assets("prompt_selection").upstream() - dg.AssetSelection.assets("raw_prompts"),
        resources=resources_for(warehouse), instance=instance)
    assert result.success


def query(warehouse: WarehouseResource, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(warehouse.database, read_only=True, config=connection_config())
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
