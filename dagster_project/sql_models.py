"""dbt-style SQL models: every `sql/**/*.sql` file is one SELECT and one Dagster asset.

The asset is named after the file; its upstream assets are read from the SQL with sqlglot
scopes (so CTE names are not mistaken for tables). A header comment declares how it is
materialized and describes it:

    -- materialized: table        (or view)
    -- description: one line shown in the UI
    -- group: scoring             (the UI group: the pipeline stage the model belongs to)
    -- partitioned_by: source_key (optional: one Dagster partition per source repo; the model is
                                   computed for all rows, and one partition's rows are replaced)

Settings come in as DuckDB variables (`getvariable('balance_seed')`): each model's Dagster
Config holds exactly the variables it reads, with distill.toml's values as defaults, so they
show in the Launchpad and are recorded with every run. Column descriptions and data tests
come from the model's contract, `<model>.yml` beside it (see `common/contracts.py`).

A reference to a table that is neither another model nor a known Python asset fails when
the definitions load, naming the file and the table.
"""


import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import sqlglot
from pydantic import BaseModel, Field, create_model
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from dagster_project.common.contracts import definition_metadata
from dagster_project.common.metadata import table_result
from dagster_project.lib.text import sql_macros
from dagster_project.lib.warehouse import describe_table, replace_partition
from dagster_project.resources import DUCKDB_POOL, WarehouseResource

HEADER_RE = re.compile(r"^--\s*(materialized|description|group|partitioned_by)\s*:\s*(.+?)\s*$", re.MULTILINE)
VARIABLE_RE = re.compile(r"getvariable\(\s*'(\w+)'\s*\)")
PARTITION_VARIABLE = "partition_key"


class SqlModelError(ValueError):
    """A SQL model file is wrong; the message names the file."""


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    sql: str
    materialized: str
    description: str
    group: str
    tables: frozenset[str]
    partitioned_by: str | None = None  # a column: one Dagster partition (source repo) per value


def referenced_tables(sql: str, path: Path) -> set[str]:
    """Tables a SELECT reads (CTE names and table functions excluded)."""
    try:
        statements = sqlglot.parse(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise SqlModelError(f"{path}: cannot parse SQL: {exc}") from exc
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlModelError(f"{path}: a model must be exactly one SELECT statement")
    out: set[str] = set()
    for scope in traverse_scope(statements[0]):
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and source.name:
                out.add(source.name)
    return out


def parse_model(path: Path, sql_root: Path) -> SqlModel:
    sql = path.read_text(encoding="utf-8")
    header = {k: v for k, v in HEADER_RE.findall(sql)}
    materialized = header.get("materialized", "table")
    if materialized not in ("table", "view"):
        raise SqlModelError(f"{path}: materialized must be table or view, not {materialized!r}")
    if "partitioned_by" in header and materialized != "table":
        raise SqlModelError(f"{path}: a partitioned model must be materialized as a table")
    return SqlModel(
        name=path.stem, path=path, sql=sql.strip().rstrip(";"), materialized=materialized,
        description=header.get("description", ""),
        group=header.get("group", "models"),
        tables=frozenset(referenced_tables(sql, path)),
        partitioned_by=header.get("partitioned_by"),
    )


def discover_models(sql_root: Path) -> list[SqlModel]:
    models = [parse_model(p, sql_root) for p in sorted(sql_root.rglob("*.sql"))]
    seen: dict[str, Path] = {}
    for m in models:
        if m.name in seen:
            raise SqlModelError(f"{m.path}: model name {m.name!r} already defined by {seen[m.name]}")
        seen[m.name] = m.path
    return models


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def set_variables(con, variables: Mapping[str, object]) -> None:
    """Expose settings to SQL as DuckDB variables, read with getvariable('name'), and the shared
    text macros (`fold_width`, `strip_invisible`, from lib/text.py)."""
    for statement in sql_macros():
        con.execute(statement)
    for name, value in variables.items():
        con.execute(f"SET VARIABLE {name} = {_sql_literal(value)}")


@dataclass(frozen=True)
class Variable:
    """A setting a model reads with getvariable(): where its default comes from."""

    model: type[BaseModel]
    values: BaseModel
    field: str


def build_sql_assets(sql_root: Path, table_assets: Mapping[str, dg.AssetKey],
                     variables: Mapping[str, Variable]) -> list[dg.AssetsDefinition]:
    """One asset per model; `table_assets` maps tables written by Python assets to their asset keys."""
    models = discover_models(sql_root)
    known = dict(table_assets) | {m.name: dg.AssetKey(m.name) for m in models}
    assets = []
    for model in models:
        for table in sorted(model.tables):
            if table not in known:
                raise SqlModelError(
                    f"{model.path}: unknown table {table!r} (not a SQL model, seed or Python asset table)")
        used = sorted(set(VARIABLE_RE.findall(model.sql)) - {PARTITION_VARIABLE})
        unknown = [v for v in used if v not in variables]
        if unknown:
            raise SqlModelError(f"{model.path}: unknown variable(s) {unknown}; known: {sorted(variables)}")
        assets.append(_sql_asset(model, sorted({known[t] for t in model.tables}, key=str),
                                 {v: variables[v] for v in used}))
    return assets


def _model_config(model: SqlModel, variables: Mapping[str, Variable]) -> type[dg.Config]:
    """The Launchpad config of a model: the settings it reads, defaulting to distill.toml."""
    fields = {}
    for name, var in variables.items():
        info = var.model.model_fields[var.field]
        fields[name] = (info.annotation, Field(default=getattr(var.values, var.field), description=info.description))
    doc = f"Settings `{model.path.name}` reads with getvariable() (defaults: distill.toml)."
    return create_model(f"{model.name}_config", __base__=dg.Config, __doc__=doc, **fields)


def _sql_asset(model: SqlModel, deps: list[dg.AssetKey], variables: Mapping[str, Variable]) -> dg.AssetsDefinition:
    from dagster_project.partitions import source_partitions

    Config = _model_config(model, variables)
    partitioned = model.partitioned_by is not None
    ddl = f'CREATE OR REPLACE {model.materialized.upper()} "{model.name}" AS\n{model.sql}'
    layer = model.path.parent.name

    @dg.asset(
        name=model.name,
        deps=deps,
        pool=DUCKDB_POOL,
        group_name=model.group,
        kinds={"duckdb", "sql"},
        owners=["team:data"],
        partitions_def=source_partitions if partitioned else None,
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        description=f"{model.description}\n\n`sql/{layer}/{model.path.name}` ({model.materialized}"
                    f"{', one partition per ' + model.partitioned_by if partitioned else ''}):"
                    f"\n\n```sql\n{model.sql}\n```",
        metadata={"sql_file": f"sql/{layer}/{model.path.name}", "materialized": model.materialized,
                  **definition_metadata(model.name)},
    )
    def _model(context: dg.AssetExecutionContext, config: Config, warehouse: WarehouseResource) -> dg.MaterializeResult:
        values = config.model_dump()
        with warehouse.get_connection(purpose=model.name) as con:
            if partitioned:
                key = context.partition_key
                set_variables(con, {**values, PARTITION_VARIABLE: key})
                n = replace_partition(con, model.name, model.partitioned_by, key,
                                      f'SELECT * FROM ({model.sql}) WHERE "{model.partitioned_by}" = '
                                      f"getvariable('{PARTITION_VARIABLE}')")
                info = describe_table(con, model.name, f'"{model.partitioned_by}" = ?', [key])
                context.log.info(f"{model.name}[{key}]: {n} rows")
            else:
                set_variables(con, values)
                con.execute(ddl)
                info = describe_table(con, model.name)
                context.log.info(f"{model.name}: {info.row_count} rows ({model.materialized})")
        return table_result(model.name, info, partitioned, **{"settings": dg.MetadataValue.json(values)} if values else {})

    return _model
