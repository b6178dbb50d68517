#!/bin/sh
# Provisioning boot storm through the whole server (TFTP listener, tenant/whitelist/MAC
# resolution, sealed-password opening, minijinja rendering, fetch log): 1,000 Yealink phones
# fetch their <mac>.cfg at once over loopback with blksize 1428. Prints the storm time and
# transfers/s (from the test's own timing) and the process's peak RSS.
#
# The TFTP engine alone (no rendering) is benchmarked by `cargo bench -p pbx-tftp --bench
# boot_storm`, which also reports memory per transfer; compare the two to see what the
# provisioning layer costs.
#
# Usage: bench/provisioning/run.sh [runs]   (release build; CARGO_TARGET_DIR is honoured)
set -eu
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
cargo test --release -p pbx-server --test main --no-run >/dev/null 2>&1 || cargo test --release -p pbx-server --test main --no-run
i=1
while [ "$i" -le "$RUNS" ]; do
    /usr/bin/time -f "peak RSS %M KiB, %e s wall, %U s user, %S s sys" \
        cargo test --release -q -p pbx-server --test main a_thousand_phone_boot_storm -- --nocapture 2>&1 \
        | grep -E "boot storm|peak RSS|test result"
    i=$((i + 1))
done
