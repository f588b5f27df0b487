#!/usr/bin/env bash
# Runs the test binaries under valgrind memcheck: zero errors and no definite leaks, or it fails.
# Every integration test binary runs whole; the few tests too heavy for valgrind's ~50x slowdown are
# listed in SKIP with the reason, and they run natively in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# name filters passed as --skip to the harness (heavy loops; the same code paths run in lighter tests)
SKIP=(${UVIO_VALGRIND_SKIP:-})

mapfile -t bins < <(cargo test --tests --no-run --message-format=json 2>/dev/null |
    grep '"profile":{' | grep '"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
[ ${#bins[@]} -gt 0 ] || { echo "no test binaries found"; exit 1; }

skip_args=()
for s in "${SKIP[@]}"; do skip_args+=(--skip "$s"); done

failed=0
for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    log=$(mktemp)
    start=$(date +%s)
    if valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --track-fds=no \
        "$bin" --test-threads=2 "${skip_args[@]}" >"$log" 2>&1; then
        echo "valgrind ok   $name ($(( $(date +%s) - start ))s): $(grep -E '^test result' "$log" | tail -1)"
    else
        echo "valgrind FAIL $name"
        tail -60 "$log"
        failed=1
    fi
    rm -f "$log"
done
exit $failed
