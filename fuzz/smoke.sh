#!/usr/bin/env bash
# Fuzz smoke run: replays the checked-in seeds of every cargo-fuzz target and fuzzes
# each one briefly, failing on any crash. Run by .ci/run; run it yourself with
# `bash fuzz/smoke.sh`.
#
# Needs a nightly toolchain (cargo-fuzz builds with -Zsanitizer). cargo-fuzz itself is
# installed on first use (`cargo install cargo-fuzz --locked`, a few minutes, once). Without
# nightly the same properties (fuzz/properties.rs) run as proptests over arbitrary bytes
# instead, and the script says so.
#
# Knobs (environment):
#   FUZZ_SECONDS=10       fuzzing time per target, after the seeds are replayed
#   FUZZ_TARGETS="..."    which targets (default: all of duration query batch log resp_parse)
#   FUZZ_SANITIZER=address  cargo-fuzz's -s: address (default), none, memory, thread, ...
#   PROPTEST_CASES=4096   cases per proptest in the fallback
#
# Corpus and artifacts: each target starts from a fresh copy of fuzz/seeds/<target>/ in
# fuzz/corpus/<target>/ (gitignored); a crash is written under fuzz/artifacts/<target>/ (kept
# across runs: clear it once the crash is a regression test). Builds and libFuzzer's logs go
# to fuzz/target/ (gitignored), apart from the main build.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

seconds="${FUZZ_SECONDS:-10}"
read -r -a targets <<< "${FUZZ_TARGETS:-duration query batch log resp_parse}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "nightly not found: running the fuzz targets' properties as arbitrary-driven proptests instead"
    cd ..
    PROPTEST_CASES="${PROPTEST_CASES:-4096}" cargo test --release --test parsers_arbitrary
    echo "== fuzz smoke (proptest fallback) passed in $(elapsed)"
    exit 0
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (once; takes a few minutes)"
    cargo install cargo-fuzz --locked
    echo "== cargo-fuzz installed ($(elapsed))"
fi

# One build for all targets; debug assertions on, so integer overflow panics too.
fuzz_flags=(--sanitizer "$sanitizer" --debug-assertions)
echo "== building fuzz targets (sanitizer: $sanitizer)"
cargo +nightly fuzz build "${fuzz_flags[@]}"
echo "== built ($(elapsed))"

failed=()
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    rm -rf "$corpus"
    mkdir -p "$corpus" "artifacts/$t"
    cp seeds/"$t"/* "$corpus"/
    echo "== $t: replaying $(ls "$corpus" | wc -l) seeds, then fuzzing for ${seconds}s ($(elapsed))"
    # libFuzzer runs every corpus input before it starts mutating, so a failing seed stops the
    # run before any fuzzing. Its progress lines go to a log (not in artifacts/: cargo-fuzz
    # reports every file there as a failing input); printed are the stats or, on failure, the
    # first error with its context and cargo-fuzz's summary naming the crash file.
    log="target/fuzz-logs/$t.log"
    mkdir -p "$(dirname "$log")"
    if cargo +nightly fuzz run "${fuzz_flags[@]}" "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
        -dict="dict/$t.dict" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(INFO: +[0-9]+ files found|#[0-9]+[[:space:]]+INITED|Done [0-9]+ runs|stat::)' "$log" || true
    else
        failed+=("$t")
        {
            grep -m1 -A12 -E 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|^error(\[|:)' "$log" || true
            sed -n '/^Failing input:/,/^Minimize test case with:/p' "$log" | cut -c1-300
            echo "!! $t failed (full log: fuzz/$log). The crashing input is in fuzz/artifacts/$t/;"
            echo "   minimise it: (cd fuzz && cargo +nightly fuzz tmin ${fuzz_flags[*]} $t artifacts/$t/<crash-file>)"
        } >&2
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== fuzz smoke FAILED for: ${failed[*]} ($(elapsed))" >&2
    exit 1
fi
echo "== fuzz smoke passed: ${targets[*]} ($(elapsed))"
