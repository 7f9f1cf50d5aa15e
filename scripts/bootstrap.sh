#!/usr/bin/env bash
# Create .venv (if missing), install the project with its pinned dependencies, and prepare
# DAGSTER_HOME and the warehouse folder. Sourced by the other scripts; safe to re-run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Re-install only when pyproject.toml or the lock file changed.
STAMP=.venv/.installed
HASH="$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$HASH" ]; then
  echo "installing dependencies into .venv (log: .venv/install.log) ..." >&2
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
         && .venv/bin/python -m pip install --disable-pip-version-check -c requirements.lock -e ".[test]"; } \
       > .venv/install.log 2>&1; then
    tail -n 40 .venv/install.log >&2
    echo "dependency installation failed; full log: .venv/install.log" >&2
    exit 1
  fi
  echo "$HASH" > "$STAMP"
fi
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME" warehouse
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster_project/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
export PATH="$ROOT/.venv/bin:$PATH"
