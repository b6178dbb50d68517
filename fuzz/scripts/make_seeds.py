#!/usr/bin/env python3
"""Build the committed seed corpus under fuzz/corpus/ from the conformance material.

Usage (from the repo root):
    python3 fuzz/scripts/make_seeds.py [CONFORMANCE_DIR]

CONFORMANCE_DIR defaults to $CLOUDPBX_CONFORMANCE_DIR, then ../shared/conformance.
The RFC 4475 / RFC 5118 messages are copied byte for byte (never normalised); a few small
PROTOS c07-sip cases are filled in as the PROTOS README describes. Everything else is
derived from those messages (URIs, header values, SDP bodies, stream concatenations) plus a
handful of hand-written seeds. Re-running the script rewrites the same files.

The one-byte selectors written in front of `sip_headers` and `digest_auth` seeds must match
the tables in fuzz/fuzz_targets/sip_headers.rs and digest_auth.rs.
"""

import hashlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"

# Keep in sync with fuzz_targets/sip_headers.rs (index = selector byte % len).
HEADER_KINDS = [
    "via", "from", "to", "contact", "cseq", "call-id", "route", "record-route",
    "max-forwards", "expires", "content-length", "content-type", "path", "min-expires",
    "supported", "require", "allow", "session-expires", "min-se", "retry-after", "reason",
    "event", "subscription-state", "refer-to", "replaces",
]
COMPACT = {"v": "via", "f": "from", "t": "to", "m": "contact", "i": "call-id",
           "l": "content-length", "c": "content-type"}

# Keep in sync with fuzz_targets/digest_auth.rs: 0 = credentials, 1 = challenges.

# stream_framing seeds start with three parameter bytes (limits, chunk seed/side):
# generous limits (2 KiB head, 6 KiB message) and tight ones (296 / 1 KiB).
FRAMING_WIDE = b"\xff\xff\x2a"
FRAMING_TIGHT = b"\x21\x2a\xc3"


def conformance_dir() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    env = os.environ.get("CLOUDPBX_CONFORMANCE_DIR")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "conformance"


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def write_hashed(target: str, prefix: str, data: bytes) -> None:
    digest = hashlib.sha1(data).hexdigest()[:12]
    write(target, f"{prefix}-{digest}", data)


def fill_protos(template: bytes, case: int, invite: bool) -> bytes:
    subs = [
        (b"<To>", b"protos@127.0.0.1:5060"),
        (b"<From-Address>", b"192.0.2.7"),
        (b"<From-IP>", b"192.0.2.1"),
        (b"<From>", b"caller@192.0.2.7:5070"),
        (b"<Local-Port>", b"5070"),
        (b"<Branch-ID>", b"a1b2c3d4"),
        (b"<Call-ID>", b"c0ffee%d" % case),
        (b"<CSeq>", b"101"),
        (b"<Teardown-Method>", b"CANCEL"),
    ]
    out = template
    for token, value in subs:
        out = out.replace(token, value)
    if invite and b"<Content-Length>" in out:
        idx = out.find(b"\r\n\r\n")
        if idx < 0:
            length = 0
        else:
            # The placeholder is replaced before the body is counted; it sits in the head.
            length = len(out) - (idx + 4)
        out = out.replace(b"<Content-Length>", str(length).encode())
    return out


def split_protos(raw: bytes) -> tuple[bytes, bytes]:
    sp = raw.index(b" ")
    l1 = int(raw[:sp])
    invite = raw[sp + 1: sp + 1 + l1]
    rest = raw[sp + 1 + l1:]
    sp2 = rest.index(b" ")
    l2 = int(rest[:sp2])
    teardown = rest[sp2 + 1: sp2 + 1 + l2]
    return invite, teardown


def head_and_body(msg: bytes) -> tuple[bytes, bytes]:
    idx = msg.find(b"\r\n\r\n")
    if idx >= 0:
        return msg[:idx], msg[idx + 4:]
    idx = msg.find(b"\n\n")
    if idx >= 0:
        return msg[:idx], msg[idx + 2:]
    return msg, b""


def header_lines(head: bytes) -> list[tuple[str, bytes]]:
    """Unfolded (name, value) pairs of a header section (start line skipped)."""
    lines = re.split(rb"\r?\n", head)[1:]
    out: list[list] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and out:
            out[-1][1] += b" " + line.strip()
            continue
        if b":" not in line:
            continue
        name, value = line.split(b":", 1)
        out.append([name.strip().decode("latin-1").lower(), value.strip()])
    return [(n, v) for n, v in out]


def main() -> None:
    conf = conformance_dir()
    if not conf.is_dir():
        sys.exit(f"conformance directory not found: {conf}")

    messages: list[tuple[str, bytes]] = []
    for f in sorted((conf / "rfc4475").glob("*.dat")):
        messages.append((f"rfc4475-{f.stem}", f.read_bytes()))
    for f in sorted((conf / "rfc4475" / "variants").glob("*.dat")):
        messages.append((f"rfc4475-{f.stem}", f.read_bytes()))
    for f in sorted((conf / "rfc5118" / "wire").glob("*.sip")):
        messages.append((f"rfc5118-{f.stem}", f.read_bytes()))

    # PROTOS: per group, the first two cases whose INVITE is small.
    protos: list[tuple[str, bytes, bytes]] = []
    index = conf / "protos-c07-sip" / "index.tsv"
    per_group: dict[str, int] = {}
    for row in index.read_text().splitlines()[1:]:
        cols = row.split("\t")
        case, group, size = cols[0], cols[1], int(cols[2])
        if size > 1200 or per_group.get(group, 0) >= 2:
            continue
        per_group[group] = per_group.get(group, 0) + 1
        raw = (conf / "protos-c07-sip" / "cases" / case).read_bytes()
        inv, tear = split_protos(raw)
        n = int(case)
        protos.append((f"protos-{case}", fill_protos(inv, n, True), fill_protos(tear, n, False)))

    # sip_message: exact conformance bytes plus the filled-in PROTOS INVITEs.
    for name, data in messages:
        write("sip_message", name, data)
    for name, inv, _ in protos:
        write("sip_message", name, inv)

    # stream_framing: messages back to back, with keep-alives between some of them.
    for name, data in messages:
        write("stream_framing", name, FRAMING_WIDE + data)
    for name, inv, tear in protos[:40]:
        write("stream_framing", name + "-pair",
              FRAMING_WIDE + inv + b"\r\n\r\n" + tear + b"\r\n")
    for name, inv, tear in protos[40:60]:
        write("stream_framing", name + "-tight", FRAMING_TIGHT + inv + b"\r\n" + tear)
    write("stream_framing", "pings", FRAMING_WIDE + b"\r\n\r\n\r\n\r\n\r\n")
    write("stream_framing", "two-msgs",
          FRAMING_WIDE + dict(messages)["rfc4475-dblreq"] + dict(messages)["rfc5118-ipv6-good"])

    # sip_uri, sip_headers, digest_auth, sdp: derived from the message set.
    all_msgs = [d for _, d in messages] + [inv for _, inv, _ in protos]
    uris: set[bytes] = set()
    headers: set[bytes] = set()
    auth: set[bytes] = set()
    sdps: set[bytes] = set()
    for data in all_msgs:
        head, body = head_and_body(data)
        start = re.split(rb"\r?\n", head, maxsplit=1)[0]
        parts = start.split(b" ")
        if len(parts) >= 3 and not start.startswith(b"SIP/"):
            uris.add(parts[1])
        for name, value in header_lines(head):
            kind = COMPACT.get(name, name)
            for m in re.finditer(rb"<([^<>]*)>", value):
                if len(m.group(1)) < 300:
                    uris.add(m.group(1))
            if kind in HEADER_KINDS and len(value) < 600:
                headers.add(bytes([HEADER_KINDS.index(kind)]) + value)
            if kind in ("authorization", "proxy-authorization"):
                auth.add(bytes([0]) + value)
            if kind in ("www-authenticate", "proxy-authenticate"):
                auth.add(bytes([1]) + value)
        if b"application/sdp" in head.lower() and body:
            sdps.add(body)

    uris.update([
        b"sip:alice@example.com",
        b"sips:bob:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent",
        b"sip:%61lice@example.com;user=phone",
        b"tel:+1-201-555-0123;phone-context=example.com",
        b"tel:7042;phone-context=+1-201-555",
        b"sip:+4930123456@trunk.example.net;user=phone",
        b"sip:[::ffff:192.0.2.1]",
        b"urn:service:sos",
    ])
    for u in sorted(uris):
        write_hashed("sip_uri", "uri", u)
    for h in sorted(headers):
        write_hashed("sip_headers", "hdr", h)

    auth.update([
        b"\x00Digest username=\"1001\", realm=\"pbx.example.com\", nonce=\"b2f9e3a1\", "
        b"uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\", "
        b"algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc069c\"",
        b"\x00Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", "
        b"uri=\"sip:example.com\", response=\"" + b"0" * 64 + b"\", algorithm=SHA-256",
        b"\x01Digest realm=\"pbx.example.com\", nonce=\"b2f9e3a1\", algorithm=SHA-256, "
        b"qop=\"auth\", opaque=\"5ccc069c\", stale=true",
        b"\x01Digest realm=\"example.com\", nonce=\"xyz\", algorithm=MD5, qop=\"auth,auth-int\", "
        b"Digest realm=\"example.com\", nonce=\"xyz\", algorithm=SHA-256",
        b"\x01Basic realm=\"x\"",
    ])
    for a in sorted(auth):
        write_hashed("digest_auth", "auth", a)

    sdps.add(
        b"v=0\r\no=- 3914529180 3914529180 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
        b"t=0 0\r\nm=audio 40000 RTP/SAVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\n"
        b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n"
        b"m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        b"a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\na=inactive\r\n"
    )
    sdps.add(
        b"v=0\r\no=fax 1 1 IN IP6 2001:db8::5\r\ns=T.38\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n"
        b"m=image 5004 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n"
        b"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"
    )
    for s in sorted(sdps):
        write_hashed("sdp", "sdp", s)


if __name__ == "__main__":
    main()
