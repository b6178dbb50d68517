#!/usr/bin/env bash
# Registration benchmark: `cloudpbx serve` (release) on loopback, USERS users provisioned in its
# store, SIPp REGISTER-with-digest (reg_auth.xml: REGISTER -> 401 -> REGISTER+digest -> 200) at
# increasing rates. Prints the highest rate with 0 failed registrations, the response-time
# distribution, the server's CPU time per authenticated registration (from /proc, server pinned
# to SUT_CPU, SIPp on GEN_CPU, as ../shared/bench-anchors measures Kamailio) and its resident
# memory per 10,000 bindings. KAMAILIO=1 also runs the anchor's Kamailio registrar test
# (TESTS=reg-sqlite) in the same run for the ratio.
#
# Memory per binding is read twice: right after all USERS registered, and SETTLE_SECONDS (35)
# later, when the registration transactions (Timer J, 32 s on UDP) and the store writer's queue
# are gone: the settled figure is the bindings' own cost.
# STORM=1 then restarts the server and lets every user register again at STORM_FACTOR (1) x
# the highest clean rate (the re-registration storm after a restart; prints ABSORBED when all
# succeed). OVERLOAD_SECONDS=30 adds the past-saturation run: OVERLOAD_FACTOR (2) x the highest clean rate
# for that long, then RECOVER_SECONDS (10) at the clean rate; it prints the successful rate under
# overload as a fraction of capacity, failures (requests shed with 503 + Retry-After),
# retransmissions, the RSS peak and whether the recovery step is clean.
#
# Knobs: USERS (10000), STEP_SECONDS (10), START_RATE (200), MAX_RATE (20000), FACTOR (1.5),
# REFINE (3), SUT_CPU (1), GEN_CPU (0), PIN (1), NICE (-15), BUDGET_SECONDS (480), KAMAILIO (0),
# SETTLE_SECONDS (35), OVERLOAD_SECONDS (0), OVERLOAD_FACTOR (2), RECOVER_SECONDS (10),
# CARGO_TARGET_DIR, OUT (results folder; default a temp dir), SIP_PORT (15060),
# BIN_DIR (use already built cloudpbx + provision binaries from this folder, skip the build),
# PERF (1: record a perf profile of the server during the rate steps into OUT/perf.data).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
USERS="${USERS:-10000}"
SIP_PORT="${SIP_PORT:-15060}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
cleanup() {
  bench_stop_server
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
if [ -n "${BIN_DIR:-}" ]; then
  BIN="$BIN_DIR/cloudpbx"; PROVISION="$BIN_DIR/provision"
else
  (cd "$ROOT" && bench_build -p cloudpbx && bench_build -p pbx-server --example provision)
  BIN="$CARGO_TARGET_DIR/release/cloudpbx"; PROVISION="$CARGO_TARGET_DIR/release/examples/provision"
fi

mkdir -p "$WORK/data"
"$PROVISION" "$WORK/data" "$USERS" "$WORK/users.csv" >&2
bench_write_config "$WORK/cloudpbx.toml" "$WORK/data" "$SIP_PORT" 'digest_algorithms = ["MD5"]' \
  '[registrar]' 'max_expiry_secs = 7200' 'default_expiry_secs = 3600'
bench_start_server "$BIN" "$WORK/cloudpbx.toml" "$WORK/serve.log"

PERF_PID=""
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  perf record -F 999 -g -p "$SERVER_PID" -o "$OUT/perf.data" >/dev/null 2>&1 &
  PERF_PID=$!
fi
GEN_CPU="$GEN_CPU" PIN="$PIN" nice -n "$NICE" python3 "$HERE/bench.py" "$SERVER_PID" \
  "127.0.0.1:$SIP_PORT" "$WORK/users.csv" "$WORK" > "$OUT/cloudpbx-registration.json"
if [ -n "$PERF_PID" ]; then
  kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true
  echo "profile: perf report -i $OUT/perf.data --no-children" >&2
fi
echo "results: $OUT/cloudpbx-registration.json" >&2

# STORM=1: restart the server (graceful stop; bindings persisted), then every user registers
# again at STORM_FACTOR (1) x the highest clean rate: the re-registration storm after a restart.
if [ "${STORM:-0}" = 1 ]; then
  CLEAN_RATE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["highest_clean_rate"] or 0)' "$OUT/cloudpbx-registration.json")
  STORM_RATE=$(python3 -c "print(max(100, int($CLEAN_RATE * ${STORM_FACTOR:-1})))")
  kill -TERM "$SERVER_PID"; for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  bench_start_server "$BIN" "$WORK/cloudpbx.toml" "$WORK/serve2.log"
  GEN_CPU="$GEN_CPU" PIN="$PIN" nice -n "$NICE" python3 "$HERE/bench.py" --storm "$SERVER_PID" \
    "127.0.0.1:$SIP_PORT" "$WORK/users.csv" "$WORK" "$STORM_RATE" > "$OUT/cloudpbx-storm.json"
  echo "storm results: $OUT/cloudpbx-storm.json" >&2
fi

if [ "${KAMAILIO:-0}" = 1 ]; then
  cleanup
  OUT="$OUT/anchor" TESTS=reg-sqlite USERS="$USERS" "$ROOT/../shared/bench-anchors/run.sh" sip
fi
