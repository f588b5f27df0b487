#!/usr/bin/env bash
# Soak runs on every engine this machine supports (benches/soak.rs): connect/echo/close cycles, idle connections
# held beside tokio, and a mixed load; RSS and descriptors watched. Loopback only, bounded in count and time.
#
#   ci/soak.sh            in full: 100 000 cycles, 10 000 idle connections, 60 s of mixed load (about 5 minutes)
#   ci/soak.sh --quick    the short run ci/test.sh makes: 20 000 cycles, 2 000 idle connections, 8 s mixed
#   ci/soak.sh [--quick] cycles|idle|mixed ...   only those scenarios
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench soak -- "$@"
