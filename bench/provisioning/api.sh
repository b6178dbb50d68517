#!/usr/bin/env bash
# Provisioning through the management API alone (no TFTP storm): release `cloudpbx serve` on
# loopback pinned to SUT_CPU, then `setup.py` creates tenant `storm`, a whitelist entry and
# PHONES (1,000) users with one Yealink desk phone each, provisioning enabled per device —
# 3 × PHONES + 2 sequential HTTP requests on one keep-alive connection, each answered only
# once the change is live in the directory. Prints the wall time and the server's CPU time
# (utime + stime from /proc/<pid>/stat) for the whole run and per request.
#
# Usage: bench/provisioning/api.sh
# Knobs: PHONES (1000), BASE_PORT (16160), BIN_DIR (use the cloudpbx built there),
# CARGO_TARGET_DIR, and bench/lib.sh's SUT_CPU (1), GEN_CPU (0), PIN (1), NICE (-15).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
PHONES="${PHONES:-1000}"
BASE_PORT="${BASE_PORT:-16160}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d)"
trap 'bench_stop_server; rm -rf "$WORK"' EXIT

if [ -n "${BIN_DIR:-}" ]; then
  BIN="$BIN_DIR/cloudpbx"
else
  (cd "$ROOT" && bench_build -p cloudpbx)
  BIN="$CARGO_TARGET_DIR/release/cloudpbx"
fi

TOKEN="$(bench_token)"
mkdir -p "$WORK/data"
bench_write_config "$WORK/cloudpbx.toml" "$WORK/data" "$BASE_PORT" "" \
  '[provisioning]' 'https_listen = "off"' 'public_host = "127.0.0.1"'
bench_start_server "$BIN" "$WORK/cloudpbx.toml" "$WORK/serve.log" CLOUDPBX_BOOTSTRAP_TOKEN="$TOKEN"
sleep 1
cpu_before="$(bench_cpu_s "$SERVER_PID")"
started="$(date +%s.%N)"
# shellcheck disable=SC2046
$(bench_gen_prefix) python3 "$HERE/setup.py" "127.0.0.1:$((BASE_PORT + 20))" "$TOKEN" "$PHONES" "$WORK/phones.txt"
ended="$(date +%s.%N)"
cpu_after="$(bench_cpu_s "$SERVER_PID")"
awk -v phones="$PHONES" -v wall="$(echo "$ended - $started" | bc)" \
    -v cpu="$(echo "$cpu_after - $cpu_before" | bc)" -v rss="$(bench_rss_kb "$SERVER_PID")" 'BEGIN {
  requests = 3 * phones + 2
  printf "%d phones, %d requests: wall %.1f s, server CPU %.2f s (%.2f ms per request), RSS %d KiB\n",
    phones, requests, wall, cpu, cpu * 1000 / requests, rss
}'
echo "server log warnings/errors: $(grep -ciE 'warn|error' "$WORK/serve.log" || true)" >&2
