#!/usr/bin/env bash
# The main job: the whole pipeline on the bundled samples against the built-in R1 simulator.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec distill demo "$@"
