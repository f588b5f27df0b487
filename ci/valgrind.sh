#!/usr/bin/env bash
# Runs the test binaries under valgrind memcheck: zero errors and no definite leaks, or it fails.
# Every integration test binary runs whole; the few tests too heavy for valgrind's ~50x slowdown are
# listed in SKIP with the reason, and they run natively in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Name filters passed as --skip to the harness. Each skipped test runs natively in `cargo test`; under valgrind
# it cannot run as written, and the same code paths run under valgrind in lighter tests:
# - ten_thousand_concurrent_echo_tasks: valgrind keeps part of the descriptor table for itself, so 20 000
#   sockets hit EMFILE, libuv sheds connections (RST) and the test's byte-exact check fails by design.
SKIP=(ten_thousand_concurrent_echo_tasks ${UVIO_VALGRIND_SKIP:-})

# Engines: every binary runs on the libuv engine; the binaries whose I/O differs per engine run again on epoll
# and on io_uring. Valgrind cannot see the kernel write into memory through the ring, so uvio lends the ring only
# initialised memory (a file's read buffer is zeroed at its first use, the provided-buffer ring is allocated
# zeroed): memcheck then sees defined bytes, and the ring engine is checked like the others. The binaries that
# ask for io_uring themselves (engine_io_uring, engine_uring_net, uring_cancel_stress) run in the libuv pass.
# async_emfile runs in the libuv pass only: valgrind emulates RLIMIT_NOFILE in its syscall wrappers (it keeps
# descriptors of its own above the limit), so an accept4 it wraps, or an accept the ring does in the kernel, sees
# another limit than the test set, and the epoll and io_uring runs would test valgrind instead of uvio.
SKIP_BINS=()
EPOLL_BINS=(net_tcp net_udp net_unix tokio_io engine_epoll engine_epoll_udp host_loop async_process rt_lifecycle)
RING_BINS=(net_tcp net_unix tokio_io async_fs rt_lifecycle)
# The binaries built on `rt_test!` or a per-engine loop (faults, bad_input, prop_streams) run every engine inside
# the libuv pass already.
# The cancellation stress test runs fewer operations under valgrind (natively: 100 000).
export UVIO_STRESS_OPS=${UVIO_STRESS_OPS:-5000}

mapfile -t bins < <(cargo test --tests --features tokio-io --no-run --message-format=json 2>/dev/null |
    grep '"profile":{' | grep '"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
[ ${#bins[@]} -gt 0 ] || { echo "no test binaries found"; exit 1; }

skip_args=()
for s in "${SKIP[@]}"; do skip_args+=(--skip "$s"); done

failed=0
run() { # run BACKEND BIN
    local backend=$1 bin=$2 name log start
    name=$(basename "$bin")
    log=$(mktemp)
    start=$(date +%s)
    if UVIO_BACKEND=$backend valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --track-fds=no \
        "$bin" --test-threads=2 "${skip_args[@]}" >"$log" 2>&1; then
        echo "valgrind ok   [$backend] ${name%-*} ($(( $(date +%s) - start ))s): $(grep -E '^test result' "$log" | tail -1)"
    else
        echo "valgrind FAIL [$backend] ${name%-*}"
        tail -60 "$log"
        failed=1
    fi
    rm -f "$log"
}

for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    if [ ${#SKIP_BINS[@]} -gt 0 ] && printf '%s\n' "${SKIP_BINS[@]}" | grep -qx "${name%-*}"; then
        echo "valgrind skip ${name%-*} (io_uring: see SKIP_BINS)"
        continue
    fi
    run libuv "$bin"
    if [ "$(uname -s)" = Linux ] && printf '%s\n' "${EPOLL_BINS[@]}" | grep -qx "${name%-*}"; then
        run epoll "$bin"
    fi
    if [ "$(uname -s)" = Linux ] && printf '%s\n' "${RING_BINS[@]}" | grep -qx "${name%-*}"; then
        run io_uring "$bin"
    fi
done
exit $failed
