#!/usr/bin/env bash
# The test suite (unit, in-process Dagster runs, real subprocess runs, simulator over loopback).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec python -m pytest "$@"
