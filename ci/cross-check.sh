#!/usr/bin/env bash
# Type-checks the Windows build from Linux: `cargo check` and `cargo clippy -D warnings` for
# x86_64-pc-windows-gnu (all targets, feature tokio-io). Nothing is linked or run: the Windows test run is CI's
# windows-latest job. Skips (exit 0, saying why) when the rustup target is not installed or the mingw-w64
# toolchain cannot be installed here.
#
#   ci/cross-check.sh               uses $CARGO_TARGET_DIR (else ./target), like cargo
#
# Why a stub C compiler: libuv-sys2's build script (1.53) chooses libuv's C sources with the *host's*
# `cfg!(windows)`, so cross-compiling from Linux feeds libuv's Unix sources to the Windows compiler, which
# cannot build them. A check never links libuv, so the wrapper written below compiles an empty file for each
# of them; bindgen still generates the real Windows bindings from libuv's headers and mingw-w64's, and those
# are what the check needs.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
TARGET_ENV=${TARGET//-/_}
MINGW_CC=x86_64-w64-mingw32-gcc

step() { printf '\n==> %s\n' "$*"; }
skip() {
    echo "cross-check: skipped: $*"
    exit 0
}

# --- prerequisites -------------------------------------------------------------------------------------------
command -v rustup >/dev/null 2>&1 || skip "no rustup to tell whether the $TARGET target is installed"
rustup target list --installed | grep -qx "$TARGET" ||
    skip "the rustup target $TARGET is not installed (rustup target add $TARGET)"

need_apt=()
command -v "$MINGW_CC" >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
# bindgen (through libuv-sys2) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    need_apt+=(libclang-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "${need_apt[*]} missing and no apt-get to install them"
    step "installing ${need_apt[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

# --- the stub compiler and bindgen's clang arguments ---------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir/cross-cc"
stub_cc=$(cd "$target_dir/cross-cc" && pwd)/$MINGW_CC-check-only
# Compiles (-c) an empty translation unit instead of the source it is given; anything else (cc's compiler
# detection, `-E`, `--version`) goes to the real mingw-w64 gcc.
cat >"$stub_cc.tmp" <<EOF
#!/usr/bin/env bash
out=""; compile=0; prev=""
for arg in "\$@"; do
    [ "\$prev" = -o ] && out=\$arg
    [ "\$arg" = -c ] && compile=1
    prev=\$arg
done
if [ \$compile = 1 ] && [ -n "\$out" ]; then
    exec $MINGW_CC -x c -c -o "\$out" - </dev/null
fi
exec $MINGW_CC "\$@"
EOF
chmod +x "$stub_cc.tmp"
# Replaced only when it changed, so cargo sees the same compiler and keeps libuv-sys2's build output.
if cmp -s "$stub_cc.tmp" "$stub_cc"; then rm "$stub_cc.tmp"; else mv "$stub_cc.tmp" "$stub_cc"; fi
export "CC_$TARGET_ENV=$stub_cc"

# mingw-w64's headers include compiler intrinsics headers (x86intrin.h) that libclang finds only in clang's
# resource directory; without a `clang` binary on PATH bindgen cannot locate it, so name it.
if command -v clang >/dev/null 2>&1; then
    resource_dir=$(clang -print-resource-dir)
else
    resource_dir=$(ls -d /usr/lib/llvm-*/lib/clang/*/ 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$resource_dir" ] || skip "no clang resource directory (install libclang-dev or clang)"
export "BINDGEN_EXTRA_CLANG_ARGS_$TARGET_ENV=-resource-dir=$resource_dir"

# --- the checks ----------------------------------------------------------------------------------------------
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step "cargo check --target $TARGET --all-targets --features tokio-io"
cargo check --target "$TARGET" --all-targets --features tokio-io

step "cargo clippy --target $TARGET --all-targets --features tokio-io -- -D warnings"
cargo clippy --target "$TARGET" --all-targets --features tokio-io -- -D warnings

step "windows cross-check green"
