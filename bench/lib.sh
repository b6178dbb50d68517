# Shared helpers for bench/*/run.sh (bash; `source "$ROOT/bench/lib.sh"`).
#
#   bench_build <cargo build args...>   release build into $CARGO_TARGET_DIR (quiet)
#   bench_start_server <bin> <config> <log> [env...]
#                                       starts `<bin> serve --config <config>` pinned to
#                                       $SUT_CPU (PIN=1) at nice $NICE, sets SERVER_PID, waits
#                                       (10 s) for "is running"; extra NAME=VALUE words go into
#                                       the server's environment
#   bench_stop_server                   SIGTERM, 10 s grace, then SIGKILL (idempotent)
#   bench_write_config <file> <data_dir> <sip_port> [sip_lines] [toml lines...]
#                                       writes a loopback cloudpbx.toml: SIP UDP+TCP on
#                                       <sip_port>, TLS on +1, HTTP on +20, TFTP on +21, log
#                                       filter "warn"; [sip_lines] go into [sip], further words
#                                       are appended one per line (own [tables])
#   bench_token                         prints a random bootstrap token ("bench-" + 48 hex)
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

bench_write_config() {
  local file="$1" data_dir="$2" port="$3" sip_lines="${4:-}"; shift 3; shift $(($# > 0))
  {
    cat <<TOML
data_dir = "$data_dir"
[sip]
udp_listen = ["127.0.0.1:$port"]
tcp_listen = ["127.0.0.1:$port"]
tls_listen = ["127.0.0.1:$((port + 1))"]
TOML
    [ -n "$sip_lines" ] && printf '%s\n' "$sip_lines"
    cat <<TOML
[http]
listen = "127.0.0.1:$((port + 20))"
[tftp]
listen = "127.0.0.1:$((port + 21))"
[log]
filter = "warn"
TOML
    [ $# -gt 0 ] && printf '%s\n' "$@"
    return 0
  } >"$file"
}

bench_token() {
  printf 'bench-%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
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
