//! The kernel drop set: banned sources dropped by a classic BPF socket filter on every UDP
//! listener, before the datagram is queued to the socket.
//!
//! The userspace admission check ([`crate::SourceFilter`]) stays authoritative: a banned
//! datagram that reaches the receive loop is still dropped there. The kernel set is an
//! accelerator for floods: a datagram it drops never wakes the receive task, costs no
//! `recvfrom`, no copy and no lookup — the kernel's own cost of receiving it (checksum,
//! socket lookup, the filter) is all that is left, and it lands where the kernel receives
//! the packet (the NIC's softirq; on loopback, the sender's CPU).
//!
//! The program ([`program`]) checks the IP version of the network header (reached with the
//! `SKF_NET_OFF` offset, which works for IPv4 and IPv6 sockets alike, including IPv4-mapped
//! traffic), then compares the source address with each banned IPv4 address (2 instructions
//! each) or each banned IPv6 prefix (2–3 per 32-bit word of the prefix, plus one). Classic
//! BPF programs hold at most [`MAX_INSTRUCTIONS`]; entries beyond that are left to userspace.
//! Only forward jumps of at most a few instructions are used, except two `ja` to the blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(target_os = "linux")]
use socket2::SockFilter;

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `SKF_NET_OFF` (-0x100000): offsets from here address the network (IP) header.
const NET_OFF: u32 = 0xFFF0_0000;
/// Return value that keeps the whole datagram.
const ACCEPT: u32 = u32::MAX;
/// Return value that drops the datagram.
const DROP: u32 = 0;

/// One banned source: an address and the length of the prefix that is banned (32 for one
/// IPv4 address; 64 for an IPv6 /64; 1..=128 for IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DropEntry {
    /// The address (host bits beyond `prefix_len` are ignored).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl DropEntry {
    /// One IPv4 address.
    #[must_use]
    pub fn v4(addr: Ipv4Addr) -> Self {
        Self {
            addr: IpAddr::V4(addr),
            prefix_len: 32,
        }
    }

    /// An IPv6 prefix.
    #[must_use]
    pub fn v6(prefix: Ipv6Addr, prefix_len: u8) -> Self {
        Self {
            addr: IpAddr::V6(prefix),
            prefix_len,
        }
    }

    /// Instructions this entry takes in the program.
    fn cost(&self) -> usize {
        match self.addr {
            IpAddr::V4(_) => 2,
            IpAddr::V6(_) => {
                let len = usize::from(self.prefix_len.clamp(1, 128));
                let words = len.div_ceil(32);
                let partial = usize::from(len % 32 != 0);
                words * 2 + partial + 1
            }
        }
    }
}

/// One classic BPF instruction, independent of the platform's `sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
    Instruction { code, jt, jf, k }
}

/// A compiled drop set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The instructions.
    pub instructions: Vec<Instruction>,
    /// How many of the entries it drops (the first ones, in the order given).
    pub entries: usize,
}

/// Compile `entries` into a socket filter that drops datagrams from them and keeps every
/// other datagram. Entries are taken in order until the program would exceed
/// `max_instructions` (at most [`MAX_INSTRUCTIONS`]); the rest are left out (see
/// [`Program::entries`]). IPv6 prefix lengths are clamped to 1..=128; an IPv4 entry always
/// bans its one address.
#[must_use]
pub fn program(entries: &[DropEntry], max_instructions: usize) -> Program {
    const HEADER: usize = 7;
    let budget = max_instructions.min(MAX_INSTRUCTIONS);
    // Block sizes: the v4 block is `ld` + entries + `ret`, the v6 block entries + `ret`.
    let mut used = HEADER + 2 + 1;
    let mut taken: Vec<DropEntry> = Vec::new();
    for entry in entries {
        let cost = entry.cost();
        if used + cost > budget {
            break;
        }
        used += cost;
        taken.push(*entry);
    }
    let v4: Vec<Ipv4Addr> = taken
        .iter()
        .filter_map(|e| match e.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<(Ipv6Addr, u8)> = taken
        .iter()
        .filter_map(|e| match e.addr {
            IpAddr::V6(a) => Some((a, e.prefix_len.clamp(1, 128))),
            IpAddr::V4(_) => None,
        })
        .collect();

    let v4_len = 1 + 2 * v4.len() + 1;
    let v4_start = HEADER;
    let v6_start = v4_start + v4_len;
    let mut out = Vec::with_capacity(used);
    // Header: dispatch on the IP version nibble.
    out.push(insn(LD_B_ABS, 0, 0, NET_OFF));
    out.push(insn(ALU_AND_K, 0, 0, 0xF0));
    out.push(insn(JMP_JEQ_K, 0, 1, 0x40));
    out.push(insn(JMP_JA, 0, 0, jump_to(3, v4_start)));
    out.push(insn(JMP_JEQ_K, 0, 1, 0x60));
    out.push(insn(JMP_JA, 0, 0, jump_to(5, v6_start)));
    out.push(insn(RET_K, 0, 0, ACCEPT));
    // IPv4: the source address is at offset 12 of the header.
    out.push(insn(LD_W_ABS, 0, 0, NET_OFF + 12));
    for addr in &v4 {
        out.push(insn(JMP_JEQ_K, 0, 1, u32::from(*addr)));
        out.push(insn(RET_K, 0, 0, DROP));
    }
    out.push(insn(RET_K, 0, 0, ACCEPT));
    // IPv6: the source address is at offset 8, compared word by word under the prefix mask.
    for (prefix, prefix_len) in &v6 {
        let octets = prefix.octets();
        let len = u32::from(*prefix_len);
        let words = len.div_ceil(32);
        // Instructions of this entry after the current one, to skip to the next entry.
        let mut remaining = DropEntry::v6(*prefix, *prefix_len).cost();
        for word in 0..words {
            let at = (word * 4) as usize;
            let value =
                u32::from_be_bytes([octets[at], octets[at + 1], octets[at + 2], octets[at + 3]]);
            let bits = (len - word * 32).min(32);
            let mask = if bits == 32 {
                u32::MAX
            } else {
                u32::MAX << (32 - bits)
            };
            out.push(insn(LD_W_ABS, 0, 0, NET_OFF + 8 + word * 4));
            remaining -= 1;
            if mask != u32::MAX {
                out.push(insn(ALU_AND_K, 0, 0, mask));
                remaining -= 1;
            }
            remaining -= 1;
            // On a mismatch skip the rest of this entry (at most 8 instructions).
            let skip = u8::try_from(remaining).unwrap_or(u8::MAX);
            out.push(insn(JMP_JEQ_K, 0, skip, value & mask));
        }
        out.push(insn(RET_K, 0, 0, DROP));
    }
    out.push(insn(RET_K, 0, 0, ACCEPT));
    debug_assert_eq!(out.len(), used);
    Program {
        instructions: out,
        entries: taken.len(),
    }
}

/// The `ja` offset from the instruction at `from` to `to` (relative to the next one).
fn jump_to(from: usize, to: usize) -> u32 {
    u32::try_from(to.saturating_sub(from + 1)).unwrap_or(0)
}

/// Run `program` on a datagram whose IP header is `net_header` (tests and diagnostics: the
/// same semantics as the kernel for the instructions [`program`] emits). `true` = kept.
#[must_use]
pub fn evaluate(program: &Program, net_header: &[u8]) -> bool {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let load = |k: u32, size: usize| -> Option<u32> {
        let off = usize::try_from(k.checked_sub(NET_OFF)?).ok()?;
        let bytes = net_header.get(off..off + size)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    for _ in 0..=program.instructions.len() {
        let Some(i) = program.instructions.get(pc) else {
            return false;
        };
        pc += 1;
        match i.code {
            LD_B_ABS => match load(i.k, 1) {
                Some(v) => a = v,
                None => return false,
            },
            LD_W_ABS => match load(i.k, 4) {
                Some(v) => a = v,
                None => return false,
            },
            ALU_AND_K => a &= i.k,
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            RET_K => return i.k != DROP,
            _ => return false,
        }
    }
    false
}

/// The program as socket2 filter instructions.
#[cfg(target_os = "linux")]
pub(crate) fn to_sock_filter(program: &Program) -> Vec<SockFilter> {
    program
        .instructions
        .iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header(src: Ipv4Addr) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        h[12..16].copy_from_slice(&src.octets());
        h
    }

    fn v6_header(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[8..24].copy_from_slice(&src.octets());
        h
    }

    #[test]
    fn empty_set_keeps_everything() {
        let p = program(&[], MAX_INSTRUCTIONS);
        assert_eq!(p.entries, 0);
        assert!(evaluate(&p, &v4_header(Ipv4Addr::new(10, 0, 0, 1))));
        assert!(evaluate(&p, &v6_header(Ipv6Addr::LOCALHOST)));
        // Neither IPv4 nor IPv6 (cannot happen on an IP socket): kept.
        assert!(evaluate(&p, &[0u8; 40]));
    }

    #[test]
    fn drops_exactly_the_banned_ipv4_addresses() {
        let banned = [Ipv4Addr::new(127, 0, 0, 9), Ipv4Addr::new(192, 0, 2, 77)];
        let entries: Vec<_> = banned.iter().map(|a| DropEntry::v4(*a)).collect();
        let p = program(&entries, MAX_INSTRUCTIONS);
        assert_eq!(p.entries, 2);
        for a in banned {
            assert!(!evaluate(&p, &v4_header(a)), "{a} must be dropped");
        }
        for a in [
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(127, 0, 0, 8),
            Ipv4Addr::new(192, 0, 2, 78),
        ] {
            assert!(evaluate(&p, &v4_header(a)), "{a} must be kept");
        }
        // IPv6 traffic is untouched by IPv4 bans.
        assert!(evaluate(&p, &v6_header(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn drops_ipv6_prefixes_of_any_length() {
        let net: Ipv6Addr = "2001:db8:1:2::".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let odd: Ipv6Addr = "2001:db8:ff00::".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let host: Ipv6Addr = "2001:db8:9::5".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let entries = [
            DropEntry::v6(net, 64),
            DropEntry::v6(odd, 40),
            DropEntry::v6(host, 128),
            DropEntry::v4(Ipv4Addr::new(127, 0, 0, 9)),
        ];
        let p = program(&entries, MAX_INSTRUCTIONS);
        assert_eq!(p.entries, 4);
        let check = |s: &str, kept: bool| {
            let a: Ipv6Addr = s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
            assert_eq!(evaluate(&p, &v6_header(a)), kept, "{s}");
        };
        check("2001:db8:1:2::1", false);
        check("2001:db8:1:2:ffff:ffff:ffff:ffff", false);
        check("2001:db8:1:3::1", true);
        check("2001:db8:ff00::1", false);
        check("2001:db8:ffff::1", false); // inside /40: 2001:0db8:ff..
        check("2001:db8:fe00::1", true);
        check("2001:db8:9::5", false);
        check("2001:db8:9::6", true);
        check("::1", true);
        assert!(!evaluate(&p, &v4_header(Ipv4Addr::new(127, 0, 0, 9))));
        assert!(evaluate(&p, &v4_header(Ipv4Addr::new(127, 0, 0, 1))));
    }

    #[test]
    fn a_large_set_is_cut_at_the_instruction_limit() {
        let entries: Vec<DropEntry> = (0..5000u32)
            .map(|i| DropEntry::v4(Ipv4Addr::from(0x0A00_0000 + i)))
            .collect();
        let p = program(&entries, MAX_INSTRUCTIONS);
        assert!(p.instructions.len() <= MAX_INSTRUCTIONS);
        assert!(p.entries > 2000, "{}", p.entries);
        assert!(p.entries < 5000);
        // The first entries are in, the last ones are not.
        assert!(!evaluate(&p, &v4_header(Ipv4Addr::from(0x0A00_0000))));
        assert!(evaluate(&p, &v4_header(Ipv4Addr::from(0x0A00_0000 + 4999))));
        // A smaller budget takes fewer.
        let small = program(&entries, 100);
        assert!(small.instructions.len() <= 100);
        assert_eq!(small.entries, (100 - 10) / 2);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let mut entries: Vec<DropEntry> = (0..300u32)
            .map(|i| DropEntry::v4(Ipv4Addr::from(0x0A00_0000 + i)))
            .collect();
        for i in 0..300u16 {
            entries.push(DropEntry::v6(
                Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0),
                48 + (i % 80) as u8,
            ));
        }
        let p = program(&entries, MAX_INSTRUCTIONS);
        let n = p.instructions.len();
        assert_eq!(p.instructions.last().map(|i| i.code), Some(RET_K));
        for (pc, i) in p.instructions.iter().enumerate() {
            match i.code {
                JMP_JA => assert!(pc + 1 + (i.k as usize) < n),
                JMP_JEQ_K => {
                    assert!(pc + 1 + usize::from(i.jt) < n);
                    assert!(pc + 1 + usize::from(i.jf) < n);
                }
                _ => {}
            }
        }
    }
}
