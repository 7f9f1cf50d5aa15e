"""dbt-style contracts for warehouse tables: column descriptions and data tests, run as asset checks.

A contract is a YAML file named after its table, beside the model that writes it
(`sql/<layer>/<model>.yml` for SQL models, `dagster_project/<stage>/<table>.yml` for tables
written by Python assets):

    description: one row per completion with its final score      # optional
    columns:
      completion_id:
        description: the request hash of the completion
        tests: [unique, not_null, {relationships: r1_completions.completion_id}]
      score_source:
        tests: [{accepted_values: [math_verify, judge_correctness, judge_quality]}]
    tests:
      - {unique_combination: [prompt_id, sample_index]}
      - {expression: "score is null or score between 0 and 10"}

`blocking: true` makes every test of the contract a blocking check: a failure stops what depends
on the table in the same run (the export's tables are blocking). Columns shared by many tables are described once in `sql/columns.yml` (name: description); a
contract's own description wins. Every contract also gets a `<table>_matches_contract` check:
the table has exactly the contract's columns, each described. Each test is one asset check on
the table's asset, evaluated in one warehouse connection per table.
"""


from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from dagster_project.resources import WarehouseResource

PACKAGE_DIR = Path(__file__).resolve().parents[1]
GLOSSARY = "columns.yml"
COLUMN_TESTS = ("unique", "not_null", "accepted_values", "relationships")
TABLE_TESTS = ("unique_combination", "expression")
EXAMPLES = 5  # failing values shown in a check's metadata


class ContractError(ValueError):
    """A contract file is wrong; the message names the file."""


@dataclass(frozen=True)
class DataTest:
    name: str          # the asset check's name
    kind: str
    column: str | None
    arg: Any
    description: str

    def failing_sql(self, table: str) -> str:
        """A query returning (value, rows) for what breaks the test; no rows = pass."""
        t, c = f'"{table}"', f'"{self.column}"' if self.column else None
        if self.kind == "unique":
            return f"SELECT {c}::VARCHAR, count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
        if self.kind == "not_null":
            return f"SELECT 'null', count(*) FROM {t} WHERE {c} IS NULL HAVING count(*) > 0"
        if self.kind == "accepted_values":
            values = ", ".join(_literal(v) for v in self.arg)
            return f"SELECT {c}::VARCHAR, count(*) FROM {t} WHERE {c} IS NOT NULL AND {c} NOT IN ({values}) GROUP BY 1"
        if self.kind == "relationships":
            other, other_col = self.arg.split(".", 1)
            return (f'SELECT x.{c}::VARCHAR, count(*) FROM {t} AS x LEFT JOIN "{other}" AS y '
                    f'ON x.{c} = y."{other_col}" WHERE x.{c} IS NOT NULL AND y."{other_col}" IS NULL GROUP BY 1')
        if self.kind == "unique_combination":
            cols = [f'"{x}"' for x in self.arg]
            shown = ", ".join(f"{x}::VARCHAR" for x in cols)
            return f"SELECT concat_ws(' | ', {shown}), count(*) FROM {t} GROUP BY {', '.join(cols)} HAVING count(*) > 1"
        if self.kind == "expression":
            label = _literal(f"rows where not ({self.arg})")
            return f"SELECT {label}, count(*) FROM {t} WHERE NOT coalesce(({self.arg}), false) HAVING count(*) > 0"
        raise AssertionError(self.kind)


@dataclass(frozen=True)
class Contract:
    table: str
    path: Path
    description: str
    columns: dict[str, str]  # name -> description ("" when only the glossary describes it)
    tests: tuple[DataTest, ...] = field(default=())
    blocking: bool = False


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _test(table: str, column: str | None, spec: Any, where: Path) -> DataTest:
    if isinstance(spec, str):
        kind, arg = spec, None
    elif isinstance(spec, dict) and len(spec) == 1:
        (kind, arg), = spec.items()
    else:
        raise ContractError(f"{where}: a test is a name or a one-key table, got {spec!r}")
    allowed = COLUMN_TESTS if column else TABLE_TESTS
    if kind not in allowed:
        raise ContractError(f"{where}: unknown test {kind!r} {'on column ' + column if column else 'on the table'}; "
                            f"known: {', '.join(allowed)}")
    if kind in ("accepted_values", "unique_combination") and not (isinstance(arg, list) and arg):
        raise ContractError(f"{where}: {kind} needs a list")
    if kind == "relationships" and not (isinstance(arg, str) and "." in arg):
        raise ContractError(f"{where}: relationships needs 'table.column'")
    if kind == "expression" and not isinstance(arg, str):
        raise ContractError(f"{where}: expression needs a SQL predicate")
    if kind == "unique_combination":
        name, text = f"{table}_unique_{'_'.join(arg)}", f"One row per ({', '.join(arg)})."
    elif kind == "expression":
        name, text = f"{table}_{_slug(arg)}", f"Every row satisfies `{arg}`."
    else:
        name = f"{table}_{column}_{kind}"
        text = {"unique": f"`{column}` is unique.", "not_null": f"`{column}` is never null.",
                "accepted_values": f"`{column}` is one of {arg}.",
                "relationships": f"Every `{column}` is a `{arg}`."}[kind]
    return DataTest(name, kind, column, arg, text)


def _slug(text: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()
    return "_".join(words)[:48].rstrip("_")


def parse_contract(path: Path) -> Contract:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: {exc}") from None
    unknown = set(data) - {"description", "columns", "tests", "blocking"}
    if unknown:
        raise ContractError(f"{path}: unknown key(s) {sorted(unknown)}; expected description, columns, tests, blocking")
    if not isinstance(data.get("blocking", False), bool):
        raise ContractError(f"{path}: blocking must be true or false")
    table = path.stem
    columns: dict[str, str] = {}
    tests: list[DataTest] = []
    for name, spec in (data.get("columns") or {}).items():
        spec = spec or {}
        bad = set(spec) - {"description", "tests"}
        if bad:
            raise ContractError(f"{path}: column {name}: unknown key(s) {sorted(bad)}")
        columns[name] = str(spec.get("description") or "")
        tests += [_test(table, name, t, path) for t in spec.get("tests") or []]
    tests += [_test(table, None, t, path) for t in data.get("tests") or []]
    return Contract(table, path, str(data.get("description") or ""), columns, tuple(tests),
                    bool(data.get("blocking", False)))


@lru_cache(maxsize=1)
def _glossary() -> dict[str, str]:
    from dagster_project.config import config

    path = config().sql_dir / GLOSSARY
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {str(k): str(v) for k, v in (data or {}).items()}


@lru_cache(maxsize=1)
def contracts() -> dict[str, Contract]:
    """Every contract, by table (SQL layer and stage folders)."""
    from dagster_project.config import config

    paths = [p for p in config().sql_dir.rglob("*.yml") if p.name != GLOSSARY]
    paths += [p for p in PACKAGE_DIR.rglob("*.yml") if "_data" not in p.parts]
    out: dict[str, Contract] = {}
    for path in sorted(paths):
        contract = parse_contract(path)
        if contract.table in out:
            raise ContractError(f"{path}: table {contract.table!r} already has a contract in {out[contract.table].path}")
        out[contract.table] = contract
    return out


def column_descriptions(table: str) -> dict[str, str]:
    """Description of every known column of `table` (the contract's, else the glossary's)."""
    glossary = _glossary()
    contract = contracts().get(table)
    if contract is None:
        return {}
    return {c: d or glossary.get(c, "") for c, d in contract.columns.items()}


def definition_metadata(table: str) -> dict:
    """The column schema (names and descriptions) as definition metadata, shown before any run."""
    described = column_descriptions(table)
    if not described:
        return {}
    return {"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn(c, "", description=d or None) for c, d in described.items()])}


def _evaluate(con, contract: Contract, key: dg.AssetKey) -> Iterable[dg.AssetCheckResult]:
    from dagster_project.lib.warehouse import table_exists

    if not table_exists(con, contract.table):
        for test in (_schema_test(contract), *contract.tests):
            yield dg.AssetCheckResult(asset_key=key, check_name=test.name, passed=False,
                                      description=f"table {contract.table} does not exist yet")
        return
    actual = [r[0] for r in con.execute(f'DESCRIBE "{contract.table}"').fetchall()]
    described = column_descriptions(contract.table)
    missing = [c for c in contract.columns if c not in actual]
    extra = [c for c in actual if c not in contract.columns]
    undescribed = [c for c in contract.columns if not described.get(c)]
    problems = ([f"missing: {', '.join(missing)}"] if missing else []) + \
               ([f"not in the contract: {', '.join(extra)}"] if extra else []) + \
               ([f"no description: {', '.join(undescribed)}"] if undescribed else [])
    schema = _schema_test(contract)
    yield dg.AssetCheckResult(asset_key=key, check_name=schema.name, passed=not problems,
                              description="; ".join(problems) or f"{len(actual)} columns, all described",
                              metadata={"columns": len(actual)})
    for test in contract.tests:
        if test.column and test.column not in actual:
            yield dg.AssetCheckResult(asset_key=key, check_name=test.name, passed=False,
                                      description=f"column {test.column} is missing")
            continue
        rows = con.execute(test.failing_sql(contract.table)).fetchall()
        bad = sum(n for _, n in rows)
        yield dg.AssetCheckResult(
            asset_key=key, check_name=test.name, passed=not rows, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{bad} failing rows" if rows else "passed",
            metadata={"failing_rows": int(bad),
                      "examples": dg.MetadataValue.json([str(v)[:120] for v, _ in rows[:EXAMPLES]])})


def _schema_test(contract: Contract) -> DataTest:
    return DataTest(f"{contract.table}_matches_contract", "schema", None, None,
                    "The table has exactly the contract's columns, each with a description.")


def contract_checks(asset_keys: Mapping[str, dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per contract (its tests evaluated in one warehouse connection)."""
    out = []
    for table, contract in sorted(contracts().items()):
        if table not in asset_keys:
            raise ContractError(f"{contract.path}: no asset writes a table named {table!r}")
        out.append(_contract_check(contract, asset_keys[table]))
    return out


def _contract_check(contract: Contract, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    specs = [dg.AssetCheckSpec(t.name, asset=key, description=t.description, blocking=contract.blocking)
             for t in (_schema_test(contract), *contract.tests)]

    @dg.multi_asset_check(specs=specs, name=f"{contract.table}_contract",
                          description=f"Contract of `{contract.table}` ({contract.path.name}).")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        with warehouse.get_connection(purpose=f"contract {contract.table}") as con:
            yield from list(_evaluate(con, contract, key))

    return check
