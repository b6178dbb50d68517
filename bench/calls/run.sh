#!/usr/bin/env bash
# Call set-up benchmark: release `cloudpbx serve` pinned to SUT_CPU on loopback; a SIPp callee
# (bench/sipp-calls/uas_answer.xml) registered as user 10000 of the provisioned tenant; a SIPp
# caller (uac_bench.xml: INVITE -> 407 -> INVITE+digest -> 180 -> 200 (SDP, relay ports
# allocated) -> ACK -> HOLD_MS -> BYE) cycling through the other users at increasing rates
# (x FACTOR from START_RATE). Prints, per step, calls ok/failed, retransmissions and the server's
# CPU time per call (/proc, every thread of the server: SIP, relay, store writer); the result is
# the highest rate with 0 failed calls. KAMAILIO=1 then runs the anchor's call-auth test
# (../shared/bench-anchors, TESTS=call-auth) in the same run for the ratio.
#
# A warm-up of WARMUP_CALLS (default: one use of every relay port pair, RTP_PORTS / 4 + 100) at
# WARMUP_RATE (1000/s) runs first and is not measured: the relay binds a pair's sockets on its
# first use and keeps them, a one-time cost a running server has long paid.
#
# Knobs: USERS (200), STEP_SECONDS (5), START_RATE (50), FACTOR (2), MAX_RATE (5000),
# BUDGET_SECONDS (240), HOLD_MS (100), SUT_CPU (1), GEN_CPU (0), PIN (1), SIP_PORT (16060),
# UAS_PORT (16070), UAC_PORT (16080), RTP_PORTS (40000-49999), CARGO_TARGET_DIR, BIN_DIR, OUT.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NICE="${NICE:-0}" # this benchmark has always run the server at the default priority
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
USERS="${USERS:-200}"
SIP_PORT="${SIP_PORT:-16060}"; UAS_PORT="${UAS_PORT:-16070}"; export UAC_PORT="${UAC_PORT:-16080}"
RTP_PORTS="${RTP_PORTS:-40000-49999}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
WORK="$(mktemp -d)"
UAS_PID=""
cleanup() {
  if [ -n "$UAS_PID" ] && kill -0 "$UAS_PID" 2>/dev/null; then
    kill -TERM "$UAS_PID"; for _ in $(seq 50); do kill -0 "$UAS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$UAS_PID" 2>/dev/null || true
  fi
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
# Row 1 is the callee, the rest call it.
{ echo SEQUENTIAL; sed -n 2p "$WORK/users.csv"; } > "$WORK/callee.csv"
{ echo SEQUENTIAL; sed -n '3,$p' "$WORK/users.csv"; } > "$WORK/callers.csv"
CALLEE="$(sed -n 2p "$WORK/users.csv" | cut -d';' -f1)"
bench_write_config "$WORK/cloudpbx.toml" "$WORK/data" "$SIP_PORT" 'digest_algorithms = ["MD5"]' \
  '[rtp]' "port_min = ${RTP_PORTS%-*}" "port_max = ${RTP_PORTS#*-}" '[calls]' 'session_expires_secs = 0'
GENPIN=(); [ "$PIN" = 1 ] && GENPIN=(taskset -c "$GEN_CPU")
bench_start_server "$BIN" "$WORK/cloudpbx.toml" "$WORK/serve.log"

# Register the callee from its own port, then answer calls there.
(cd "$WORK" && sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/bench/registration/reg_auth.xml" -inf "$WORK/callee.csv" \
  -i 127.0.0.1 -p "$UAS_PORT" -key contact_port "$UAS_PORT" -m 1 -timeout 10s -nostdin -trace_err >/dev/null)
UAS_PID="$(cd "$WORK" && "${GENPIN[@]}" sipp -sf "$ROOT/bench/sipp-calls/uas_answer.xml" -i 127.0.0.1 -p "$UAS_PORT" \
  -key rtp_port 9 -mi 127.0.0.1 -mp 16090 -nostdin -trace_err -bg | sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' || true)"
# (sipp -bg exits non-zero after forking; the PID line is what counts)
[ -n "$UAS_PID" ] && kill -0 "$UAS_PID" || { echo "SIPp callee did not start" >&2; exit 1; }
sleep 0.5
RTP_PORTS="$RTP_PORTS" GEN_CPU="$GEN_CPU" PIN="$PIN" python3 "$HERE/bench.py" "$SERVER_PID" "127.0.0.1:$SIP_PORT" \
  "$WORK/callers.csv" "$CALLEE" "$WORK" > "$OUT/cloudpbx-calls.json"
echo "results: $OUT/cloudpbx-calls.json" >&2
python3 - "$OUT/cloudpbx-calls.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["best_clean"]
if b:
    print(f"cloudpbx: {b['rate']} calls/s with 0 failures ({b['ok']} calls, {b['retrans']} retransmissions), "
          f"{b['cpu_us_per_call']} us server CPU per call (407 + B2BUA + relay ports)")
else:
    print("cloudpbx: no clean step", r["steps"][:1])
PY
if [ "${KAMAILIO:-0}" = 1 ]; then
  cleanup; UAS_PID=""
  OUT="$OUT/anchor" TESTS=call-auth "$ROOT/../shared/bench-anchors/run.sh" sip
fi
