//! Netascii translation for reads (RFC 1350 §1, RFC 764): LF → CR LF, CR → CR NUL.
//!
//! The server translates the whole file once when a netascii transfer starts, so the translated
//! length is exact and `tsize` (RFC 2349) reports it, which is what the client will receive.

/// Returns the netascii form of `content`.
#[must_use]
pub fn encode(content: &[u8]) -> Vec<u8> {
    let extra = content
        .iter()
        .filter(|&&b| b == b'\n' || b == b'\r')
        .count();
    let mut out = Vec::with_capacity(content.len() + extra);
    for &byte in content {
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            other => out.push(other),
        }
    }
    out
}

/// Length of the netascii form of `content` without building it.
#[must_use]
pub fn encoded_len(content: &[u8]) -> usize {
    content.len()
        + content
            .iter()
            .filter(|&&b| b == b'\n' || b == b'\r')
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_line_ends() {
        assert_eq!(encode(b"a\nb\rc\r\n"), b"a\r\nb\r\0c\r\0\r\n");
        assert_eq!(encoded_len(b"a\nb\rc\r\n"), 11);
        assert_eq!(encode(b""), b"");
    }
}
