#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what a fresh Debian machine lacks, then runs the format
# check, the layering check (ci/layering.sh), clippy, Windows and macOS type-checks, the whole test suite
# (doctests included) on every engine, the packaged crate's build, the examples' smoke runs, a short soak run
# (ci/soak.sh), the Windows build's tests and examples under Wine (ci/windows.sh), valgrind, and a check with the
# oldest supported Rust (Cargo.toml's rust-version). ThreadSanitizer (ci/tsan.sh) runs on demand.
#
#   ci/test.sh              everything
#   UVIO_SKIP_VALGRIND=1    skips the valgrind step (quick local runs)
#   UVIO_SKIP_WINE=1        skips the Wine run
#   UVIO_SKIP_MSRV=1        skips the rust-version check
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- prerequisites -------------------------------------------------------------------------------------------
need_apt=()
# bindgen (through libuv-sys2) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    need_apt+=(libclang-dev)
fi
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
# The Windows cross-check and the Wine run (ci/cross-check.sh, ci/windows.sh): mingw-w64, CMake (libuv's own
# build for Windows) and Wine.
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
if [ "${UVIO_SKIP_WINE:-0}" != 1 ]; then
    command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
    command -v wine >/dev/null 2>&1 || need_apt+=(wine wine64)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    step "installing ${need_apt[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
# The Windows and macOS standard libraries, for the cross-checks and the Windows build; when rustup cannot
# install them, ci/cross-check.sh and ci/windows.sh say so and skip.
for target in x86_64-pc-windows-gnu x86_64-apple-darwin; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" ||
        echo "note: could not install the rustup target $target"
done

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "layering: only src/engine/ knows the engines (ci/layering.sh)"
ci/layering.sh

# --workspace: uvio and its member uvio-macros (the #[uvio::main] and #[uvio::test] attributes).
step "cargo clippy --workspace --all-targets -- -D warnings (default features, then tokio-io, then no macros)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features tokio-io -- -D warnings
cargo clippy --lib --no-default-features --features vendored-libuv -- -D warnings

step "Windows and macOS type-checks from Linux (each skipped, saying why, where its target cannot be installed)"
ci/cross-check.sh

# The async tests run on every engine this machine supports inside their binaries (tests/common/rt.rs,
# `rt_test!`), so this one run covers libuv, epoll and io_uring; UVIO_BACKEND=NAME forces one for a whole run.
step "cargo test (unit, integration and doc tests; tokio-io feature on, a superset)"
cargo test --workspace --all-targets --features tokio-io
cargo test --workspace --doc --features tokio-io

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

# --workspace: uvio depends on uvio-macros by version, which is verified from a local registry of the two
# packaged crates (publish uvio-macros first).
step "cargo package --workspace (the crates as published: each builds from its own files, licences included)"
cargo package --workspace --offline --quiet --allow-dirty

step "examples: smoke runs"
ci/smoke.sh

step "soak, short run (ci/soak.sh runs it in full)"
ci/soak.sh --quick

if [ "${UVIO_SKIP_WINE:-0}" != 1 ]; then
    step "Windows build: tests and examples under Wine"
    ci/windows.sh
fi

if [ "${UVIO_SKIP_VALGRIND:-0}" != 1 ]; then
    step "valgrind memcheck"
    ci/valgrind.sh
fi

if [ "${UVIO_SKIP_MSRV:-0}" != 1 ]; then
    msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
    # Every feature that goes with the default `vendored-libuv` (`system-libuv` excludes it: see lib.rs).
    step "cargo +$msrv check --all-targets --features tokio-io (the declared rust-version, locked dependencies)"
    if rustup toolchain list | grep -q "^$msrv-" || rustup toolchain install "$msrv" --profile minimal; then
        # Its own target directory: a different compiler would otherwise rebuild the stable toolchain's
        # artifacts on the next run.
        CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/msrv cargo "+$msrv" check --all-targets --features tokio-io --locked
    else
        echo "skipped: rustup could not install Rust $msrv"
    fi
fi

step "all green"
