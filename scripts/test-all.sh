#!/usr/bin/env bash
# Runs everything a newcomer needs to trust the build: the cargo test suite (unit, property,
# integration against the real binary, the dashboard in headless Chromium, and the Redis
# protocol compared with a real redis-server and driven by real clients) and the loom model
# checks. Installs what those tests need from Debian's packages when missing and we are root
# (chromium; redis-server and redis-tools; nutcracker for twemproxy; tmux for interactive
# redis-cli; python3-venv for redis-py, which the test fetches from PyPI into target/);
# otherwise it says what to install, and the tests that need it fail. Nothing is skipped
# silently.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then missing="$missing chromium"; fi
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-tools"
[ -x /usr/sbin/nutcracker ] || command -v nutcracker >/dev/null 2>&1 || missing="$missing nutcracker"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing from Debian's packages:$missing"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "warning: missing$missing; the tests that need them will fail (apt-get install$missing)" >&2
    fi
fi

echo "== cargo test (workspace, release, with the fault layer: --features testing)"
cargo test --workspace --release --features testing

echo "== loom models (loom-tests/, --cfg shardkv_loom, LOOM_MAX_PREEMPTIONS=2)"
(cd loom-tests && RUSTFLAGS="--cfg shardkv_loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test --release)
