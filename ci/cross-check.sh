#!/usr/bin/env bash
# Type-checks the Windows and macOS builds from Linux: `cargo check` and `cargo clippy -D warnings` for
# x86_64-pc-windows-gnu, then x86_64-apple-darwin (all targets, feature tokio-io), so the code behind
# `cfg(windows)` and behind `cfg(target_os = "macos")` / "unix but not Linux" is compiled on Linux too.
# Nothing is linked or run: the Windows and macOS test runs are CI's windows-latest and macos-latest jobs. Each
# target is skipped (saying why; the script still exits 0) when its rustup target is not installed or its
# toolchain cannot be installed here.
#
#   ci/cross-check.sh                   both targets: windows, then macos
#   ci/cross-check.sh windows|macos     only that one
#   uses $CARGO_TARGET_DIR (else ./target), like cargo
#
# Why a stub C compiler: libuv-sys2's build script (1.53) chooses libuv's C sources with the *host's*
# `cfg!(windows)`, so cross-compiling from Linux feeds libuv's Unix sources to the Windows compiler, which
# cannot build them; and there is no macOS C toolchain or SDK here at all. A check never links libuv, so the
# wrapper written below compiles an empty file for each of libuv's sources; bindgen still generates the
# bindings from libuv's headers, and those are what the check needs.
#
# - Windows: the stub wraps mingw-w64's gcc, and bindgen reads mingw-w64's headers: the real Windows bindings.
# - macOS: the stub wraps the host's gcc. There is no macOS SDK, so bindgen (clang targeting x86_64-apple-darwin,
#   hence libuv's `__APPLE__` branches: uv/darwin.h and its struct fields) reads the host's glibc headers from
#   /usr/include, plus a few stub headers written below for the Mach headers uv/darwin.h includes. The
#   bindings therefore have every libuv name and darwin's private fields, but *Linux* layouts for the system
#   types (sockaddr_storage, pthread_mutex_t, termios, ...). That is fine for type-checking and only for it:
#   nothing built this way is linked or run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
# Skips the current target. Each target runs in its own subshell, so this ends that target only.
skip() {
    echo "cross-check ($TARGET): skipped: $*"
    exit 0
}

target_dir=${CARGO_TARGET_DIR:-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# --- shared parts --------------------------------------------------------------------------------------------

# Skips unless the rustup target $TARGET is installed.
need_rustup_target() {
    command -v rustup >/dev/null 2>&1 || skip "no rustup to tell whether the $TARGET target is installed"
    rustup target list --installed | grep -qx "$TARGET" ||
        skip "the rustup target $TARGET is not installed (rustup target add $TARGET)"
}

# Installs libclang (bindgen, through libuv-sys2, loads it at build time), clippy, and the given command's
# Debian package when the command is missing (`need_tools COMMAND PACKAGE`).
need_tools() {
    local need_apt=()
    command -v "$1" >/dev/null 2>&1 || need_apt+=("$2")
    if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
        need_apt+=(libclang-dev)
    fi
    if [ ${#need_apt[@]} -gt 0 ]; then
        command -v apt-get >/dev/null 2>&1 || skip "${need_apt[*]} missing and no apt-get to install them"
        step "installing ${need_apt[*]}"
        local sudo=sudo
        [ "$(id -u)" = 0 ] && sudo=""
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

# Writes $file from stdin, replacing it only when the content changed, so cargo sees the same compiler (and the
# same headers) and keeps libuv-sys2's build output between runs.
write_if_changed() {
    local file=$1
    cat >"$file.tmp"
    if cmp -s "$file.tmp" "$file"; then rm "$file.tmp"; else mv "$file.tmp" "$file"; fi
}

# Makes `cc` (libuv-sys2's build script) use a stub around the real compiler $1 for $TARGET: it compiles (-c)
# an empty translation unit instead of the source it is given; anything else (cc's compiler detection, `-E`,
# `--version`) goes to the real compiler.
use_stub_cc() {
    local real_cc=$1 stub_cc
    mkdir -p "$target_dir/cross-cc"
    stub_cc=$(cd "$target_dir/cross-cc" && pwd)/$TARGET-cc-check-only
    write_if_changed "$stub_cc" <<EOF
#!/usr/bin/env bash
out=""; compile=0; prev=""
for arg in "\$@"; do
    [ "\$prev" = -o ] && out=\$arg
    [ "\$arg" = -c ] && compile=1
    prev=\$arg
done
if [ \$compile = 1 ] && [ -n "\$out" ]; then
    exec $real_cc -x c -c -o "\$out" - </dev/null
fi
exec $real_cc "\$@"
EOF
    chmod +x "$stub_cc"
    export "CC_$TARGET_ENV=$stub_cc"
}

# Sets $resource_dir to clang's resource directory (its own stddef.h, x86intrin.h, ...). libclang finds it only
# next to a `clang` binary on PATH; without one, bindgen must be told.
find_clang_resource_dir() {
    if command -v clang >/dev/null 2>&1; then
        resource_dir=$(clang -print-resource-dir)
    else
        resource_dir=$(ls -d /usr/lib/llvm-*/lib/clang/*/ 2>/dev/null | sort -V | tail -n 1)
    fi
    [ -n "$resource_dir" ] || skip "no clang resource directory (install libclang-dev or clang)"
}

run_checks() {
    step "cargo check --target $TARGET --all-targets --features tokio-io"
    cargo check --target "$TARGET" --all-targets --features tokio-io

    step "cargo clippy --target $TARGET --all-targets --features tokio-io -- -D warnings"
    cargo clippy --target "$TARGET" --all-targets --features tokio-io -- -D warnings

    step "$TARGET cross-check green"
}

# --- the targets ---------------------------------------------------------------------------------------------

check_windows() {
    TARGET=x86_64-pc-windows-gnu
    TARGET_ENV=${TARGET//-/_}
    local mingw_cc=x86_64-w64-mingw32-gcc resource_dir
    need_rustup_target
    need_tools "$mingw_cc" gcc-mingw-w64-x86-64
    use_stub_cc "$mingw_cc"
    # mingw-w64's headers include compiler intrinsics headers (x86intrin.h) from clang's resource directory.
    find_clang_resource_dir
    export "BINDGEN_EXTRA_CLANG_ARGS_$TARGET_ENV=-resource-dir=$resource_dir"
    run_checks
}

check_macos() {
    TARGET=x86_64-apple-darwin
    TARGET_ENV=${TARGET//-/_}
    local host_cc=gcc resource_dir host_include=/usr/include multiarch stub_include header
    need_rustup_target
    need_tools "$host_cc" gcc
    # cc adds `-arch x86_64 -mmacosx-version-min=...` only to the `-c` calls, whose arguments the stub drops (its
    # other calls, compiler detection, carry none of them). cc asks `xcrun` for an SDK only for Apple targets
    # other than macOS or for an Xcode clang, so no SDKROOT is needed; but without a deployment target it would
    # ask xcrun for the SDK's version: naming one avoids that. The host's ar archives the stub's empty objects.
    use_stub_cc "$host_cc"
    export "AR_$TARGET_ENV=ar"
    export MACOSX_DEPLOYMENT_TARGET=${MACOSX_DEPLOYMENT_TARGET:-10.12}

    # The system headers: the host's glibc ones, for the POSIX headers uv/unix.h includes.
    [ -f "$host_include/stdio.h" ] || skip "no C library headers in $host_include (install libc6-dev)"
    multiarch=$($host_cc -print-multiarch 2>/dev/null || true)
    # The Mach headers uv/darwin.h includes under `__APPLE__`: only what libuv's headers use from them.
    mkdir -p "$target_dir/cross-cc/darwin-include/mach"
    stub_include=$(cd "$target_dir/cross-cc/darwin-include" && pwd)
    write_if_changed "$stub_include/mach/semaphore.h" <<'EOF'
/* Stub for cross-checking from Linux (ci/cross-check.sh): uv/darwin.h's UV_PLATFORM_SEM_T. */
typedef unsigned int semaphore_t;
EOF
    for header in mach/mach.h mach/task.h TargetConditionals.h; do
        write_if_changed "$stub_include/$header" <<<'/* Stub for cross-checking from Linux (ci/cross-check.sh). */'
    done

    find_clang_resource_dir
    local clang_args="-resource-dir=$resource_dir -isystem $stub_include"
    [ -n "$multiarch" ] && clang_args+=" -isystem $host_include/$multiarch"
    clang_args+=" -isystem $host_include"
    # clang predefines `__nonnull` (Apple's spelling of `_Nonnull`) for Darwin targets, which would hide glibc's
    # `__nonnull(params)` attribute macro.
    clang_args+=" -U__nonnull"
    export "BINDGEN_EXTRA_CLANG_ARGS_$TARGET_ENV=$clang_args"
    run_checks
}

# --- main ----------------------------------------------------------------------------------------------------
# ci/windows.sh sources this file for the shared parts above; only a direct run checks.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(windows macos)
for target in "${targets[@]}"; do
    case $target in
    windows | macos) ("check_$target") ;;
    *)
        echo "usage: ci/cross-check.sh [windows|macos]..." >&2
        exit 2
        ;;
    esac
done
