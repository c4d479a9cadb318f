#!/usr/bin/env bash
# CI smoke run of the load suite: every workload for 2 s over a small preload, wrk only.
set -euo pipefail
exec bash "$(dirname "$0")/run.sh" --smoke "$@"
