"""dbt-style SQL models: every `sql/**/*.sql` file is one SELECT and one Dagster asset.

The asset is named after the file; its upstream assets are read from the SQL with sqlglot
scopes (so CTE names are not mistaken for tables). A header comment declares how it is
materialized and describes it:

    -- materialized: table        (or view)
    -- description: one line shown in the UI

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
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from dagster_project.common.metadata import table_metadata
from dagster_project.lib.text import sql_macros
from dagster_project.lib.warehouse import describe_table
from dagster_project.resources import DUCKDB_POOL, WarehouseResource

HEADER_RE = re.compile(r"^--\s*(materialized|description|group)\s*:\s*(.+?)\s*$", re.MULTILINE)
GROUP_BY_FOLDER = {"staging": "staging", "intermediate": "selection", "marts": "marts"}


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
    folder = path.relative_to(sql_root).parts[0] if len(path.relative_to(sql_root).parts) > 1 else ""
    return SqlModel(
        name=path.stem, path=path, sql=sql.strip().rstrip(";"), materialized=materialized,
        description=header.get("description", ""),
        group=header.get("group", GROUP_BY_FOLDER.get(folder, folder or "models")),
        tables=frozenset(referenced_tables(sql, path)),
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


def build_sql_assets(sql_root: Path, table_assets: Mapping[str, dg.AssetKey],
                     variables: Mapping[str, object]) -> list[dg.AssetsDefinition]:
    """One asset per model; `table_assets` maps tables written by Python assets to their asset keys."""
    models = discover_models(sql_root)
    known = dict(table_assets) | {m.name: dg.AssetKey(m.name) for m in models}
    assets = []
    for model in models:
        for table in sorted(model.tables):
            if table not in known:
                raise SqlModelError(
                    f"{model.path}: unknown table {table!r} (not a SQL model, seed or Python asset table)")
        assets.append(_sql_asset(model, sorted({known[t] for t in model.tables}, key=str), variables))
    return assets


def _sql_asset(model: SqlModel, deps: list[dg.AssetKey], variables: Mapping[str, object]) -> dg.AssetsDefinition:
    ddl = f'CREATE OR REPLACE {model.materialized.upper()} "{model.name}" AS\n{model.sql}'

    @dg.asset(
        name=model.name,
        deps=deps,
        pool=DUCKDB_POOL,
        group_name=model.group,
        kinds={"duckdb", "sql"},
        owners=["team:data"],
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        description=f"{model.description}\n\n`{model.path.name}` ({model.materialized}):\n\n```sql\n{model.sql}\n```",
        metadata={"sql_file": str(model.path.name), "materialized": model.materialized},
    )
    def _model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.get_connection(purpose=model.name) as con:
            set_variables(con, variables)
            con.execute(ddl)
            info = describe_table(con, model.name)
        context.log.info(f"{model.name}: {info.row_count} rows ({model.materialized})")
        return dg.MaterializeResult(metadata={
            **table_metadata(model.name, info),
            "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"),
        })

    return _model
