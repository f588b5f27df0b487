#!/usr/bin/env bash
# On demand (not part of ci/test.sh): checks the `system-libuv` feature for real, against a shared libuv.
#
#   ci/system-libuv.sh                  the default test binaries below
#   ci/system-libuv.sh BINARY...        these test binaries instead (e.g. `uv_timer`)
#   uses $CARGO_TARGET_DIR (else ./target); the libuv build goes under its system-libuv/ directory
#
# 1. Builds libuv 1.53.0 as a shared library with libuv's own CMake, from the source bundled in the libuv-sys2
#    crate in cargo's registry (nothing is copied into the repository), into a prefix under the target dir.
# 2. Shows that the build check refuses it: libuv-sys2 1.53.1 asks pkg-config for `>= 1.53.1, < 1.54.0` (its
#    floor is its own crate version, not the 1.53.0 it bundles) and would silently compile its bundled copy for
#    1.53.0; uvio's build.rs must stop the build with "pkg-config found libuv 1.53.0".
# 3. Relabels that build 1.53.1 in a second pkg-config file (the only change: its `Version:` line). Patch
#    releases keep libuv's ABI, and no 1.53.1 source is at hand offline; this is what a system libuv 1.53.1
#    looks like to both build scripts.
# 4. Runs the test binaries with `--no-default-features --features system-libuv` and LD_LIBRARY_PATH at the
#    prefix, then checks with ldd that each links the shared libuv.so.1 from the prefix and with nm that
#    `uv_loop_init` is not compiled into it (undefined there: it comes from the shared library).
#
# Takes about 4 minutes on 2 cores from a warm default build (CMake's libuv build ~1.5 min, rebuilding
# libuv-sys2 and uvio with the feature and the three test binaries ~2 min, the tests a few seconds).
# Needs cmake, pkg-config, a C compiler, ldd and nm.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() {
    echo "system-libuv: FAILED: $*" >&2
    exit 1
}

target_dir=${CARGO_TARGET_DIR:-target}
work=$(realpath -m "$target_dir/system-libuv")
prefix=$work/prefix
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(uv_loop rt_host_loop net_tcp)

for tool in cmake pkg-config cc ldd nm; do
    command -v "$tool" >/dev/null 2>&1 || fail "needs $tool"
done
libuv_src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libuv-sys2-1.53.1/libuv 2>/dev/null | head -1)
[ -n "$libuv_src" ] || fail "libuv-sys2 1.53.1's source is not in cargo's registry (run \`cargo fetch\`)"

step "libuv 1.53.0 (shared) from $libuv_src into $prefix"
if [ ! -f "$prefix/lib/libuv.so.1" ]; then
    mkdir -p "$work"
    log=$work/cmake.log
    if ! cmake -S "$libuv_src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLIBUV_BUILD_SHARED=ON \
        -DBUILD_TESTING=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >"$log" 2>&1 ||
        ! cmake --build "$work/build" -j "$(nproc)" >>"$log" 2>&1 ||
        ! cmake --install "$work/build" >>"$log" 2>&1; then
        tail -20 "$log" >&2
        fail "libuv's CMake build (log: $log)"
    fi
fi
built_pc=$prefix/lib/pkgconfig
grep -q '^Version: 1.53.0$' "$built_pc/libuv.pc" || fail "$built_pc/libuv.pc is not libuv 1.53.0"

feature_args=(--no-default-features --features system-libuv,macros)

step "the build check refuses libuv 1.53.0 (libuv-sys2 would silently compile its bundled copy)"
if out=$(PKG_CONFIG_PATH=$built_pc cargo check "${feature_args[@]}" 2>&1); then
    fail "cargo check with libuv 1.53.0 succeeded; it must fail"
fi
grep -F "pkg-config found libuv 1.53.0, but libuv >= 1.53.1 and < 1.54.0 is needed" <<<"$out" ||
    fail "cargo check failed without the version message: $out"

step "the same library labelled 1.53.1"
relabelled=$work/pkgconfig-1.53.1
mkdir -p "$relabelled"
sed 's/^Version: 1\.53\.0$/Version: 1.53.1/' "$built_pc/libuv.pc" >"$relabelled/libuv.pc.new"
mv "$relabelled/libuv.pc.new" "$relabelled/libuv.pc"
export PKG_CONFIG_PATH=$relabelled
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

test_args=()
for binary in "${binaries[@]}"; do test_args+=(--test "$binary"); done

step "cargo test ${feature_args[*]} ${test_args[*]}"
cargo test "${feature_args[@]}" "${test_args[@]}"

step "each test binary links $prefix/lib/libuv.so.1 and has no libuv compiled in"
mapfile -t executables < <(cargo test "${feature_args[@]}" "${test_args[@]}" --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
[ ${#executables[@]} -eq ${#binaries[@]} ] || fail "expected ${#binaries[@]} test executables, got ${#executables[@]}"
for exe in "${executables[@]}"; do
    ldd "$exe" | grep -F "libuv.so.1 => $prefix/lib/libuv.so.1" || fail "$exe does not link $prefix/lib/libuv.so.1"
    nm "$exe" | grep -E '^ +U uv_loop_init$' >/dev/null || fail "$exe has libuv compiled in (uv_loop_init is defined)"
done

echo
echo "system-libuv: OK (${binaries[*]} on the shared libuv 1.53.0, labelled 1.53.1, from $prefix)"
