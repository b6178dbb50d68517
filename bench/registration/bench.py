#!/usr/bin/env python3
"""CloudPBX registration benchmark driver (stdlib only), measured like ../shared/bench-anchors:
server pinned to SUT_CPU, SIPp to GEN_CPU, CPU time of the server from /proc/<pid>/stat per
step, rate ramped x FACTOR until a step has a failed registration, then bisected REFINE times.

usage: bench.py <server_pid> <target host:port> <users.csv> <workdir>
       bench.py --storm <server_pid> <target host:port> <users.csv> <workdir> <rate>
Prints a JSON summary on stdout (last line) and a human table on stderr.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HZ = os.sysconf("SC_CLK_TCK")
ENV = os.environ.get
STEP_S = float(ENV("STEP_SECONDS", "10"))
START = int(ENV("START_RATE", "200"))
MAX = int(ENV("MAX_RATE", "20000"))
FACTOR = float(ENV("FACTOR", "1.5"))
REFINE = int(ENV("REFINE", "3"))
GEN_CPU = ENV("GEN_CPU", "0")
PIN = ENV("PIN", "1") == "1"
UAC_PORT = int(ENV("UAC_PORT", "15080"))
# The server's SIP port (from the target argument), whose socket drops each step reports.
_TARGET_ARG = 3 if sys.argv[1:2] == ["--storm"] else 2
SERVER_PORT = int(sys.argv[_TARGET_ARG].rsplit(":", 1)[1]) if len(sys.argv) > _TARGET_ARG else 0
BUDGET_S = float(ENV("BUDGET_SECONDS", "480"))
SETTLE_S = float(ENV("SETTLE_SECONDS", "35"))
OVERLOAD_S = float(ENV("OVERLOAD_SECONDS", "0"))
OVERLOAD_FACTOR = float(ENV("OVERLOAD_FACTOR", "2"))
RECOVER_S = float(ENV("RECOVER_SECONDS", "10"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_s(pid):
    """utime + stime of every thread of the process (seconds)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def thread_cpu_s(pid):
    """utime + stime per thread name (threads of one name summed), in seconds."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
            name = head.split("(", 1)[1]
            fields = rest.split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / HZ
        except (OSError, IndexError, ValueError):
            continue
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def udp_drops(port):
    """Datagrams the kernel dropped at the UDP socket(s) bound to local `port` (the `drops`
    column of /proc/net/udp and udp6: a full receive buffer), or None when none is bound."""
    total, found = 0, False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port:
                        total += int(cols[-1])
                        found = True
        except OSError:
            pass
    return total if found else None


def steady_rate(rows, col):
    """Registrations completed per second over the steady middle (20-80 %) of a SIPp run, from
    its per-second statistics rows (CurrentTime's epoch field, cumulative SuccessfulCall(C)):
    how the anchors' bench.py judges the achieved rate, leaving out SIPp's start-up burst and
    its drain. None with fewer than two rows in that window."""
    points = []
    for row in rows[1:]:
        try:
            t = float(row[col["CurrentTime"]].split("\t")[-1])
            points.append((t, int(row[col["SuccessfulCall(C)"]])))
        except (KeyError, IndexError, ValueError):
            continue
    if len(points) < 3:
        return None
    first, last = points[0][0], points[-1][0]
    lo, hi = first + 0.2 * (last - first), first + 0.8 * (last - first)
    window = [p for p in points if lo <= p[0] <= hi]
    if len(window) < 2 or window[-1][0] <= window[0][0]:
        return None
    return round((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]), 1)


def sipp(work, tag, scenario, inf, target, rate, calls):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    stf = os.path.join(d, "stat.csv")
    if os.path.exists(stf):
        os.unlink(stf)
    cmd = (["taskset", "-c", GEN_CPU] if PIN else []) + [
        "sipp", target, "-sf", os.path.join(HERE, scenario), "-inf", inf,
        "-i", "127.0.0.1", "-p", str(UAC_PORT), "-mp", str(UAC_PORT + 2),
        "-key", "contact_port", str(UAC_PORT),
        "-r", str(rate), "-m", str(calls), "-l", str(max(200, rate * 4)),
        "-recv_timeout", "5000", "-timeout", f"{int(calls / rate * 3 + 20)}s",
        "-trace_stat", "-stf", stf, "-fd", "1", "-trace_err", "-nostdin"]
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    # SIPp's own socket drops (answers lost at the generator, not the server), sampled while
    # it runs: the socket goes away with it.
    sipp_drops = 0
    deadline = t0 + int(calls / rate * 3 + 40)
    started = None  # when SIPp wrote its statistics header: its start-up is over
    while p.poll() is None:
        if time.time() > deadline:
            p.kill()
            p.wait()
            break
        if started is None and os.path.exists(stf):
            started = time.time()
        drops = udp_drops(UAC_PORT)
        if drops is not None:
            sipp_drops = max(sipp_drops, drops)
        time.sleep(0.25 if started else 0.02)
    end = time.time()
    wall = end - t0
    res = {"rate": rate, "calls": calls, "rc": p.returncode, "wall_s": round(wall, 2),
           "run_s": round(end - started, 2) if started else None,
           "sipp_socket_drops": sipp_drops, "cmd": " ".join(cmd)}
    with open(stf) as f:
        rows = [l.rstrip("\n").split(";") for l in f if l.strip()]
    hdr, last = rows[0], rows[-1]
    col = {h: i for i, h in enumerate(hdr)}

    def g(name):
        try:
            return last[col[name]]
        except (KeyError, IndexError):
            return None
    res["steady_rate"] = steady_rate(rows, col)
    res["ok"] = int(g("SuccessfulCall(C)") or 0)
    res["failed"] = int(g("FailedCall(C)") or 0)
    res["retrans"] = int(g("Retransmissions(C)") or 0)
    res["rtd_ms"] = g("ResponseTime1(C)")
    buckets = [(h, last[i]) for h, i in col.items() if h.startswith("ResponseTimeRepartition1_")]
    res["rtd_distribution"] = {h.split("_", 1)[1]: int(v) for h, v in buckets if v.isdigit()}
    return res


def step(pid, work, inf, target, rate, users, seconds=None, tag=None, calls=None):
    """One load step: `rate` x `seconds` registrations (the users cycle, as in the anchor's
    bench.py). Clean as the anchor judges it: 0 failed, and >= 95 % of the offered rate
    achieved; `strict` also asks for 0 retransmissions (the anchor's default criterion)."""
    seconds = STEP_S if seconds is None else seconds
    calls = calls or max(rate, int(rate * seconds))
    c0 = cpu_s(pid)
    t0 = thread_cpu_s(pid)
    d0 = udp_drops(SERVER_PORT) or 0
    r = sipp(work, tag or f"r{rate}", "reg_auth.xml", inf, target, rate, calls)
    r["sut_cpu_s"] = round(cpu_s(pid) - c0, 3)
    r["server_socket_drops"] = (udp_drops(SERVER_PORT) or 0) - d0
    t1 = thread_cpu_s(pid)
    r["threads_cpu_s"] = {name: round(t1[name] - t0.get(name, 0.0), 3) for name in t1
                          if t1[name] - t0.get(name, 0.0) > 0}
    r["cpu_us_per_reg"] = round(r["sut_cpu_s"] / r["ok"] * 1e6, 2) if r["ok"] else None
    # Over the steady middle of the run, as the anchors judge it (`steady_rate`); else from the
    # end of SIPp's start-up (its statistics header written) to its exit. The wall time also
    # holds the start-up and the drain (~0.25 s), which alone put 5 s steps whose
    # registrations were all answered at once under the 95 % mark.
    elapsed = r.get("run_s") or r["wall_s"]
    r["achieved"] = r.get("steady_rate") or (round(r["ok"] / elapsed, 1) if elapsed else 0)
    r["clean"] = (r["failed"] == 0 and r["rc"] == 0 and r["ok"] == calls
                  and r["achieved"] >= 0.95 * rate)
    r["strict"] = r["clean"] and r["retrans"] == 0
    log(f"  rate {rate:>6}/s calls {calls:>6} ok {r['ok']:>6} failed {r['failed']:>4} "
        f"retrans {r['retrans']:>5} achieved {r['achieved']:>8}/s cpu {r['sut_cpu_s']:.3f}s -> "
        f"{r['cpu_us_per_reg']} us/reg rtd {r['rtd_ms']} ms "
        f"drops sipp/server {r['sipp_socket_drops']}/{r['server_socket_drops']} "
        f"threads {' '.join(f'{k}={v:.2f}' for k, v in sorted(r['threads_cpu_s'].items(), key=lambda kv: -kv[1])[:4])} "
        f"{'STRICT' if r['strict'] else 'CLEAN' if r['clean'] else 'FAIL'}")
    return r


def overload_run(pid, work, inf, target, capacity, users):
    """Past saturation: OVERLOAD_FACTOR x the highest clean rate for OVERLOAD_SECONDS, then the
    clean rate again for RECOVER_SECONDS. Prints the successful rate under overload (should
    stay near capacity: shed early with 503, no retransmission collapse), the RSS peak, and
    whether the recovery step is clean again."""
    import threading
    rate = int(capacity * OVERLOAD_FACTOR)
    peak = [rss_kb(pid)]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.5)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    rss_before = rss_kb(pid)
    log(f"overload: {rate}/s ({OVERLOAD_FACTOR}x the clean {capacity}/s) for {OVERLOAD_S:.0f} s")
    over = step(pid, work, inf, target, rate, users, OVERLOAD_S, "overload")
    stop.set()
    t.join()
    time.sleep(2.0)
    log(f"recovery: {capacity}/s for {RECOVER_S:.0f} s")
    rec = step(pid, work, inf, target, capacity, users, RECOVER_S, "recover")
    res = {
        "offered_rate": rate,
        "capacity": capacity,
        "successful_rate": over["achieved"],
        "successful_fraction_of_capacity": round(over["achieved"] / capacity, 3),
        "failed": over["failed"],
        "retransmissions": over["retrans"],
        "rss_kb_before": rss_before,
        "rss_kb_peak": peak[0],
        "rss_kb_after_recovery": rss_kb(pid),
        "recovery_clean": rec["clean"],
        "recovery_retrans": rec["retrans"],
        "overload_step": over,
        "recovery_step": rec,
    }
    log(f"  overload: successful {over['achieved']}/s = "
        f"{res['successful_fraction_of_capacity'] * 100:.0f}% of capacity, failed {over['failed']} "
        f"(503-shed), retrans {over['retrans']}, RSS {rss_before} -> peak {peak[0]} kB; "
        f"recovery {'CLEAN' if rec['clean'] else 'NOT CLEAN'}")
    return res


def storm(pid, target, inf, work, rate):
    """Every user registers once at `rate` against a server that has just restarted (its
    bindings restored from the store): the re-registration storm after a restart."""
    users = sum(1 for _ in open(inf)) - 1
    rss0 = rss_kb(pid)
    log(f"storm: {users} phones re-register at {rate}/s after the restart")
    r = step(pid, work, inf, target, rate, users, users / rate, "storm", calls=users)
    res = {"users": users, "rate": rate, "ok": r["ok"], "failed": r["failed"],
           "retransmissions": r["retrans"], "cpu_us_per_reg": r["cpu_us_per_reg"],
           "rtd_ms": r["rtd_ms"], "rtd_distribution": r["rtd_distribution"],
           "wall_s": r["wall_s"], "rss_kb_before": rss0, "rss_kb_after": rss_kb(pid),
           "absorbed": r["ok"] == users and r["failed"] == 0}
    log(f"  storm: {r['ok']}/{users} registered, {r['failed']} failed, {r['retrans']} "
        f"retransmissions in {r['wall_s']} s -> {'ABSORBED' if res['absorbed'] else 'NOT ABSORBED'}")
    print(json.dumps(res))


def main():
    if sys.argv[1] == "--storm":
        storm(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        return
    pid, target, inf, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    users = sum(1 for _ in open(inf)) - 1
    t_start = time.time()
    rss0 = rss_kb(pid)
    log(f"server pid {pid}, RSS {rss0} kB before bindings; registering all {users} users")
    # Memory is read at the margin: the first half of the users registers, the server settles
    # (the warm-up's transactions, Timer J 32 s on UDP, and the store writer's queue are gone,
    # one-time costs such as statement caches and socket buffers are paid), then the second
    # half; the RSS growth between the two settled points is what bindings cost.
    with open(inf) as f:
        lines = f.readlines()
    head, rows = lines[:1], lines[1:]
    halves = []
    for i, part in enumerate((rows[: len(rows) // 2], rows[len(rows) // 2:])):
        path = os.path.join(work, f"users-half{i}.csv")
        with open(path, "w") as f:
            f.writelines(head + part)
        halves.append((path, len(part)))
    warm = {"ok": 0}
    second_ok = 0
    rss_half = rss1 = rss0
    for i, (path, n) in enumerate(halves):
        r = sipp(work, f"all{i}", "reg_auth.xml", path, target, min(1000, max(1, n)), n)
        warm["ok"] += r["ok"]
        time.sleep(1.0)
        rss1 = rss_kb(pid)
        log(f"  registered {r['ok']}/{n} (half {i + 1}), RSS {rss1} kB; settling {SETTLE_S:.0f} s")
        time.sleep(SETTLE_S)
        if i == 0:
            rss_half = rss_kb(pid)
            log(f"  settled: RSS {rss_half} kB")
        else:
            second_ok = r["ok"]
    rss_settled = rss_kb(pid)
    marginal = (rss_settled - rss_half) * 1024 / max(1, second_ok)
    log(f"  settled: RSS {rss_settled} kB; {(rss_settled - rss0) * 1024 / max(1, warm['ok']):.0f} "
        f"bytes per binding overall, {marginal:.0f} bytes per binding at the margin "
        f"(second half: {rss_settled - rss_half} kB for {second_ok} bindings)")
    steps, best, bad = [], None, None
    rate = START
    while rate <= MAX and time.time() - t_start < BUDGET_S:
        r = step(pid, work, inf, target, rate, users)
        steps.append(r)
        if r["clean"]:
            best = r
            rate = int(rate * FACTOR)
        else:
            bad = rate
            break
    lo = best["rate"] if best else 0
    for _ in range(REFINE if bad else 0):
        if time.time() - t_start >= BUDGET_S or bad - lo <= 50:
            break
        mid = (lo + bad) // 2
        r = step(pid, work, inf, target, mid, users)
        steps.append(r)
        if r["clean"]:
            best, lo = r, mid
        else:
            bad = mid
    overload = None
    if OVERLOAD_S > 0 and best:
        overload = overload_run(pid, work, inf, target, best["rate"], users)
    clean = [s for s in steps if s["clean"] and s["cpu_us_per_reg"]]
    summary = {
        "users": users,
        "highest_clean_rate": best["rate"] if best else None,
        "first_failing_rate": bad,
        "rtd_distribution_ms_at_best": best["rtd_distribution"] if best else None,
        "rtd_avg_ms_at_best": best["rtd_ms"] if best else None,
        "cpu_us_per_registration_median": sorted(s["cpu_us_per_reg"] for s in clean)[len(clean) // 2] if clean else None,
        "rss_kb_before": rss0,
        "rss_kb_after_all_bound": rss1,
        "rss_kb_per_10k_bindings": round((rss1 - rss0) * 10000 / max(1, warm["ok"])),
        "bound": warm["ok"],
        "rss_kb_settled": rss_settled,
        "rss_kb_per_10k_bindings_settled": round((rss_settled - rss0) * 10000 / max(1, warm["ok"])),
        "rss_kb_half_settled": rss_half,
        "bytes_per_binding_marginal": round(marginal),
        "overload": overload,
        "steps": steps,
    }
    log(json.dumps({k: v for k, v in summary.items() if k != "steps"}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
