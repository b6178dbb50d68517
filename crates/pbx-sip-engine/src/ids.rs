//! Branch, tag and Call-ID generation from a caller-supplied seed.
//!
//! The engine reads no entropy source of its own (sans-IO): the driver passes a random seed to
//! `Endpoint::new`, and every identifier is that seed mixed with a counter through SplitMix64.
//! Identifiers are unique per endpoint and unpredictable to a peer that does not know the seed.

/// Generates transaction branches, dialog tags and Call-IDs.
#[derive(Debug, Clone)]
pub(crate) struct IdGenerator {
    state: u64,
}

impl IdGenerator {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64 (Steele, Lea, Flood 2014).
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A branch with the RFC 3261 magic cookie: `z9hG4bK` + 16 hex digits.
    pub(crate) fn branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next_u64())
    }

    /// A From/To tag: 16 hex digits (64 bits, RFC 3261 §19.3 asks for at least 32).
    pub(crate) fn tag(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A Call-ID: 32 hex digits, `@host` appended when given.
    pub(crate) fn call_id(&mut self, host: Option<&str>) -> String {
        let id = format!("{:016x}{:016x}", self.next_u64(), self.next_u64());
        match host {
            Some(host) => format!("{id}@{host}"),
            None => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_distinct_and_well_formed() {
        let mut ids = IdGenerator::new(42);
        let a = ids.branch();
        let b = ids.branch();
        assert_ne!(a, b);
        assert!(a.starts_with("z9hG4bK") && a.len() == 23);
        assert_eq!(ids.tag().len(), 16);
        assert!(ids.call_id(Some("pbx.example")).ends_with("@pbx.example"));
        let mut other = IdGenerator::new(43);
        assert_ne!(other.branch(), IdGenerator::new(42).branch());
    }
}
