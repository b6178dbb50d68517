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
    pub(crate) fn tag_for(&self, call_id: &[u8]) -> String {
        // FNV-1a, keyed with the seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for &b in call_id {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{:016x}", mix(hash))
    }
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
}
