//! Size limits that bound the memory one message can take.

/// Hard caps applied by [`crate::Message::parse_with`] and the stream framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line, headers and body), in octets.
    pub max_message_size: usize,
    /// Largest header section (start line to the empty line), in octets.
    pub max_header_block: usize,
    /// Most header fields (lines, not comma-separated values).
    pub max_headers: usize,
    /// Longest single header field including folded continuation lines, in octets.
    pub max_header_line: usize,
    /// Largest body, in octets.
    pub max_body_size: usize,
}

impl Limits {
    /// Defaults: 64 KiB messages, 16 KiB header section, 128 header fields, 8 KiB per field,
    /// 64 KiB body. Generous for real phones and trunks, small enough for a flood.
    pub const DEFAULT: Limits = Limits {
        max_message_size: 64 * 1024,
        max_header_block: 16 * 1024,
        max_headers: 128,
        max_header_line: 8 * 1024,
        max_body_size: 64 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
