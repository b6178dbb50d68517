#!/usr/bin/env bash
# Media relay benchmark: builds the pbx-media bench relay (release) and runs bench.py, which
# measures it side by side with the anchors' minimal C relay (and rtpengine when installed) the
# way ../shared/bench-anchors/tools/rtp_bench.py measures relays: relay pinned to SUT_CPU,
# rtpblast on GEN_CPU, CPU per packet from /proc, loss, added latency p50/p99.
#
#   bench/media/run.sh                          # default steps 1000..6000 streams (2 per call)
#   STEPS=2000,4000 RTP_SECONDS=10 bench/media/run.sh
#   RTPENGINE=1 bench/media/run.sh              # also the rtpengine anchor (apt: rtpengine-daemon)
#
# Knobs: see bench.py's docstring. OUT: results folder (default a temp dir).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
for b in taskset cc python3; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install util-linux gcc python3)" >&2; exit 1; }
done
echo "building the release bench relay (target $CARGO_TARGET_DIR)" >&2
(cd "$ROOT" && cargo build --release --quiet -p pbx-media --example relay_bench)
export RELAY_BIN="$CARGO_TARGET_DIR/release/examples/relay_bench"
ulimit -n 65536 2>/dev/null || true
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
exec python3 "$HERE/bench.py"
