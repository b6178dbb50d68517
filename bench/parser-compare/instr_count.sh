#!/bin/sh
# Instructions per operation (valgrind callgrind), load-independent: for each message,
# parser and operation, (Ir(N+1 iterations) - Ir(1 iteration)) / N.
# Usage: ./instr_count.sh [N] [typed|owned|print|all]   (build first: cargo build --release --bins)
# `owned`: pbx-sip through its owned accessors, against rsipstack's (only) typed access.
set -eu
N=${1:-10000}
OPS=${2:-all}
[ "$OPS" = all ] && OPS="typed owned print"
BIN=${CARGO_TARGET_DIR:-target}/release/instr_loop
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$@" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
echo "| message | operation | pbx-sip (instr/op) | rsipstack (instr/op) | rsipstack / pbx-sip |"
echo "|---|---|---|---|---|"
for msg in register invite600 ok200; do
    for op in $OPS; do
        p1=$(ir pbx "$msg" "$op" 1); pn=$(ir pbx "$msg" "$op" $((N + 1)))
        rop=$op; [ "$op" = owned ] && rop=typed
        r1=$(ir rsip "$msg" "$rop" 1); rn=$(ir rsip "$msg" "$rop" $((N + 1)))
        awk -v m="$msg" -v o="$op" -v p1="$p1" -v pn="$pn" -v r1="$r1" -v rn="$rn" -v n="$N" \
            'BEGIN { p = (pn - p1) / n; r = (rn - r1) / n;
                     printf "| %s | %s | %.0f | %.0f | %.2f× |\n", m, o, p, r, r / p }'
    done
done
