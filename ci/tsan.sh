#!/usr/bin/env bash
# ThreadSanitizer over the tests that cross threads: runtime handles and remote wakeups, spawn_blocking, libuv's
# async handle and thread pool, loops dropped on other threads, the child-process reaper thread, JoinSet and
# AbortHandle across threads, and the multi-threaded server. On demand (not
# part of ci/test.sh): it needs a nightly toolchain with rust-src (`-Zbuild-std`, so that std is instrumented
# too; without it std's own synchronisation shows as races) and takes about ten minutes on two cores. libuv's C
# sources are instrumented as well (CFLAGS reaches libuv-sys2's `cc` build). Any report fails the run, except
# the few in ci/tsan.supp, each explained there.
#
#   ci/tsan.sh [TEST_BINARY...]     default: the binaries below
#   uses $CARGO_TARGET_DIR (else target/tsan: instrumented builds must not mix with the normal ones)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup toolchain install nightly --profile minimal --component rust-src >/dev/null
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(rt_tasks rt_lifecycle rt_join_set uv_async uv_work uv_loop uv_process process_unix net_server rt_health)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/tsan}
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" CFLAGS="-fsanitize=thread"
# ci/tsan.supp: reports that are not races (each with its reason).
export TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0 exitcode=66 suppressions=$PWD/ci/tsan.supp"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
test_args=()
for b in "${bins[@]}"; do test_args+=(--test "$b"); done
cargo +nightly test -Zbuild-std --target "$host" "${test_args[@]}" -- --test-threads=2 2>&1 | tee target/tsan.log |
    grep -E '^test result|WARNING: ThreadSanitizer|^     Running' || true
if grep -q 'WARNING: ThreadSanitizer' target/tsan.log || ! grep -q '^test result' target/tsan.log ||
    grep -q '^test result: FAILED' target/tsan.log; then
    echo "tsan: FAILED (see target/tsan.log)"
    exit 1
fi
echo "tsan: no data race reported"
