#!/usr/bin/env python3
"""UDP flooder for the guard benchmark: sends SIP REGISTER datagrams from SRC to DST at RATE
packets/s for SECONDS, paced in batches; prints the achieved rate as JSON.

    flood.py --src 127.0.0.9 --dst 127.0.0.1:15060 --rate 50000 --seconds 10
"""
import argparse
import json
import os
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", default="127.0.0.9")
    p.add_argument("--dst", required=True)
    p.add_argument("--rate", type=int, default=50000)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    host, port = a.dst.rsplit(":", 1)
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    me = "%s:%d" % s.getsockname()[:2]
    packets = []
    for i in range(256):
        packets.append((
            "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bKflood%d\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:%d@flood>;tag=%d\r\nTo: <sip:%d@flood>\r\n"
            "Call-ID: flood-%d\r\nCSeq: 1 REGISTER\r\nContact: <sip:%d@%s>\r\n"
            "Content-Length: 0\r\n\r\n" % (a.dst, me, i, i, i, i, i, i, me)).encode())
    dst = (host, int(port))
    batch = max(1, a.rate // 1000)  # one batch per millisecond
    sent = 0
    start = time.perf_counter()
    end = start + a.seconds
    next_at = start
    sendto = s.sendto
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now < next_at:
            time.sleep(min(next_at - now, 0.001))
            continue
        for k in range(batch):
            try:
                sendto(packets[(sent + k) & 255], dst)
            except OSError:
                pass
        sent += batch
        next_at += batch / a.rate
    elapsed = time.perf_counter() - start
    t = os.times()
    # The flooder's own CPU: on loopback it includes the kernel's receive path for every
    # datagram it sends (softirq in the sender's context), so also a kernel-side drop.
    print(json.dumps({"sent": sent, "seconds": round(elapsed, 3), "pps": round(sent / elapsed),
                      "cpu_user_s": round(t.user, 2), "cpu_sys_s": round(t.system, 2)}))


if __name__ == "__main__":
    main()
