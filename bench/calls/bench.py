#!/usr/bin/env python3
"""Call set-up benchmark driver (see run.sh): ramps the SIPp call rate against a running
cloudpbx and reports, per step, calls ok/failed, retransmissions and the server's CPU time per
successful call (from /proc, all threads: SIP driver, relay thread, store writer)."""
import json, os, signal, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def run_step(a, rate, calls=None, tag=None):
    d = os.path.join(a["work"], tag or f"r{rate}")
    os.makedirs(d, exist_ok=True)
    calls = calls or max(rate * a["step_s"], 10)
    stf = os.path.join(d, "stat.csv")
    pin = ["taskset", "-c", a["gen_cpu"]] if a["pin"] else []
    cmd = pin + ["sipp", a["target"], "-sf", os.path.join(HERE, "uac_bench.xml"),
                 "-inf", a["callers"], "-s", a["callee"], "-i", "127.0.0.1", "-p", a["uac_port"],
                 "-r", str(rate), "-m", str(calls), "-l", str(max(200, rate * 4)), "-d", a["hold_ms"],
                 "-recv_timeout", "8000", "-timeout", f"{int(calls / rate * 3 + 30)}s",
                 "-trace_stat", "-stf", stf, "-fd", "1", "-trace_err", "-nostdin",
                 # SIPp's digest uri defaults to the remote host; we hold clients to the
                 # Request-URI (RFC 3261 section 22.4): sip:<callee>@<domain>.
                 "-auth_uri", f"{a['callee']}@{a['domain']}"]
    cpu0 = cpu_s(a["pid"])
    t0 = time.time()
    p = subprocess.run(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=int(calls / rate * 3 + 60))
    wall = time.time() - t0
    cpu = cpu_s(a["pid"]) - cpu0
    res = {"rate": rate, "calls": calls, "rc": p.returncode, "wall_s": round(wall, 2),
           "server_cpu_s": round(cpu, 3)}
    try:
        rows = [l.rstrip("\n").split(";") for l in open(stf) if l.strip()]
        col = {h: i for i, h in enumerate(rows[0])}
        last = rows[-1]
        g = lambda n: int(last[col[n]])
        res.update(ok=g("SuccessfulCall(C)"), failed=g("FailedCall(C)"),
                   retrans=g("Retransmissions(C)"))
    except (OSError, KeyError, IndexError, ValueError) as e:
        res.update(ok=0, failed=calls, retrans=-1, error=str(e))
    res["cpu_us_per_call"] = round(cpu / res["ok"] * 1e6, 1) if res["ok"] else None
    res["clean"] = res["failed"] == 0 and res["ok"] == calls
    print(json.dumps(res), file=sys.stderr, flush=True)
    return res


def main():
    a = dict(pid=int(sys.argv[1]), target=sys.argv[2], callers=sys.argv[3], callee=sys.argv[4],
             work=sys.argv[5], step_s=int(os.environ.get("STEP_SECONDS", "5")),
             gen_cpu=os.environ.get("GEN_CPU", "0"), pin=os.environ.get("PIN", "1") == "1",
             uac_port=os.environ.get("UAC_PORT", "15180"), hold_ms=os.environ.get("HOLD_MS", "100"))
    with open(a["callers"]) as f:
        a["domain"] = [l for l in f.read().splitlines()[1:] if l.strip()][0].split(";")[1]
    rate = int(os.environ.get("START_RATE", "50"))
    factor = float(os.environ.get("FACTOR", "2"))
    max_rate = int(os.environ.get("MAX_RATE", "5000"))
    budget = float(os.environ.get("BUDGET_SECONDS", "240"))
    # Warm-up (not measured): the relay binds a port pair's sockets the first time the pair is
    # used and keeps them (pbx-media's pool hands pairs out oldest-freed first), so the first
    # (ports / 4) calls after a start also pay socket/bind/epoll registration, which a running
    # server has long done. WARMUP_CALLS (default: enough to use every pair of RTP_PORTS once)
    # at WARMUP_RATE (1000/s) puts the server in that state before the measured steps.
    low, _, high = os.environ.get("RTP_PORTS", "40000-49999").partition("-")
    warmup = int(os.environ.get("WARMUP_CALLS", str((int(high) - int(low) + 1) // 4 + 100)))
    warmup_rate = int(os.environ.get("WARMUP_RATE", "1000"))
    if warmup > 0:
        w = run_step(a, warmup_rate, calls=warmup, tag="warmup")
        print(f"warm-up: {w['ok']}/{warmup} calls at {warmup_rate}/s (not measured)",
              file=sys.stderr, flush=True)
        time.sleep(2)
    t0 = time.time()
    steps, best = [], None
    while rate <= max_rate and time.time() - t0 < budget:
        res = run_step(a, rate)
        steps.append(res)
        if not res["clean"]:
            break
        best = res
        rate = int(rate * factor)
    print(json.dumps({"steps": steps, "best_clean": best}, indent=1))


if __name__ == "__main__":
    main()
