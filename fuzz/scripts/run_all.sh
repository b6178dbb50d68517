#!/usr/bin/env bash
# Runs every fuzz target in turn, one at a time (the build machine has 2 cores).
#
#   fuzz/scripts/run_all.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Seeds are read from fuzz/corpus/<target> (never written); what libFuzzer finds goes to
# $FUZZ_WORK/<target> (default /tmp/cloudpbx-fuzz), crashes to fuzz/artifacts/<target>/.
# One log per target in $FUZZ_WORK/<target>.log. While $FUZZ_WORK/PAUSE exists the script
# waits before starting the next target (e.g. to keep a benchmark run quiet).
# FUZZ_FEATURES overrides the crate features (default: all, i.e. sip,sdp,auth).
set -u
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(sip_message sip_headers sip_uri sdp digest_auth stream_framing)
work=${FUZZ_WORK:-/tmp/cloudpbx-fuzz}
feature_args=()
[ -n "${FUZZ_FEATURES:-}" ] && feature_args=(--no-default-features --features "$FUZZ_FEATURES")
mkdir -p "$work"
for t in "${targets[@]}"; do
  while [ -e "$work/PAUSE" ]; do sleep 5; done
  mkdir -p "$work/$t"
  echo "== $t start $(date -u +%FT%TZ) (HEAD $(git rev-parse --short HEAD))" | tee -a "$work/summary.txt"
  cargo fuzz run --sanitizer none "${feature_args[@]}" "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    > "$work/$t.log" 2>&1
  rc=$?
  echo "== $t end $(date -u +%FT%TZ) rc=$rc" | tee -a "$work/summary.txt"
  grep -aE 'DONE|stat::number_of_executed_units|stat::average_exec_per_sec|SUMMARY|panicked|Test unit written' \
    "$work/$t.log" | tee -a "$work/summary.txt"
done
