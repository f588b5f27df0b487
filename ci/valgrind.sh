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
# - shutdown_timeout_abandons_a_blocking_job_past_the_deadline: leaking the runtime's loop (so that a pool
#   thread still running a job never touches freed memory) is what it checks; memcheck reports that leak.
SKIP=(ten_thousand_concurrent_echo_tasks shutdown_timeout_abandons_a_blocking_job_past_the_deadline
    ${UVIO_VALGRIND_SKIP:-})

# Engines. Valgrind cannot see the kernel write into memory through the ring, so uvio lends the ring only
# initialised memory (a file's read buffer is zeroed at its first use, the provided-buffer ring is allocated
# zeroed): memcheck then sees defined bytes, and the ring engine is checked like the others.
# - A binary whose tests run every engine inside it (`rt_test!`, tests/common/rt.rs: names end in ::libuv,
#   ::epoll, ::io_uring) runs once, without UVIO_BACKEND. Its libuv tests (and any on Auto) always run; its epoll
#   and io_uring tests run where it is listed in EPOLL_BINS and RING_BINS (elsewhere they are skipped, to keep
#   valgrind's run short: the same code paths run under valgrind in the listed binaries, and every engine runs
#   natively in `cargo test`).
# - Any other binary runs with UVIO_BACKEND=libuv, and again with epoll and io_uring where it is listed. The binaries
#   that ask for io_uring themselves (engine_io_uring, engine_io_uring_net, engine_io_uring_cancel) run in the libuv
#   pass. net_tcp_emfile runs on libuv only: valgrind emulates RLIMIT_NOFILE in its syscall wrappers (it keeps
#   descriptors of its own above the limit), so an accept4 it wraps, or an accept the ring does in the kernel, sees
#   another limit than the test set, and the epoll and io_uring runs would test valgrind instead of uvio
#   (UVIO_BACKEND=libuv makes its one test run once, on libuv).
SKIP_BINS=()
EPOLL_BINS=(net_tcp net_udp net_unix io_async_fd net_tokio_io engine_epoll_udp rt_host_loop process_unix rt_lifecycle
    api_faults api_bad_input fs_paths)
RING_BINS=(net_tcp net_unix net_tokio_io fs_async rt_lifecycle api_faults api_bad_input)
# The cancellation stress test runs fewer operations under valgrind (natively: 100 000).
export UVIO_STRESS_OPS=${UVIO_STRESS_OPS:-5000}
# The server tests drive fewer concurrent connections under valgrind (natively: 1000).
export UVIO_SERVER_CONNS=${UVIO_SERVER_CONNS:-200}

mapfile -t bins < <(cargo test --tests --features tokio-io --no-run --message-format=json 2>/dev/null |
    grep '"profile":{' | grep '"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
[ ${#bins[@]} -gt 0 ] || { echo "no test binaries found"; exit 1; }

skip_args=()
for s in "${SKIP[@]}"; do skip_args+=(--skip "$s"); done

# Valgrind runs a process's threads one at a time, so the runs go side by side, one per core (UVIO_VALGRIND_JOBS
# overrides); each run's output is kept in its own log and printed when it ends.
jobs_max=${UVIO_VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 2)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
job_count=0
run() { # run BACKEND BIN [HARNESS ARGS]: BACKEND "every" leaves UVIO_BACKEND unset; runs in the background
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    job_count=$((job_count + 1))
    run_one "$logs/$job_count" "$@" &
}
run_one() { # run_one LOG BACKEND BIN [HARNESS ARGS]
    local log=$1 backend=$2 bin=$3 name start
    shift 3
    name=$(basename "$bin")
    start=$(date +%s)
    local env_args=("UVIO_BACKEND=$backend")
    [ "$backend" = every ] && env_args=(-u UVIO_BACKEND)
    if env "${env_args[@]}" valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --track-fds=no \
        "$bin" --test-threads=2 "${skip_args[@]}" "$@" >"$log.out" 2>&1; then
        echo "valgrind ok   [$backend] ${name%-*} ($(( $(date +%s) - start ))s): $(grep -E '^test result' "$log.out" | tail -1)"
    else
        echo "valgrind FAIL [$backend] ${name%-*}"
        tail -60 "$log.out"
        touch "$log.failed"
    fi
}

listed() { # listed ARRAY_NAME BINARY_FILE_NAME: whether the binary (hash suffix dropped) is in the array
    local -n list=$1
    printf '%s\n' "${list[@]}" | grep -qx "${2%-*}"
}

for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    if [ ${#SKIP_BINS[@]} -gt 0 ] && printf '%s\n' "${SKIP_BINS[@]}" | grep -qx "${name%-*}"; then
        echo "valgrind skip ${name%-*} (io_uring: see SKIP_BINS)"
        continue
    fi
    # (grep reads the whole list: with -q it would stop early, and pipefail would see the harness's SIGPIPE)
    if "$bin" --list 2>/dev/null | grep '::libuv: test$' >/dev/null; then
        engine_skips=()
        listed EPOLL_BINS "$name" || engine_skips+=(--skip ::epoll)
        listed RING_BINS "$name" || engine_skips+=(--skip ::io_uring)
        run every "$bin" "${engine_skips[@]}"
        continue
    fi
    run libuv "$bin"
    if [ "$(uname -s)" = Linux ] && listed EPOLL_BINS "$name"; then run epoll "$bin"; fi
    if [ "$(uname -s)" = Linux ] && listed RING_BINS "$name"; then run io_uring "$bin"; fi
done
wait
if compgen -G "$logs/*.failed" >/dev/null; then exit 1; fi
