"""`distill`: what people do outside the Dagster UI. `distill COMMAND --help` explains each command."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from dagster_project.config import REPO_ROOT, SettingsError, config

EXIT_CONFIG, EXIT_BUSY = 2, 3


def _dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(REPO_ROOT / "dagster_project" / "dagster.yaml", home / "dagster.yaml")
    return home


def _known_errors() -> tuple[type[BaseException], ...]:
    from dagster_project.common.contracts import ContractError
    from dagster_project.lib.llm.types import ConfigError
    from dagster_project.lib.preflight import PreflightError
    from dagster_project.lib.sources.loader import SourceFileError
    from dagster_project.lib.sources.manifest import ManifestError
    from dagster_project.sql_models import SqlModelError
    return (SettingsError, ConfigError, PreflightError, ManifestError, SourceFileError, SqlModelError, ContractError)


def build_parser() -> argparse.ArgumentParser:
    from dagster_project.cli import commands

    parser = argparse.ArgumentParser(
        prog="distill",
        description="Distill DeepSeek-R1 into a verified, scored Chinese SFT dataset (Dagster + DuckDB).",
        epilog="Configuration: distill.toml (or $DISTILL_CONFIG); override any key with DISTILL_<SECTION>__<KEY>.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, help_, configure) in commands.COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=func.__doc__)
        configure(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dagster_project.lib.warehouse import WarehouseBusy

    try:
        config()  # a mistake in distill.toml or a DISTILL_* override is one line before anything runs
        _dagster_home()
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"distill: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except WarehouseBusy as exc:
        print(f"distill: {exc}. Retry in a moment, or raise --wait.", file=sys.stderr)
        return EXIT_BUSY
    except _known_errors() as exc:
        print(f"distill: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("distill: interrupted (every finished response is in the journal; re-run to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
