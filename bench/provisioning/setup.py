#!/usr/bin/env python3
"""Provisions the boot-storm tenant through the HTTP API (stdlib only, one keep-alive
connection): tenant `storm`, whitelist 127.0.0.1/32, PHONES users with one Yealink T54W desk
phone each, provisioning enabled per device (which re-keys and seals its SIP password).
Writes the phones file for tftp_storm: per phone its common file and its MAC file.

usage: setup.py <api host:port> <operator token> <phones> <phones file>
"""
import http.client
import json
import sys
import time


def main():
    api, token, phones, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    conn = http.client.HTTPConnection(api, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method, path, body=None, ok=(200, 201)):
        conn.request(method, "/api/v1" + path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status not in ok:
            sys.exit(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data) if data else None

    t0 = time.time()
    call("POST", "/tenants", {"name": "Storm B.V.", "slug": "storm", "sip_domain": "storm.pbx.test"})
    call("POST", "/tenants/storm/ip-whitelist", {"network": "127.0.0.1/32", "description": "bench"})
    lines = []
    for i in range(phones):
        ext = str(1000 + i)
        mac = f"001565{i:06x}"
        call("POST", "/tenants/storm/users", {"extension": ext, "display_name": f"Phone {ext}"})
        created = call("POST", "/tenants/storm/devices", {
            "user": ext, "kind": "desk_phone", "vendor": "yealink", "model": "T54W", "mac": mac})
        device = created["device"]["id"]
        view = call("POST", f"/tenants/storm/devices/{device}/provisioning")
        if view.get("state") != "ready":
            sys.exit(f"device {device} not ready: {view}")
        lines.append(f"storm/y000000000028.cfg storm/{mac}.cfg")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"provisioned {phones} phones through the API in {time.time() - t0:.1f} s "
          f"({3 * phones + 2} requests)", file=sys.stderr)


if __name__ == "__main__":
    main()
