# Shared helpers for bench/*/run.sh (bash; `source "$ROOT/bench/lib.sh"`).
#
#   bench_build <cargo build args...>   release build into $CARGO_TARGET_DIR (quiet)
#   bench_start_server <bin> <config> <log> [env...]
#                                       starts `<bin> serve --config <config>` pinned to
#                                       $SUT_CPU (PIN=1) at nice $NICE, sets SERVER_PID, waits
#                                       (10 s) for "is running"; extra NAME=VALUE words go into
#                                       the server's environment
#   bench_stop_server                   SIGTERM, 10 s grace, then SIGKILL (idempotent)
#   bench_gen_prefix                    prints the pinning prefix for a load generator
#                                       (taskset -c $GEN_CPU when PIN=1)
#   bench_cpu_s <pid>, bench_rss_kb <pid>
#                                       utime+stime in seconds, VmRSS in KiB (from /proc)
#
# Knobs (set before sourcing or in the environment): SUT_CPU (1), GEN_CPU (0), PIN (1),
# NICE (-15; without the privilege nice just warns and runs at 0).

SUT_CPU="${SUT_CPU:-1}"; GEN_CPU="${GEN_CPU:-0}"; PIN="${PIN:-1}"; NICE="${NICE:--15}"
SERVER_PID=""

bench_build() {
  echo "building release: cargo build --release $* (target ${CARGO_TARGET_DIR:-target})" >&2
  cargo build --release --quiet "$@"
}

bench_start_server() {
  local bin="$1" config="$2" log="$3"; shift 3
  local pin=(); [ "$PIN" = 1 ] && pin=(taskset -c "$SUT_CPU")
  env "$@" nice -n "$NICE" "${pin[@]}" "$bin" serve --config "$config" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "is running" "$log" 2>/dev/null && return 0; sleep 0.1; done
  cat "$log" >&2
  echo "server did not start within 10 s" >&2
  return 1
}

bench_stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

bench_gen_prefix() {
  [ "$PIN" = 1 ] && printf 'taskset -c %s' "$GEN_CPU"
  return 0
}

bench_cpu_s() {
  awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.2f\n", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

bench_rss_kb() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
