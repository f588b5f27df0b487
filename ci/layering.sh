#!/usr/bin/env bash
# The layering rules of src/ (see the module docs of src/engine/mod.rs), checked with grep:
# 1. Only src/engine/ knows which engines exist: the public types (src/net/, src/fs/, src/io.rs, src/time.rs,
#    src/process.rs, src/signal.rs, src/server/, src/health.rs) never name an engine module, an engine variant
#    or the engine's internal dispatch types.
# 2. Those files carry no engine-specific `cfg(target_os = "linux")`: one may stand only on a Linux-only public
#    item (the next line that is not an attribute or a doc comment starts with `pub`).
# 3. src/engine/ never reaches into src/runtime/: the runtime hands each engine what it needs.
# 4. No file in src/ is over 700 lines.
set -euo pipefail
cd "$(dirname "$0")/.."

public=(src/net src/fs src/io.rs src/time.rs src/process.rs src/signal.rs src/server src/health.rs)
failed=0
fail() {
    echo "layering: $1"
    shift
    printf '  %s\n' "$@"
    failed=1
}

mapfile -t hits < <(git grep -nE 'engine::(epoll|io_uring|libuv)|StreamIo::|Backend::' -- "${public[@]}" || true)
[ ${#hits[@]} -eq 0 ] || fail "public types name an engine (rule 1):" "${hits[@]}"

mapfile -t hits < <(for f in $(git ls-files -- "${public[@]}" | grep '\.rs$'); do
    awk -v f="$f" '
        /cfg\(target_os = "linux"\)/ && !/^[[:space:]]*\/\// { pending = FNR; next }
        pending && /^[[:space:]]*(#\[|\/\/\/)/ { next }
        pending { if ($0 !~ /^[[:space:]]*pub[[:space:](]/) print f ":" pending; pending = 0 }
    ' "$f"
done)
[ ${#hits[@]} -eq 0 ] || fail "engine-specific cfg(target_os = \"linux\") in the public types (rule 2):" "${hits[@]}"

# (Comments may point at the runtime's docs; code may not use it.)
mapfile -t hits < <(git grep -nE 'runtime::|crate::runtime|Executor' -- src/engine | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
[ ${#hits[@]} -eq 0 ] || fail "src/engine/ reaches into the runtime (rule 3):" "${hits[@]}"

mapfile -t hits < <(git ls-files -- 'src/*.rs' | xargs wc -l | awk '$2 != "total" && $1 > 700 { print $2 ": " $1 " lines" }')
[ ${#hits[@]} -eq 0 ] || fail "files over 700 lines (rule 4):" "${hits[@]}"

[ $failed -eq 0 ] && echo "layering: ok"
exit $failed
