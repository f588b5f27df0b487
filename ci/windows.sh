#!/usr/bin/env bash
# Runs uvio's Windows build for real, from Linux: builds libuv for x86_64-pc-windows-gnu with mingw-w64, builds
# every test binary and the examples for that target, and runs them under Wine: each test binary with a bounded
# time, then the examples' smoke runs. Prints passed / failed / listed-as-Wine-limit per binary and a total, and
# exits non-zero on any failure that is not listed below (WINE_LIMITS) with its reason and evidence.
#
#   ci/windows.sh                       everything
#   ci/windows.sh BINARY...             only these test binaries (e.g. `tcp net_tcp`), no examples
#   UVIO_WINE_TIMEOUT=SECONDS           time allowed per test binary (default 180)
#   uses $CARGO_TARGET_DIR (else ./target); everything goes under its wine/ directory (own cargo target dir, the
#   libuv build, the Wine prefix), so nothing here disturbs the Linux build or ci/cross-check.sh
#
# Every test binary runs (the Linux-only ones hold no test on Windows and report 0): about a minute once built,
# the whole script about 4 minutes on 2 cores from a cold target directory (CMake's libuv build ~30 s, the Rust
# build ~3 min, a new Wine prefix ~5 s). Doc tests do not run (rustdoc cannot run a cross-compiled doc test).
#
# Skips (saying why, exit 0) where mingw-w64, cmake or Wine cannot be installed (no apt-get, not root, no sudo).
#
# How libuv gets built: libuv-sys2's build script (1.53) picks libuv's C sources by the *host's* `cfg!(windows)`,
# so from Linux it would feed libuv's Unix sources to the Windows compiler. Instead this script builds libuv's
# Windows sources with libuv's own CMake and a MinGW toolchain file (the libuv source is the copy inside the
# libuv-sys2 crate in cargo's registry; nothing is copied into the repository), and points libuv-sys2's build
# script at two stubs: the check-only C compiler of ci/cross-check.sh (bindgen still reads the real headers), and
# an archiver that, when cc archives `libuv.a`, puts the real archive in its place. The Windows system libraries
# libuv-sys2 would have linked on a Windows host are passed to the linker here (WINDOWS_LIBS).
#
# Wine 8 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard library (1.78 and newer) imports for
# `ProcessPrng`: every Rust Windows binary fails to start without it. The script builds a one-function stand-in
# (ProcessPrng over bcrypt's BCryptGenRandom, which Wine has) into the Wine prefix when the prefix has none.
set -euo pipefail
cd "$(dirname "$0")/.."

# step, write_if_changed, use_stub_cc, find_clang_resource_dir, $target_dir.
# shellcheck source=ci/cross-check.sh
source ci/cross-check.sh

skip() {
    echo "windows (wine): skipped: $*"
    exit 0
}

TARGET=x86_64-pc-windows-gnu
TARGET_ENV=${TARGET//-/_}
MINGW=x86_64-w64-mingw32
per_binary_timeout=${UVIO_WINE_TIMEOUT:-180}
# What libuv-sys2's build script links on a Windows host (its `cfg!(windows)` branch).
WINDOWS_LIBS=(shell32 psapi user32 advapi32 iphlpapi userenv ws2_32 dbghelp ole32 synchronization)

# --- tests Wine cannot run ---------------------------------------------------------------------------------------
# `wine_limit BINARY TEST`: TEST (its full name) in the test binary BINARY fails only because Wine lacks what it
# needs. Each entry says what and gives the evidence: the same scenario in libuv's own C test suite (libuv's CMake
# builds `uv_run_tests_a.exe` with -DBUILD_TESTING=ON; run one test with `wine uv_run_tests_a.exe NAME`) fails
# the same way under Wine 8, or Wine's source shows the call unimplemented.
declare -A WINE_LIMITS=()
wine_limit() { WINE_LIMITS[$1]+=" $2"; }

# Wine 8 does not set a file's access time: libuv's `fs_utime` and `fs_futime` fail the same way under Wine
# ("Assertion failed in test/test-fs.c on line 893: `st_atim == atime` (1796437293.210196 == 400497753.250000)":
# the access time stays "now").
wine_limit uv_fs utime_and_futime_round_trip
wine_limit uv_fs utime_now_sets_the_current_time
# Wine 8 lets a second server create a pipe instance under a name another server holds (Windows refuses with
# ERROR_ACCESS_DENIED, which libuv reports as EADDRINUSE): libuv's `pipe_bind_error_addrinuse` fails the same
# way under Wine ("test/test-pipe-bind-error.c on line 57: `r == UV_EADDRINUSE` (0 == -4091)").
wine_limit net_windows_pipe binding_a_held_name_is_addr_in_use::libuv
# Scale: every Windows socket under Wine is a Linux descriptor in wineserver plus one in the process, and every
# socket call is a round trip to the one wineserver. 10,000 concurrent connections (20,000 sockets) next to the
# binary's other tests fail with ECONNRESET or run past the time limit; measured alone on a fresh wineserver the
# same test passes with 7,000 connections (27 s) and with 10,000 (37 s), so uvio's code path works. libuv's own
# suite has no test at this scale.
wine_limit net_tcp ten_thousand_concurrent_echo_tasks::libuv
# No Windows console under Wine without a display: AllocConsole succeeds, but GenerateConsoleCtrlEvent then
# fails with ERROR_INVALID_HANDLE (the test asserts that call, so its failure shows exactly this), so no
# Ctrl+Break or Ctrl+C event can be generated at all. The same lack fails every one of libuv's `tty_*` tests
# under Wine (24 of 24). The test runs on the GitHub job's real Windows.
wine_limit win_signal ctrl_break_and_ctrl_c_reach_their_listeners

# --- prerequisites -------------------------------------------------------------------------------------------
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || skip "Wine runs of the x86_64 Windows build need an x86_64 Linux host"
command -v rustup >/dev/null 2>&1 || skip "no rustup to install the $TARGET target"
if ! rustup target list --installed | grep -qx "$TARGET"; then
    step "rustup target add $TARGET"
    rustup target add "$TARGET" || skip "cannot install the rustup target $TARGET"
fi
need_apt=()
command -v "$MINGW-gcc" >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v wine >/dev/null 2>&1 || need_apt+=(wine wine64)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    need_apt+=(libclang-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "${need_apt[*]} missing and no apt-get to install them"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || skip "${need_apt[*]} missing, and installing them needs root (or sudo)"
        sudo=sudo
    fi
    step "installing ${need_apt[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null ||
        skip "apt-get could not install ${need_apt[*]}"
fi

SECONDS=0
mkdir -p "$target_dir/wine"
wine_dir=$(cd "$target_dir/wine" && pwd)
export CARGO_TARGET_DIR=$wine_dir/cargo
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# --- libuv for Windows, with libuv's own CMake (cached) ------------------------------------------------------
libuv_manifest=$(cargo metadata --format-version 1 --filter-platform "$TARGET" |
    grep -o '"manifest_path":"[^"]*/libuv-sys2-[^"/]*/Cargo.toml"' | head -n 1 | sed 's/.*:"\(.*\)"/\1/')
libuv_src=$(dirname "$libuv_manifest")/libuv
[ -f "$libuv_src/CMakeLists.txt" ] || skip "no libuv source in the libuv-sys2 crate ($libuv_src)"
libuv_archive=$wine_dir/libuv/libuv.a
mkdir -p "$wine_dir/libuv"
write_if_changed "$wine_dir/libuv/mingw-toolchain.cmake" <<EOF
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_C_COMPILER $MINGW-gcc)
set(CMAKE_RC_COMPILER $MINGW-windres)
EOF
if [ ! -f "$libuv_archive" ] || [ "$wine_dir/libuv/mingw-toolchain.cmake" -nt "$libuv_archive" ] ||
    [ -n "$(find "$libuv_src" -type f -newer "$libuv_archive" -print -quit)" ]; then
    step "building libuv ($libuv_src) for $TARGET with CMake and mingw-w64"
    rm -rf "$wine_dir/libuv/build"
    log=$wine_dir/libuv/build.log
    if ! cmake -S "$libuv_src" -B "$wine_dir/libuv/build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_TOOLCHAIN_FILE="$wine_dir/libuv/mingw-toolchain.cmake" -DLIBUV_BUILD_SHARED=OFF \
        -DBUILD_TESTING=OFF >"$log" 2>&1 || ! cmake --build "$wine_dir/libuv/build" -j "$(nproc)" >>"$log" 2>&1; then
        tail -n 30 "$log"
        echo "building libuv for $TARGET failed (full output: $log)"
        exit 1
    fi
    cp "$wine_dir/libuv/build/libuv.a" "$libuv_archive"
else
    step "libuv for $TARGET is up to date ($libuv_archive)"
fi

# --- the Rust build ------------------------------------------------------------------------------------------
use_stub_cc "$MINGW-gcc"
stub_ar=$wine_dir/bin/$TARGET-ar
mkdir -p "$wine_dir/bin"
write_if_changed "$stub_ar" <<EOF
#!/usr/bin/env bash
# ci/windows.sh: cc (libuv-sys2's build script) archives libuv with \`ar cq DST OBJS...\` (or cqD), then indexes it
# with \`ar s DST\`. For libuv's archive, the real one (built with CMake) takes the place of the stub's objects.
if [[ \$1 == cq* ]] && [ "\$(basename "\$2")" = libuv.a ]; then exec cp "$libuv_archive" "\$2"; fi
exec $MINGW-ar "\$@"
EOF
chmod +x "$stub_ar"
export "AR_$TARGET_ENV=$stub_ar"
find_clang_resource_dir
export "BINDGEN_EXTRA_CLANG_ARGS_$TARGET_ENV=-resource-dir=$resource_dir"
rustflags=""
for lib in "${WINDOWS_LIBS[@]}"; do rustflags+=" -C link-arg=-l$lib"; done
export "CARGO_TARGET_${TARGET_ENV^^}_RUSTFLAGS=${rustflags# }"

step "cargo build --target $TARGET --tests --examples --features tokio-io"
cargo build --target "$TARGET" --examples --features tokio-io
test_exes=()
while IFS= read -r exe; do test_exes+=("$exe"); done < <(
    cargo test --no-run --target "$TARGET" --features tokio-io --lib --tests --message-format=json |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | sort)
[ ${#test_exes[@]} -gt 0 ] || { echo "no test binaries were built"; exit 1; }

# --- Wine ----------------------------------------------------------------------------------------------------
export WINEPREFIX=$wine_dir/prefix WINEDEBUG=-all WINEARCH=win64
# No Mono or Gecko install prompts: nothing here needs .NET or a browser engine.
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    step "wineboot -i (a new Wine prefix in $WINEPREFIX)"
    wineboot -i >/dev/null 2>&1
    # The prefix's registry is written when its wine server exits.
    wineserver -w
fi
# One wine server for the whole run (each test binary would otherwise start its own); stopped on exit.
wineserver -w
wineserver -p
trap 'wineserver -k 2>/dev/null || true' EXIT

system32=$WINEPREFIX/drive_c/windows/system32
if [ ! -f "$system32/bcryptprimitives.dll" ]; then
    step "bcryptprimitives.dll stand-in (ProcessPrng) for this Wine ($(wine --version 2>/dev/null))"
    mkdir -p "$wine_dir/shim"
    cat >"$wine_dir/shim/bcryptprimitives.c" <<'EOF'
/* ci/windows.sh: Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks. */
#include <windows.h>
#include <bcrypt.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
EOF
    printf 'LIBRARY bcryptprimitives\nEXPORTS\n    ProcessPrng\n' >"$wine_dir/shim/bcryptprimitives.def"
    "$MINGW-gcc" -shared -O2 -o "$system32/bcryptprimitives.dll" "$wine_dir/shim/bcryptprimitives.c" \
        "$wine_dir/shim/bcryptprimitives.def" -lbcrypt
fi

build_seconds=$SECONDS

# --- the test binaries ---------------------------------------------------------------------------------------
step "test binaries under Wine ($per_binary_timeout s each at most, --test-threads=2)"
total_passed=0 total_failed=0 total_listed=0 bad_binaries=()
for exe in "${test_exes[@]}"; do
    name=$(basename "$exe" .exe)
    name=${name%-*}
    [ $# = 0 ] || [[ " $* " == *" $name "* ]] || continue
    args=(--test-threads=2)
    listed=0
    for t in ${WINE_LIMITS[$name]:-}; do
        args+=(--skip "$t")
        listed=$((listed + 1))
    done
    log=$wine_dir/logs/$name.log
    mkdir -p "$wine_dir/logs"
    rc=0
    timeout --kill-after=10 "$per_binary_timeout" wine "$exe" --exact "${args[@]}" </dev/null >"$log" 2>&1 || rc=$?
    result=$(grep -E '^test result: ' "$log" | tail -n 1 || true)
    passed=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$result")
    failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$result")
    passed=${passed:-0} failed=${failed:-0}
    total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
    total_listed=$((total_listed + listed))
    status=""
    if [ $rc = 124 ] || [ $rc = 137 ]; then
        status="  TIMED OUT after ${per_binary_timeout}s"
    elif [ -z "$result" ] || [ $rc != 0 ]; then
        status="  FAILED (exit status $rc)"
    fi
    printf '%-26s %4d passed %4d failed %4d listed as Wine limits%s\n' "$name" "$passed" "$failed" "$listed" "$status"
    if [ -n "$status" ]; then
        bad_binaries+=("$name")
        grep -E '^(test .* FAILED|---- |thread .* panicked)' "$log" | head -n 40 | sed 's/^/    /' || true
        echo "    (full output: $log)"
    fi
done
printf '%-26s %4d passed %4d failed %4d listed as Wine limits\n' TOTAL "$total_passed" "$total_failed" "$total_listed"
tests_seconds=$((SECONDS - build_seconds))

if [ $# -gt 0 ]; then
    [ ${#bad_binaries[@]} = 0 ] || exit 1
    exit 0
fi

# --- the examples --------------------------------------------------------------------------------------------
step "examples under Wine: smoke runs"
examples=$CARGO_TARGET_DIR/$TARGET/debug/examples
smoke_tmp=$(mktemp -d)
server_pid=""
smoke_cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$smoke_tmp"
    wineserver -k 2>/dev/null || true
}
trap smoke_cleanup EXIT
smoke_failed=0
smoke() {
    local name=$1
    shift
    if "$@"; then echo "$name: ok"; else
        echo "$name: FAILED"
        smoke_failed=1
    fi
}
# Starts a server example in the background and sets $port from its "listening on ...:PORT" line.
start_server() {
    local out=$1
    shift
    timeout 60 wine "$@" >"$out" 2>&1 </dev/null &
    server_pid=$!
    for _ in $(seq 1 200); do
        grep -q "listening on" "$out" 2>/dev/null && break
        sleep 0.1
    done
    port=$(sed -n 's|.*listening on [a-z:/]*127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out")
    [ -n "$port" ] || { cat "$out"; return 1; }
}
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
smoke_tour() {
    timeout 60 wine "$examples/tour.exe" </dev/null >"$smoke_tmp/tour.out" 2>&1
    grep -q "tour finished" "$smoke_tmp/tour.out" || { cat "$smoke_tmp/tour.out"; return 1; }
}
smoke_cat() {
    head -c 300000 /dev/urandom >"$smoke_tmp/data.bin"
    printf 'second file\n' >"$smoke_tmp/b.txt"
    timeout 60 wine "$examples/cat.exe" "$smoke_tmp/data.bin" "$smoke_tmp/b.txt" </dev/null >"$smoke_tmp/cat.out"
    cat "$smoke_tmp/data.bin" "$smoke_tmp/b.txt" | cmp - "$smoke_tmp/cat.out" || return 1
    ! timeout 60 wine "$examples/cat.exe" "$smoke_tmp/missing" </dev/null >/dev/null 2>&1
}
smoke_spawn() {
    timeout 60 wine "$examples/spawn.exe" </dev/null >"$smoke_tmp/spawn.out" 2>&1
    grep -q "hello from a child process" "$smoke_tmp/spawn.out" || { cat "$smoke_tmp/spawn.out"; return 1; }
}
smoke_echo() {
    local api=$1 msg reply i
    start_server "$smoke_tmp/echo.out" "$examples/echo_server.exe" --api "$api" --port 0 --max-seconds 50 || return 1
    for i in 1 2 3; do
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        msg="hello uvio $api $i $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        printf '%s' "$msg" >&3
        reply=""
        IFS= read -r -t 10 -N "${#msg}" reply <&3 || true
        exec 3<&- 3>&-
        [ "$reply" = "$msg" ] || { echo "echo mismatch: '$reply' != '$msg'"; stop_server; return 1; }
    done
    stop_server
}
smoke_http() {
    local ok=0
    start_server "$smoke_tmp/http.out" "$examples/http_server.exe" --port 0 --max-seconds 50 || return 1
    for _ in 1 2 3; do
        curl -fsS --max-time 10 "http://127.0.0.1:$port/" | grep -qx "Hello from uvio" || ok=1
    done
    stop_server
    return $ok
}
smoke tour smoke_tour
smoke cat smoke_cat
smoke spawn smoke_spawn
smoke "echo_server --api async" smoke_echo async
smoke "echo_server --api callback" smoke_echo callback
if command -v curl >/dev/null 2>&1; then smoke http_server smoke_http; else echo "http_server: skipped (no curl)"; fi

echo "windows (wine): ${build_seconds}s to build (libuv, Wine prefix, tests, examples), ${tests_seconds}s of tests,"\
    "$((SECONDS - build_seconds - tests_seconds))s of examples"
if [ ${#bad_binaries[@]} -gt 0 ] || [ $smoke_failed = 1 ]; then
    echo "windows (wine): FAILED: ${bad_binaries[*]}$([ $smoke_failed = 1 ] && echo ' (and example smoke runs)')"
    exit 1
fi
step "windows (wine) green"
