//! The TFTP packet codec (RFC 1350 §5, RFC 2347 OACK).
//!
//! [`Packet::parse`] is strict and never panics: every length is checked before it is read, text
//! fields must be NUL-terminated, and trailing bytes after a packet's last field are an error.
//! The `encode_*` functions append to a caller-owned buffer so a driver can reuse one buffer per
//! transfer.

use thiserror::Error;

/// Opcode of a read request.
pub const OP_RRQ: u16 = 1;
/// Opcode of a write request.
pub const OP_WRQ: u16 = 2;
/// Opcode of a data block.
pub const OP_DATA: u16 = 3;
/// Opcode of an acknowledgement.
pub const OP_ACK: u16 = 4;
/// Opcode of an error.
pub const OP_ERROR: u16 = 5;
/// Opcode of an option acknowledgement (RFC 2347).
pub const OP_OACK: u16 = 6;

/// Most options a request or OACK may carry; more is treated as malformed (bounded work).
pub const MAX_OPTIONS: usize = 16;

/// The TFTP error codes (RFC 1350 appendix, RFC 2347 code 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    Undefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused (RFC 2347).
    OptionRefused,
    /// Any other code a peer sent.
    Other(u16),
}

impl ErrorCode {
    /// The code as sent on the wire.
    #[must_use]
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Undefined => 0,
            Self::FileNotFound => 1,
            Self::AccessViolation => 2,
            Self::DiskFull => 3,
            Self::IllegalOperation => 4,
            Self::UnknownTransferId => 5,
            Self::FileExists => 6,
            Self::NoSuchUser => 7,
            Self::OptionRefused => 8,
            Self::Other(code) => code,
        }
    }

    /// The code for a wire value.
    #[must_use]
    pub fn from_u16(code: u16) -> Self {
        match code {
            0 => Self::Undefined,
            1 => Self::FileNotFound,
            2 => Self::AccessViolation,
            3 => Self::DiskFull,
            4 => Self::IllegalOperation,
            5 => Self::UnknownTransferId,
            6 => Self::FileExists,
            7 => Self::NoSuchUser,
            8 => Self::OptionRefused,
            other => Self::Other(other),
        }
    }
}

/// Why a datagram is not a valid TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than its opcode and fixed fields.
    #[error("packet truncated")]
    Truncated,
    /// The opcode is not 1..=6.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A text field has no terminating NUL.
    #[error("unterminated string field")]
    Unterminated,
    /// A text field (file name, mode, option) is not UTF-8.
    #[error("text field is not UTF-8")]
    NotUtf8,
    /// The file name is empty.
    #[error("empty file name")]
    EmptyFilename,
    /// An option name has no value, or the option list is too long.
    #[error("malformed option list")]
    MalformedOptions,
    /// Bytes follow the last field.
    #[error("trailing bytes after packet")]
    TrailingBytes,
    /// DATA carries more than the largest block size (65464).
    #[error("data block too large")]
    DataTooLarge,
}

/// A read or write request as it appeared on the wire (see [`crate::proto::Request`] for the
/// validated form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest<'a> {
    /// The file name, unsanitised.
    pub filename: &'a str,
    /// The transfer mode as sent (case preserved).
    pub mode: &'a str,
    /// Option name/value pairs in request order.
    pub options: Vec<(&'a str, &'a str)>,
}

/// One parsed TFTP packet borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq(RawRequest<'a>),
    /// Write request.
    Wrq(RawRequest<'a>),
    /// A data block.
    Data {
        /// Block number (wraps at 65535).
        block: u16,
        /// Payload, 0..=blksize bytes.
        data: &'a [u8],
    },
    /// An acknowledgement.
    Ack {
        /// Block number acknowledged.
        block: u16,
    },
    /// An error; ends the transfer.
    Error {
        /// Error code.
        code: ErrorCode,
        /// Message bytes without the NUL (peers are not bound to UTF-8 here).
        message: &'a [u8],
    },
    /// Option acknowledgement.
    Oack {
        /// Accepted options in order.
        options: Vec<(&'a str, &'a str)>,
    },
}

impl<'a> Packet<'a> {
    /// Parses one datagram.
    ///
    /// # Errors
    /// [`PacketError`] naming the first defect found.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PacketError> {
        let (opcode, rest) = split_u16(bytes)?;
        match opcode {
            OP_RRQ => Ok(Self::Rrq(parse_request(rest)?)),
            OP_WRQ => Ok(Self::Wrq(parse_request(rest)?)),
            OP_DATA => {
                let (block, data) = split_u16(rest)?;
                if data.len() > 65464 {
                    return Err(PacketError::DataTooLarge);
                }
                Ok(Self::Data { block, data })
            }
            OP_ACK => {
                let (block, rest) = split_u16(rest)?;
                if !rest.is_empty() {
                    return Err(PacketError::TrailingBytes);
                }
                Ok(Self::Ack { block })
            }
            OP_ERROR => {
                let (code, rest) = split_u16(rest)?;
                let (message, rest) = split_cstr(rest)?;
                if !rest.is_empty() {
                    return Err(PacketError::TrailingBytes);
                }
                Ok(Self::Error {
                    code: ErrorCode::from_u16(code),
                    message,
                })
            }
            OP_OACK => Ok(Self::Oack {
                options: parse_options(rest)?,
            }),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }
}

/// Appends a DATA packet.
pub fn encode_data(buf: &mut Vec<u8>, block: u16, data: &[u8]) {
    buf.extend_from_slice(&OP_DATA.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
    buf.extend_from_slice(data);
}

/// Appends an ACK packet.
pub fn encode_ack(buf: &mut Vec<u8>, block: u16) {
    buf.extend_from_slice(&OP_ACK.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
}

/// Appends an ERROR packet. NUL bytes in `message` are dropped so the packet stays well formed.
pub fn encode_error(buf: &mut Vec<u8>, code: ErrorCode, message: &str) {
    buf.extend_from_slice(&OP_ERROR.to_be_bytes());
    buf.extend_from_slice(&code.to_u16().to_be_bytes());
    buf.extend(message.bytes().filter(|&b| b != 0));
    buf.push(0);
}

/// Appends an OACK packet.
pub fn encode_oack<N: AsRef<str>, V: AsRef<str>>(buf: &mut Vec<u8>, options: &[(N, V)]) {
    buf.extend_from_slice(&OP_OACK.to_be_bytes());
    push_options(buf, options);
}

/// Appends an RRQ (`write == false`) or WRQ; used by clients and tests.
pub fn encode_request<N: AsRef<str>, V: AsRef<str>>(
    buf: &mut Vec<u8>,
    write: bool,
    filename: &str,
    mode: &str,
    options: &[(N, V)],
) {
    let opcode = if write { OP_WRQ } else { OP_RRQ };
    buf.extend_from_slice(&opcode.to_be_bytes());
    push_cstr(buf, filename);
    push_cstr(buf, mode);
    push_options(buf, options);
}

fn push_options<N: AsRef<str>, V: AsRef<str>>(buf: &mut Vec<u8>, options: &[(N, V)]) {
    for (name, value) in options {
        push_cstr(buf, name.as_ref());
        push_cstr(buf, value.as_ref());
    }
}

fn push_cstr(buf: &mut Vec<u8>, text: &str) {
    buf.extend(text.bytes().filter(|&b| b != 0));
    buf.push(0);
}

fn split_u16(bytes: &[u8]) -> Result<(u16, &[u8]), PacketError> {
    match bytes {
        [high, low, rest @ ..] => Ok((u16::from_be_bytes([*high, *low]), rest)),
        _ => Err(PacketError::Truncated),
    }
}

fn split_cstr(bytes: &[u8]) -> Result<(&[u8], &[u8]), PacketError> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or(PacketError::Unterminated)?;
    Ok((&bytes[..end], &bytes[end + 1..]))
}

fn split_str(bytes: &[u8]) -> Result<(&str, &[u8]), PacketError> {
    let (text, rest) = split_cstr(bytes)?;
    let text = std::str::from_utf8(text).map_err(|_| PacketError::NotUtf8)?;
    Ok((text, rest))
}

fn parse_request(bytes: &[u8]) -> Result<RawRequest<'_>, PacketError> {
    let (filename, rest) = split_str(bytes)?;
    if filename.is_empty() {
        return Err(PacketError::EmptyFilename);
    }
    let (mode, rest) = split_str(rest)?;
    Ok(RawRequest {
        filename,
        mode,
        options: parse_options(rest)?,
    })
}

fn parse_options(mut bytes: &[u8]) -> Result<Vec<(&str, &str)>, PacketError> {
    let mut options = Vec::new();
    while !bytes.is_empty() {
        if options.len() == MAX_OPTIONS {
            return Err(PacketError::MalformedOptions);
        }
        let (name, rest) = split_str(bytes)?;
        let (value, rest) = split_str(rest).map_err(|error| match error {
            PacketError::Unterminated => PacketError::MalformedOptions,
            other => other,
        })?;
        if name.is_empty() {
            return Err(PacketError::MalformedOptions);
        }
        options.push((name, value));
        bytes = rest;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let mut buf = Vec::new();
        encode_request(
            &mut buf,
            false,
            "a/b.cfg",
            "octet",
            &[("blksize", "1428"), ("tsize", "0")],
        );
        let Packet::Rrq(request) = Packet::parse(&buf).unwrap() else {
            panic!("not RRQ")
        };
        assert_eq!(request.filename, "a/b.cfg");
        assert_eq!(request.mode, "octet");
        assert_eq!(request.options, vec![("blksize", "1428"), ("tsize", "0")]);

        buf.clear();
        encode_data(&mut buf, 65535, b"xyz");
        assert_eq!(
            Packet::parse(&buf).unwrap(),
            Packet::Data {
                block: 65535,
                data: b"xyz"
            }
        );
        buf.clear();
        encode_ack(&mut buf, 7);
        assert_eq!(Packet::parse(&buf).unwrap(), Packet::Ack { block: 7 });
        buf.clear();
        encode_error(&mut buf, ErrorCode::OptionRefused, "no\0pe");
        assert_eq!(
            Packet::parse(&buf).unwrap(),
            Packet::Error {
                code: ErrorCode::OptionRefused,
                message: b"nope"
            }
        );
        buf.clear();
        encode_oack(&mut buf, &[("windowsize", "8")]);
        assert_eq!(
            Packet::parse(&buf).unwrap(),
            Packet::Oack {
                options: vec![("windowsize", "8")]
            }
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(Packet::parse(b""), Err(PacketError::Truncated));
        assert_eq!(Packet::parse(b"\x00"), Err(PacketError::Truncated));
        assert_eq!(
            Packet::parse(b"\x00\x09"),
            Err(PacketError::UnknownOpcode(9))
        );
        assert_eq!(
            Packet::parse(b"\x00\x01file"),
            Err(PacketError::Unterminated)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01\0octet\0"),
            Err(PacketError::EmptyFilename)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\0octet"),
            Err(PacketError::Unterminated)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\0octet\0blksize\0"),
            Err(PacketError::MalformedOptions)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01f\0octet\0\0x\0"),
            Err(PacketError::MalformedOptions)
        );
        assert_eq!(
            Packet::parse(b"\x00\x01\xff\0octet\0"),
            Err(PacketError::NotUtf8)
        );
        assert_eq!(Packet::parse(b"\x00\x04\x00"), Err(PacketError::Truncated));
        assert_eq!(
            Packet::parse(b"\x00\x04\x00\x01\x00"),
            Err(PacketError::TrailingBytes)
        );
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01msg"),
            Err(PacketError::Unterminated)
        );
        assert_eq!(
            Packet::parse(b"\x00\x05\x00\x01m\0x"),
            Err(PacketError::TrailingBytes)
        );
        let mut many = b"\x00\x01f\0octet\0".to_vec();
        for _ in 0..=MAX_OPTIONS {
            many.extend_from_slice(b"a\0b\0");
        }
        assert_eq!(Packet::parse(&many), Err(PacketError::MalformedOptions));
        let mut big = b"\x00\x03\x00\x01".to_vec();
        big.resize(4 + 65465, 0);
        assert_eq!(Packet::parse(&big), Err(PacketError::DataTooLarge));
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 0..=20u16 {
            assert_eq!(ErrorCode::from_u16(code).to_u16(), code);
        }
    }
}
