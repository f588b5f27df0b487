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

for api in async callback; do
    echo "--- echo_server --api $api"
    ./target/release/examples/echo_server --api "$api" --port 0 --max-seconds 60 >"$tmp/echo.out" &
    server_pid=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$tmp/echo.out" 2>/dev/null && break
        sleep 0.1
    done
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/echo.out")
    [ -n "$port" ] || { echo "echo_server did not start"; cat "$tmp/echo.out"; exit 1; }
    for i in 1 2 3; do
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        msg="hello uvio $api $i $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        printf '%s' "$msg" >&3
        reply=""
        IFS= read -r -t 5 -N "${#msg}" reply <&3 || true
        exec 3<&- 3>&-
        [ "$reply" = "$msg" ] || { echo "echo mismatch: '$reply' != '$msg'"; exit 1; }
    done
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
done
echo "--- http_server (hyper on uvio) under wrk -t1 -c50 -d5s"
./target/release/examples/http_server --port 0 --max-seconds 60 >"$tmp/http.out" &
server_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$tmp/http.out" 2>/dev/null && break
    sleep 0.1
done
port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/http.out")
[ -n "$port" ] || { echo "http_server did not start"; cat "$tmp/http.out"; exit 1; }
curl -fsS "http://127.0.0.1:$port/" | grep -qx "Hello from uvio"
wrk -t1 -c50 -d5s "http://127.0.0.1:$port/" | tee "$tmp/wrk.out"
grep -q "Requests/sec" "$tmp/wrk.out"
if grep -qE "Socket errors|Non-2xx" "$tmp/wrk.out"; then echo "wrk saw errors"; exit 1; fi
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

echo "smoke runs ok"
