#!/usr/bin/env python3
"""Media relay benchmark: pbx-media against the anchors' minimal C relay (and rtpengine) in one run.

Measured exactly like ../shared/bench-anchors/tools/rtp_bench.py (whose functions this imports):
the relay under test is pinned to SUT_CPU, the anchors' rtpblast (pinned to GEN_CPU) sends
50 pps of 172-byte G.711-sized RTP per stream in both directions of every call (2 streams per
call) and measures loss and the relay's added latency from a send timestamp in the payload; the
relay's CPU time comes from /proc/PID/stat over the blast, divided by the packets received.

For each stream count in STEPS the relays run one after the other (interleaved, so that
background load hits them alike):
  epoll      anchors' tools/udprelay.c, 2 sockets per call + epoll + recvmmsg/sendmmsg
  pbx-media  crates/pbx-media/examples/relay_bench.rs: MediaRelay with NCALLS sessions,
             4 sockets per call (RTP + RTCP per side), latching + stats on every packet
and then, with RTPENGINE=1 (default when the binary exists), rtpengine userspace over its own
steps (rtp_bench.run_rtpengine). A step is clean with < 0.1 % loss and p99 <= LAT_P99_MAX_US.

Env: STEPS (streams, default 1000,2000,3000,4000,5000,6000), RTP_SECONDS (10), RELAYS
(epoll,pbx-media), RTPENGINE (auto), RTPENGINE_STEPS, THREADS (1), SUT_CPU (1), GEN_CPU (0),
PIN (1), NICE (-15), WAIT_IDLE_S (120), BG_LIMIT (0.15), LAT_P99_MAX_US (10000), OUT,
ANCHORS (../shared/bench-anchors), RELAY_BIN (the release relay_bench binary).
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ANCHORS = os.path.abspath(os.environ.get("ANCHORS", os.path.join(ROOT, "..", "shared", "bench-anchors")))
sys.path.insert(0, os.path.join(ANCHORS, "tools"))
import rtp_bench  # noqa: E402
from rtp_bench import blast_step, is_clean, summarize, A_PORT, B_PORT, RELAY_BASE  # noqa: E402
from bench import log, pin, stop_pid, wait_idle, raise_priority, WAIT_IDLE_S  # noqa: E402


def run_step(cmd, label, ncalls, seconds, blast, portsfile, gen_cpu):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"{label} did not start: {line}")
        time.sleep(0.5)
        step = blast_step(blast, portsfile, ncalls, seconds, gen_cpu, proc.pid, label)
    finally:
        stop_pid(proc, label, grace=5)
    tail = proc.stdout.read() if proc.stdout else ""
    if tail.strip():
        step["relay_report"] = tail.strip().splitlines()[-1]
    return step


def main():
    seconds = float(os.environ.get("RTP_SECONDS", 10))
    steps = [int(x) for x in os.environ.get("STEPS", "1000,2000,3000,4000,5000,6000").split(",") if x]
    relays = [r for r in os.environ.get("RELAYS", "epoll,pbx-media").split(",") if r]
    threads = os.environ.get("THREADS", "1")
    relay_bin = os.environ.get("RELAY_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "examples", "relay_bench")
    want_rtpengine = os.environ.get("RTPENGINE", "auto")
    if want_rtpengine == "auto":
        want_rtpengine = "1" if shutil.which("rtpengine") else "0"
    out_dir = os.environ.get("OUT") or tempfile.mkdtemp(prefix="media-bench.")
    pin_on = os.environ.get("PIN", "1") != "0" and (os.cpu_count() or 1) >= 2
    sut_cpu = int(os.environ.get("SUT_CPU", 1)) if pin_on else None
    gen_cpu = int(os.environ.get("GEN_CPU", 0)) if pin_on else None
    if max(steps) > 14000:
        raise SystemExit("at most 14000 streams")
    if "pbx-media" in relays and not os.path.exists(relay_bin):
        raise SystemExit(f"missing {relay_bin}: run bench/media/run.sh (it builds it)")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    raise_priority()
    work = tempfile.mkdtemp(prefix="media-bench-work.")
    blast = os.path.join(work, "rtpblast")
    udprelay = os.path.join(work, "udprelay")
    subprocess.run(["cc", "-O2", "-pthread", "-o", blast, os.path.join(ANCHORS, "tools", "rtpblast.c")], check=True)
    subprocess.run(["cc", "-O2", "-o", udprelay, os.path.join(ANCHORS, "tools", "udprelay.c")], check=True)
    portsfile = os.path.join(work, "ports.txt")

    results = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "sut_cpu": sut_cpu, "gen_cpu": gen_cpu,
                        "seconds_per_step": seconds, "threads": threads,
                        "packet": "172 B RTP (12 hdr + 160 PCMU), 50 pps per stream, 2 streams per call"},
               "cmd": {}}
    per_relay = {r: [] for r in relays}
    stopped = set()
    for streams in steps:
        ncalls = streams // 2
        for relay in relays:
            if relay in stopped:
                continue
            bg = wait_idle(WAIT_IDLE_S, f" before {relay} {streams} streams")
            if relay == "epoll":
                cmd = pin(sut_cpu) + [udprelay, "epoll", str(ncalls), str(RELAY_BASE), str(A_PORT), str(B_PORT),
                                      str(seconds + 15), portsfile]
            elif relay == "pbx-media":
                cmd = pin(sut_cpu) + [relay_bin, str(ncalls), str(RELAY_BASE), str(A_PORT), str(B_PORT),
                                      str(seconds + 15), portsfile, threads]
            else:
                raise SystemExit(f"unknown relay {relay}")
            results["cmd"][relay] = " ".join(os.path.basename(c) if c.startswith(work) else c for c in cmd)
            step = run_step(cmd, relay, ncalls, seconds, blast, portsfile, gen_cpu)
            step["bg_before"] = round(bg, 3)
            per_relay[relay].append(step)
            if step.get("loss_pct", 100) > 5 or step.get("lat_p99_us", 0) > 50 * rtp_bench.LAT_P99_MAX_US:
                log(f"  {relay}: loss above 5% or latency far out of bounds, stopping its ramp")
                stopped.add(relay)
    for relay, steps_done in per_relay.items():
        results[relay] = {"steps": steps_done, "summary": summarize(steps_done, relay)}

    if want_rtpengine == "1":
        class A:  # the attributes run_rtpengine reads
            pass
        a = A()
        a.seconds = seconds
        rsteps = [int(x) for x in os.environ.get("RTPENGINE_STEPS", "1000,2000,3000,4000").split(",") if x]
        wait_idle(WAIT_IDLE_S, " before rtpengine")
        try:
            results["rtpengine"] = rtp_bench.run_rtpengine(a, work, blast, rsteps, sut_cpu, gen_cpu)
        except Exception as e:  # noqa: BLE001 - an anchor failing must not lose our figures
            log(f"!! rtpengine failed: {e}")
            results["rtpengine"] = {"error": str(e)}

    log("\n| streams | relay | offered pps | loss % | p50 us <= | p99 us <= | relay CPU | us CPU/pkt | bg cores | clean |")
    log("|---|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for relay in list(per_relay) + (["rtpengine"] if "steps" in results.get("rtpengine", {}) else []):
        for s in results[relay]["steps"]:
            rows.setdefault(int(s.get("streams", 0)), []).append((relay, s))
    for streams in sorted(rows):
        for relay, s in rows[streams]:
            log(f"| {streams} | {relay} | {s.get('offered_pps', 0):,.0f} | {s.get('loss_pct')} | {s.get('lat_p50_us')} | "
                f"{s.get('lat_p99_us')} | {s['relay_cpu_util']} | {s['relay_us_per_pkt']} | {s['bg_cpu_cores']} | "
                f"{'yes' if is_clean(s) else 'no'} |")
    log("\n| relay | max clean streams | us CPU/pkt (median of loaded clean steps) | projected calls/core |")
    log("|---|---|---|---|")
    summaries = {}
    for relay in list(per_relay) + ["rtpengine"]:
        s = results.get(relay, {}).get("summary")
        if s:
            summaries[relay] = s
            p = s["projected_streams_per_core_at_100pct"]
            log(f"| {relay} | {s['max_streams_clean']} | {s['us_per_pkt']} | {p // 2 if p else '-'} |")
    ours = summaries.get("pbx-media")
    for anchor in ("epoll", "rtpengine"):
        if ours and anchor in summaries and summaries[anchor]["us_per_pkt"]:
            ratio = ours["us_per_pkt"] / summaries[anchor]["us_per_pkt"]
            log(f"pbx-media / {anchor} CPU per packet (clean-step medians): {ratio:.2f}x")
        # Side by side per stream count, clean or not (on a busy machine few steps are clean,
        # but both relays ran under the same conditions one after the other).
        ratios = []
        for streams in sorted(rows):
            by = {relay: s for relay, s in rows[streams]}
            if "pbx-media" in by and anchor in by and by[anchor]["relay_us_per_pkt"]:
                r = by["pbx-media"]["relay_us_per_pkt"] / by[anchor]["relay_us_per_pkt"]
                ratios.append(r)
                log(f"  {streams} streams: pbx-media {by['pbx-media']['relay_us_per_pkt']} us/pkt, "
                    f"{anchor} {by[anchor]['relay_us_per_pkt']} us/pkt -> {r:.2f}x")
        if ratios:
            ratios.sort()
            log(f"pbx-media / {anchor} CPU per packet, median over {len(ratios)} steps: {ratios[len(ratios) // 2]:.2f}x")
            results.setdefault("ratios", {})[anchor] = ratios
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(out_dir, f"media-{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)

    log(f"results: {path}")
    if os.environ.get("KEEP_WORK", "0") != "1":
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
