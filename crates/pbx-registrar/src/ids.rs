//! Identifiers for the messages the registrar builds (branches, tags, Call-IDs, nonce salts)
//! from a caller-supplied seed: this crate has no random source.

/// A counter-based generator (SplitMix64). Values are unique per seed; unpredictability
/// comes from the seed, which the caller draws from a real random source at start-up.
#[derive(Debug, Clone)]
pub(crate) struct IdGenerator {
    seed: u64,
    counter: u64,
}

impl IdGenerator {
    pub(crate) fn new(seed: u64) -> IdGenerator {
        IdGenerator { seed, counter: 0 }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        mix(self.seed ^ self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub(crate) fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A stable tag for a REGISTER's Call-ID, so retransmitted or retried requests (and the
    /// answers for known and unknown users) carry the same To tag.
    /// Sixteen lowercase hex digits, written without the formatter (one per REGISTER).
    pub(crate) fn tag_for(&self, call_id: &[u8]) -> [u8; 16] {
        // FNV-1a, keyed with the seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for &b in call_id {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hex16(mix(hash))
    }
}

/// `value` as 16 lowercase hex digits (`{:016x}`).
fn hex16(value: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (index, digit) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * index;
        *digit = DIGITS[usize::try_from((value >> shift) & 0xf).unwrap_or(0)];
    }
    out
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_and_tags_are_stable() {
        let mut ids = IdGenerator::new(42);
        let a = ids.hex();
        let b = ids.hex();
        assert_ne!(a, b);
        assert_eq!(ids.tag_for(b"abc"), ids.tag_for(b"abc"));
        assert_ne!(ids.tag_for(b"abc"), ids.tag_for(b"abd"));
        assert_ne!(IdGenerator::new(1).tag_for(b"abc"), ids.tag_for(b"abc"));
    }

    #[test]
    fn hex16_is_the_formatter_s_lowercase_hex() {
        for value in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            assert_eq!(hex16(value).as_slice(), format!("{value:016x}").as_bytes());
        }
    }
}
