#!/usr/bin/env bash
# Provisioning boot storm through the whole server: `cloudpbx serve` (release) on loopback,
# pinned to SUT_CPU; a tenant with PHONES (1,000) Yealink desk phones provisioned through the
# HTTP API (bench/provisioning/setup.py), 127.0.0.1 whitelisted; then RUNS (3) storms in which
# every phone fetches its common file and its MAC file at once (2 transfers per phone, blksize
# 1428), from the `tftp_storm` load generator (crates/pbx-tftp/examples/tftp_storm.rs) pinned
# to GEN_CPU. Each MAC file is a real fetch: tenant/whitelist/MAC resolution, tenant settings
# and sealed secret read from the store, password unsealed, minijinja rendering, fetch log.
#
# Prints per storm: transfers/s, storm wall time, p50/p99 per transfer, the server's CPU time
# per transfer (/proc/<pid>/stat, at the storm's end and 0.5 s later with the fetch-log
# writes), its RSS before and at peak (sampled every 2 ms) and the RSS growth divided by the
# most transfers in flight at once. JSON per storm in OUT/storms.json.
#
# Usage: bench/provisioning/run.sh
# Knobs: PHONES (1000), RUNS (3), PAUSE_MS (2000), BASE_PORT (16060), OUT (default a temp dir),
# BIN_DIR (use built cloudpbx + tftp_storm from there), CARGO_TARGET_DIR, and bench/lib.sh's
# SUT_CPU (1), GEN_CPU (0), PIN (1), NICE (-15).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
PHONES="${PHONES:-1000}"
BASE_PORT="${BASE_PORT:-16060}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'bench_stop_server; [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"' EXIT

if [ -n "${BIN_DIR:-}" ]; then
  BIN="$BIN_DIR/cloudpbx"; STORM="$BIN_DIR/tftp_storm"
else
  (cd "$ROOT" && bench_build -p cloudpbx && bench_build -p pbx-tftp --example tftp_storm)
  BIN="$CARGO_TARGET_DIR/release/cloudpbx"; STORM="$CARGO_TARGET_DIR/release/examples/tftp_storm"
fi

TOKEN="$(bench_token)"
mkdir -p "$WORK/data"
bench_write_config "$WORK/cloudpbx.toml" "$WORK/data" "$BASE_PORT" "" \
  '[provisioning]' 'https_listen = "off"' 'public_host = "127.0.0.1"'
bench_start_server "$BIN" "$WORK/cloudpbx.toml" "$WORK/serve.log" CLOUDPBX_BOOTSTRAP_TOKEN="$TOKEN"
echo "server pid $SERVER_PID on CPU $SUT_CPU, RSS $(bench_rss_kb "$SERVER_PID") KiB after start" >&2

python3 "$HERE/setup.py" "127.0.0.1:$((BASE_PORT + 20))" "$TOKEN" "$PHONES" "$WORK/phones.txt"
echo "RSS $(bench_rss_kb "$SERVER_PID") KiB, CPU $(bench_cpu_s "$SERVER_PID") s after provisioning" >&2
sleep 1
# shellcheck disable=SC2046
$(bench_gen_prefix) "$STORM" "127.0.0.1:$((BASE_PORT + 21))" "$WORK/phones.txt" "$SERVER_PID" \
  | tee "$OUT/storms.json"
echo "server log warnings/errors: $(grep -ciE 'warn|error' "$WORK/serve.log" || true)" >&2
echo "results: $OUT/storms.json" >&2
