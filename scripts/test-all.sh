#!/usr/bin/env bash
# Runs everything a newcomer needs to trust the build: the cargo test suite (unit, property,
# integration against the real binary, and the dashboard in headless Chromium) and the loom
# model checks. Installs Chromium (and redis-server, which the RESP comparison test runs) from
# Debian's packages when missing and we are root;
# otherwise the browser test fails and says what to install. Nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing chromium for the dashboard browser test"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: chromium not found; the dashboard browser test will fail (apt-get install chromium)" >&2
    fi
fi

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing redis-server for the RESP wire-format comparison (tests/resp_wire_redis.rs)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "warning: redis-server not found; tests/resp_wire_redis.rs will fail (apt-get install redis-server)" >&2
    fi
fi

echo "== cargo test (workspace, release, with the fault layer: --features testing)"
cargo test --workspace --release --features testing

echo "== loom models (loom-tests/, --cfg shardkv_loom, LOOM_MAX_PREEMPTIONS=2)"
(cd loom-tests && RUSTFLAGS="--cfg shardkv_loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test --release)
