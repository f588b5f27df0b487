#!/usr/bin/env bash
# Smoke runs of every example: each must do its job and exit as documented.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

cargo build --release --examples --features tokio-io
examples=./target/release/examples

# Runs an example, expecting exit status $1; its stdout and stderr land in $tmp/out and $tmp/err.
expect_status() {
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
    if [ "$got" != "$want" ]; then
        echo "expected exit status $want from: $*; got $got"
        cat "$tmp/out" "$tmp/err"
        exit 1
    fi
}
# Checks that $1 (out or err) of the last expect_status run has a line matching the fixed string $2.
expect_line() {
    grep -qF -- "$2" "$tmp/$1" || { echo "expected '$2' in $1 of the last run; got:"; cat "$tmp/out" "$tmp/err"; exit 1; }
}

echo "--- command lines: --help, usage errors"
for ex in tour cat spawn echo_server http_server; do
    for help in --help -h; do
        expect_status 0 "$examples/$ex" "$help"
        expect_line out "Usage: $ex"
    done
    expect_status 2 "$examples/$ex" --no-such-flag
    expect_line err "error: invalid option '--no-such-flag'"
    expect_line err "hint: run \`$ex --help\` for usage"
done
expect_status 2 "$examples/echo_server" --prot 1
expect_line err "error: invalid option '--prot'"
expect_status 2 "$examples/echo_server" --port abc
expect_line err 'error: --port: invalid digit found in string "abc"'
expect_status 2 "$examples/echo_server" --port
expect_line err "error: missing argument for option '--port'"
expect_status 2 "$examples/http_server" --max-seconds -1
expect_line err "error: --max-seconds:"
expect_status 2 "$examples/echo_server" --backend nonsense
expect_line err 'error: --backend: unknown or unsupported uvio backend "nonsense"'
expect_status 2 "$examples/echo_server" --api nonsense
expect_line err 'error: --api: unknown API "nonsense"'
expect_status 2 "$examples/cat"
expect_line err "error: no FILE given"
printf 'a file named like a flag\n' >"$tmp/--help"
(cd "$tmp" && expect_status 0 "$OLDPWD/$examples/cat" -- --help)
expect_line out "a file named like a flag"

echo "--- tour"
cargo run --release --quiet --example tour | tee "$tmp/tour.out"
grep -q "tour finished" "$tmp/tour.out"

echo "--- cat"
head -c 300000 /dev/urandom >"$tmp/data.bin"
printf 'second file\n' >"$tmp/b.txt"
cargo run --release --quiet --example cat -- "$tmp/data.bin" "$tmp/b.txt" >"$tmp/cat.out"
cat "$tmp/data.bin" "$tmp/b.txt" | cmp - "$tmp/cat.out"
if cargo run --release --quiet --example cat -- "$tmp/missing" 2>/dev/null; then
    echo "cat of a missing file should fail"; exit 1
fi

echo "--- spawn"
cargo run --release --quiet --example spawn | tee "$tmp/spawn.out"
grep -q "hello from a child process" "$tmp/spawn.out"
cargo run --release --quiet --example spawn -- sh -c 'echo to-out; echo to-err >&2' | tee "$tmp/spawn2.out"
grep -q "to-out" "$tmp/spawn2.out"
grep -q "to-err" "$tmp/spawn2.out"

# Sends SIGINT (Ctrl-C) to the running server, which must exit 0 within its 2 s drain plus a margin, having
# printed its summary line (matched against the basic regex $2).
interrupt_server() {
    local out=$1 summary=$2 status=0 started=$SECONDS
    kill -INT "$server_pid"
    wait "$server_pid" || status=$?
    server_pid=""
    [ "$status" = 0 ] || { echo "exit status $status after SIGINT (want 0)"; cat "$out"; exit 1; }
    [ $((SECONDS - started)) -le 4 ] || { echo "took $((SECONDS - started)) s to stop after SIGINT"; cat "$out"; exit 1; }
    grep -q "$summary" "$out" || { echo "no summary '$summary' after SIGINT"; cat "$out"; exit 1; }
}

# How the examples print their address.
echo_port='s/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p'
http_port='s|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p'

# Starts a server in the background (its output in OUT), waits until it prints its address, and sets server_pid
# and port (read from the output by the sed script PORT_SED).
start_server() { # start_server OUT PORT_SED COMMAND...
    local out=$1 port_sed=$2
    shift 2
    "$@" >"$out" &
    server_pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -n "$port_sed" "$out" 2>/dev/null)
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    echo "$1 did not start"
    cat "$out"
    exit 1
}

# Sends MSG on a new connection to PORT and checks that exactly MSG comes back.
echo_once() { # echo_once PORT MSG
    local reply=""
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf '%s' "$2" >&3
    IFS= read -r -t 5 -N "${#2}" reply <&3 || true
    exec 3<&- 3>&-
    [ "$reply" = "$2" ] || { echo "echo mismatch: '$reply' != '$2'"; exit 1; }
}

for api in async callback; do
    echo "--- echo_server --api $api"
    start_server "$tmp/echo.out" "$echo_port" "$examples/echo_server" --api "$api" --port 0 --max-seconds 60
    # A second server on the same port fails with the address in its message.
    expect_status 1 "$examples/echo_server" --api "$api" --port "$port"
    expect_line err "error: cannot listen on 127.0.0.1:$port: Address already in use"
    sent=0
    for i in 1 2 3; do
        msg="hello uvio $api $i $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        sent=$((sent + ${#msg}))
        echo_once "$port" "$msg"
    done
    interrupt_server "$tmp/echo.out" "^echo_server stopped (interrupted): 3 connections served, $sent bytes in, $sent bytes out$"
    cat "$tmp/echo.out"
done
for pattern in single-loop acceptor-workers shared-listener reuseport; do
    echo "--- echo_server --pattern $pattern --threads 2"
    start_server "$tmp/echo.out" "$echo_port" "$examples/echo_server" --pattern "$pattern" --threads 2 --port 0 \
        --max-seconds 60
    sent=0
    for i in 1 2 3 4; do
        msg="hello uvio $pattern $i"
        sent=$((sent + ${#msg}))
        echo_once "$port" "$msg"
    done
    interrupt_server "$tmp/echo.out" \
        "^echo_server stopped (interrupted): 4 connections served ([0-9/]* per worker), $sent bytes echoed, 0 still open"
    cat "$tmp/echo.out"
done
echo "--- server (the one-screen pattern example)"
start_server "$tmp/server.out" 's/^echo on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$examples/server" shared-listener 0
echo_once "$port" hello
interrupt_server "$tmp/server.out" "^stopped: 1 connections, 0 cut at the deadline$"
cat "$tmp/server.out"

echo "--- http_server (hyper on uvio) under wrk -t1 -c50 -d5s"
start_server "$tmp/http.out" "$http_port" "$examples/http_server" --port 0 --max-seconds 60
curl -fsS "http://127.0.0.1:$port/" | grep -qx "Hello from uvio"
wrk -t1 -c50 -d5s "http://127.0.0.1:$port/" | tee "$tmp/wrk.out"
grep -q "Requests/sec" "$tmp/wrk.out"
if grep -qE "Socket errors|Non-2xx" "$tmp/wrk.out"; then echo "wrk saw errors"; exit 1; fi
interrupt_server "$tmp/http.out" "^http_server stopped (interrupted): [0-9]* connections served, [0-9]* bytes in"
cat "$tmp/http.out"

echo "--- http_server --pattern reuseport --threads 2 under wrk -t1 -c50 -d2s"
start_server "$tmp/http.out" "$http_port" "$examples/http_server" --pattern reuseport --threads 2 --port 0 \
    --max-seconds 60
wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" | tee "$tmp/wrk.out"
if grep -qE "Socket errors|Non-2xx" "$tmp/wrk.out"; then echo "wrk saw errors"; exit 1; fi
# A keep-alive connection left open: told to stop (Worker::stopping), it closes gracefully, nothing is cut.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
interrupt_server "$tmp/http.out" \
    "^http_server stopped (interrupted): [0-9]* connections served ([0-9/]* per worker), 0 still open"
exec 3<&- 3>&-
cat "$tmp/http.out"

echo "smoke runs ok"
