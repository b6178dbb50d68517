//! Writing numbers and addresses into message buffers without the formatting machinery
//! (`to_string` allocates a `String` and `Ipv4Addr`'s `Display` goes through a padding-aware
//! slow path); every Via, URI and status line written passes here.

use std::net::Ipv4Addr;

use bytes::BufMut;

/// Appends `n` in decimal.
pub fn put_u64(out: &mut impl BufMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast keeps it.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// Appends `a` in dotted-quad form.
pub fn put_ipv4(out: &mut impl BufMut, a: Ipv4Addr) {
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b'.');
        }
        put_u64(out, u64::from(octet));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_match_display() {
        for n in [0u64, 7, 10, 99, 100, 5060, 65_535, u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for a in ["0.0.0.0", "127.0.0.1", "10.200.3.45", "255.255.255.255"] {
            let ip: Ipv4Addr = a.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let mut out = Vec::new();
            put_ipv4(&mut out, ip);
            assert_eq!(out, a.as_bytes());
        }
    }
}
