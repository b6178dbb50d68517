//! Admission of a new request: the validated RRQ/WRQ the driver hands to policy.
//!
//! [`Request::parse`] turns the datagram that arrived on the well-known port into a [`Request`]
//! (kind, sanitised path, mode, requested options) or a [`RequestError`] that carries the TFTP
//! error to answer with. Nothing is allocated for a transfer until the caller decides.

use thiserror::Error;

use super::packet::{ErrorCode, Packet, PacketError, RawRequest};

/// Longest file name accepted (bytes).
pub const MAX_PATH_LEN: usize = 255;

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// RRQ: the peer wants a file.
    Read,
    /// WRQ: the peer wants to upload.
    Write,
}

/// Transfer mode (RFC 1350 §1). "mail" is obsolete and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes as stored.
    Octet,
    /// NVT ASCII: LF → CR LF, CR → CR NUL on the wire.
    Netascii,
}

/// Options as the client asked for them, validated for range (RFC 2347/2348/2349/7440).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedOptions {
    /// `blksize`, 8..=65464.
    pub blksize: Option<u16>,
    /// `timeout` in seconds, 1..=255.
    pub timeout_secs: Option<u8>,
    /// `tsize` was present (its value in an RRQ is meant to be 0; any value is accepted).
    pub tsize: bool,
    /// `windowsize`, 1..=65535.
    pub windowsize: Option<u16>,
}

/// A validated request, ready for the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a request must be accepted (start a transfer) or refused (send its error)"]
pub struct Request {
    /// Read or write.
    pub kind: RequestKind,
    /// The sanitised, relative path (no leading `/`, no `.`/`..` components, no backslash).
    pub path: String,
    /// The mode.
    pub mode: Mode,
    /// The options asked for.
    pub options: RequestedOptions,
}

/// Why a request on the well-known port is refused; carries the error to answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a valid packet at all.
    #[error("malformed request: {0}")]
    Malformed(#[from] PacketError),
    /// A valid packet that is not RRQ/WRQ arrived on the request port.
    #[error("not a request")]
    NotARequest,
    /// Mode other than octet/netascii.
    #[error("unsupported mode")]
    UnsupportedMode,
    /// The path tries to leave the root or contains forbidden bytes.
    #[error("forbidden path")]
    ForbiddenPath,
}

impl RequestError {
    /// The TFTP error code to answer with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) | Self::NotARequest | Self::UnsupportedMode => {
                ErrorCode::IllegalOperation
            }
            Self::ForbiddenPath => ErrorCode::AccessViolation,
        }
    }

    /// The message to answer with.
    #[must_use]
    pub fn message(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed request",
            Self::NotARequest => "Illegal TFTP operation",
            Self::UnsupportedMode => "Unsupported mode",
            Self::ForbiddenPath => "Access violation",
        }
    }
}

impl Request {
    /// Parses and validates a datagram received on the request port.
    ///
    /// # Errors
    /// [`RequestError`]; answer it with [`RequestError::code`] and [`RequestError::message`].
    pub fn parse(bytes: &[u8]) -> Result<Self, RequestError> {
        let (kind, raw) = match Packet::parse(bytes)? {
            Packet::Rrq(raw) => (RequestKind::Read, raw),
            Packet::Wrq(raw) => (RequestKind::Write, raw),
            _ => return Err(RequestError::NotARequest),
        };
        Self::from_raw(kind, &raw)
    }

    fn from_raw(kind: RequestKind, raw: &RawRequest<'_>) -> Result<Self, RequestError> {
        let mode = if raw.mode.eq_ignore_ascii_case("octet") {
            Mode::Octet
        } else if raw.mode.eq_ignore_ascii_case("netascii") {
            Mode::Netascii
        } else {
            return Err(RequestError::UnsupportedMode);
        };
        let path = sanitize_path(raw.filename).ok_or(RequestError::ForbiddenPath)?;
        let mut options = RequestedOptions::default();
        for &(name, value) in &raw.options {
            // Unknown options and unusable values are ignored, not refused (RFC 2347 lets the
            // server omit any option from its OACK). Clients send odd values: atftp sends
            // `blksize disable`. The first usable occurrence of an option wins.
            let number = parse_number(value);
            if name.eq_ignore_ascii_case("blksize") && options.blksize.is_none() {
                options.blksize = number.filter(|&n| n >= 8).map(|n| clamp_u16(n, 65464));
            } else if name.eq_ignore_ascii_case("timeout") && options.timeout_secs.is_none() {
                options.timeout_secs = number
                    .filter(|n| (1..=255).contains(n))
                    .and_then(|n| u8::try_from(n).ok());
            } else if name.eq_ignore_ascii_case("tsize") && !options.tsize {
                options.tsize = number.is_some();
            } else if name.eq_ignore_ascii_case("windowsize") && options.windowsize.is_none() {
                options.windowsize = number.filter(|&n| n >= 1).map(|n| clamp_u16(n, 65535));
            }
        }
        Ok(Self {
            kind,
            path,
            mode,
            options,
        })
    }
}

/// Normalises a requested path to a relative one, or `None` when it is forbidden.
///
/// Leading `/` are removed (phones ask for `/000000000000.cfg`), empty and `.` components are
/// dropped. Refused: `..` components, backslashes (Windows-style traversal), NUL and other
/// control characters, drive prefixes such as `C:`, and names longer than [`MAX_PATH_LEN`].
#[must_use]
pub fn sanitize_path(raw: &str) -> Option<String> {
    if raw.len() > MAX_PATH_LEN || raw.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\') {
        return None;
    }
    let mut path = String::with_capacity(raw.len());
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            _ => {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(component);
            }
        }
    }
    let bytes = path.as_bytes();
    if path.is_empty() || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic()) {
        return None;
    }
    Some(path)
}

fn parse_number(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn clamp_u16(number: u64, max: u16) -> u16 {
    u16::try_from(number.min(u64::from(max))).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::packet::encode_request;

    fn rrq(path: &str, mode: &str, options: &[(&str, &str)]) -> Result<Request, RequestError> {
        let mut buf = Vec::new();
        encode_request(&mut buf, false, path, mode, options);
        Request::parse(&buf)
    }

    #[test]
    fn sanitises_paths() {
        assert_eq!(
            sanitize_path("/acme/0004f2.cfg").as_deref(),
            Some("acme/0004f2.cfg")
        );
        assert_eq!(sanitize_path("//a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(
            sanitize_path("acme@pbx.example/x.cfg").as_deref(),
            Some("acme@pbx.example/x.cfg")
        );
        for bad in [
            "../../etc/passwd",
            "a/../b",
            "..",
            "/",
            "",
            "a\\..\\b",
            "C:/boot.ini",
            "a\u{1}b",
        ] {
            assert_eq!(sanitize_path(bad), None, "{bad:?}");
        }
        assert_eq!(sanitize_path(&"a".repeat(MAX_PATH_LEN + 1)), None);
    }

    #[test]
    fn parses_modes_and_options() {
        let request = rrq(
            "/f.cfg",
            "NetASCII",
            &[
                ("BLKSIZE", "1428"),
                ("tsize", "0"),
                ("timeout", "3"),
                ("windowsize", "4"),
                ("x", "y"),
            ],
        )
        .unwrap();
        assert_eq!(request.kind, RequestKind::Read);
        assert_eq!(request.path, "f.cfg");
        assert_eq!(request.mode, Mode::Netascii);
        assert_eq!(
            request.options,
            RequestedOptions {
                blksize: Some(1428),
                timeout_secs: Some(3),
                tsize: true,
                windowsize: Some(4)
            }
        );
        assert_eq!(rrq("f", "mail", &[]), Err(RequestError::UnsupportedMode));
        assert_eq!(
            rrq("../x", "octet", &[]).unwrap_err().code(),
            ErrorCode::AccessViolation
        );
    }

    #[test]
    fn unusable_option_values_are_ignored_and_large_ones_clamped() {
        for (name, value) in [
            ("blksize", "7"),
            ("blksize", "disable"),
            ("timeout", "0"),
            ("timeout", "256"),
            ("windowsize", "0"),
            ("tsize", "-1"),
            ("tsize", "disable"),
            ("blksize", ""),
            ("blksize", "999999999999999999999999"),
        ] {
            let request = rrq("f", "octet", &[(name, value)]).unwrap();
            assert_eq!(
                request.options,
                RequestedOptions::default(),
                "{name}={value}"
            );
        }
        let request = rrq(
            "f",
            "octet",
            &[("blksize", "65465"), ("windowsize", "70000")],
        )
        .unwrap();
        assert_eq!(request.options.blksize, Some(65464));
        assert_eq!(request.options.windowsize, Some(65535));
        let request = rrq("f", "octet", &[("blksize", "x"), ("blksize", "600")]).unwrap();
        assert_eq!(request.options.blksize, Some(600));
    }

    #[test]
    fn non_requests_are_illegal_operations() {
        assert_eq!(
            Request::parse(b"\x00\x04\x00\x00"),
            Err(RequestError::NotARequest)
        );
        assert_eq!(
            Request::parse(b"\x00").unwrap_err().code(),
            ErrorCode::IllegalOperation
        );
    }
}
