//! Byte-level scanning helpers shared by the grammars: character classes, trimming,
//! quote-aware list splitting and zero-copy slicing.

use bytes::Bytes;

use crate::error::ValueError;

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// RFC 3261 `token` character.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Whether `s` is a non-empty token.
#[inline]
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Space or horizontal tab (also CR/LF, which survive only in malformed folded input).
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Below this length a plain loop beats a `memchr` call (dispatch and setup dominate).
const SHORT: usize = 48;

/// Position of the first `needle` in `s`: eight octets per step (SWAR) for short slices,
/// `memchr` for long ones.
#[inline]
pub(crate) fn find(needle: u8, s: &[u8]) -> Option<usize> {
    if s.len() >= SHORT {
        return memchr::memchr(needle, s);
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default()) ^ pattern;
        let hits = x.wrapping_sub(ONES) & !x & HIGH;
        if hits != 0 {
            // The lowest flagged byte is always a real match (borrows only run upwards).
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

/// Whether `s` holds a space, a control octet or DEL (SWAR, eight octets per step).
#[inline]
pub(crate) fn has_space_or_control(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let del = x ^ (ONES * 0x7f);
        let hits =
            (x.wrapping_sub(ONES * 0x21) & !x & HIGH) | (del.wrapping_sub(ONES) & !del & HIGH);
        if hits != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b <= b' ' || b == 0x7f)
}

/// Position of the last `needle` in `s`.
#[inline]
pub(crate) fn rfind(needle: u8, s: &[u8]) -> Option<usize> {
    if s.len() < SHORT {
        s.iter().rposition(|&b| b == needle)
    } else {
        memchr::memrchr(needle, s)
    }
}

/// Position of the first of three octets in `s`.
#[inline]
pub(crate) fn find3(a: u8, b: u8, c: u8, s: &[u8]) -> Option<usize> {
    if s.len() < SHORT {
        s.iter().position(|&x| x == a || x == b || x == c)
    } else {
        memchr::memchr3(a, b, c, s)
    }
}

/// Trims leading and trailing whitespace.
#[inline]
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

/// Trims leading whitespace.
#[inline]
pub(crate) fn trim_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    &s[start..]
}

/// Trims trailing whitespace.
#[inline]
pub(crate) fn trim_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(0, |i| i + 1);
    &s[..end]
}

/// A `Bytes` for `part`, which should lie inside `owner` (refcount only). Copies when it
/// does not, so a wrong call can never panic.
#[inline]
pub(crate) fn slice_of(owner: &Bytes, part: &[u8]) -> Bytes {
    if part.is_empty() {
        return Bytes::new();
    }
    let base = owner.as_ptr() as usize;
    let start = (part.as_ptr() as usize).wrapping_sub(base);
    match start.checked_add(part.len()) {
        Some(end) if start <= owner.len() && end <= owner.len() => owner.slice(start..end),
        _ => Bytes::copy_from_slice(part),
    }
}

/// Given `s[0] == b'"'`, the index just past the closing quote, honouring `\` escapes.
/// Jumps from one `"` or `\` to the next (eight octets per step) instead of walking
/// every octet.
#[inline]
pub(crate) fn quoted_end(s: &[u8]) -> Result<usize, ValueError> {
    let mut i = 1;
    while i < s.len() {
        let Some(off) = find2(b'"', b'\\', &s[i..]) else {
            break;
        };
        i += off;
        if s[i] == b'"' {
            return Ok(i + 1);
        }
        i += 2;
    }
    Err(ValueError::UnterminatedQuote)
}

/// Position of the first `a` or `b` in `s` (SWAR, eight octets per step; `memchr2` for
/// long slices).
#[inline]
pub(crate) fn find2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    // The match is usually near (a quote closing a short display name in a long value):
    // the first octets go through the register loop, only a long rest to `memchr2`.
    if s.len() > SHORT {
        return match find2_short(a, b, &s[..SHORT]) {
            Some(i) => Some(i),
            None => memchr::memchr2(a, b, &s[SHORT..]).map(|i| SHORT + i),
        };
    }
    find2_short(a, b, s)
}

#[inline]
fn find2_short(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let (xa, xb) = (w ^ pa, w ^ pb);
        let hits = (xa.wrapping_sub(ONES) & !xa | xb.wrapping_sub(ONES) & !xb) & HIGH;
        if hits != 0 {
            // The lowest flagged byte is a real match for one of the two patterns.
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == a || x == b)
        .map(|i| base + i)
}

/// Position of the first `needle` in `s` that is outside quoted strings and `<...>`.
#[inline]
pub(crate) fn find_unquoted(s: &[u8], needle: u8) -> Result<Option<usize>, ValueError> {
    let mut i = 0;
    while let Some(off) = find3(needle, b'"', b'<', &s[i..]) {
        i += off;
        match s[i] {
            b'"' if needle != b'"' => i += quoted_end(&s[i..])?,
            b'<' if needle != b'<' => match find(b'>', &s[i..]) {
                Some(off) => i += off + 1,
                None => return Err(ValueError::UnterminatedAngle),
            },
            _ => return Ok(Some(i)),
        }
        if i >= s.len() {
            break;
        }
    }
    Ok(None)
}

/// Splits a header value at top-level commas (outside quotes and `<>`), trimming each
/// element. Empty elements are yielded as empty slices so callers can reject them.
#[derive(Debug, Clone)]
pub(crate) struct ListSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> ListSplit<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Self { rest: Some(s) }
    }
}

impl<'a> Iterator for ListSplit<'a> {
    type Item = Result<&'a [u8], ValueError>;
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest?;
        match find_unquoted(s, b',') {
            Ok(Some(i)) => {
                self.rest = Some(&s[i + 1..]);
                Some(Ok(trim(&s[..i])))
            }
            Ok(None) => {
                self.rest = None;
                Some(Ok(trim(s)))
            }
            Err(e) => {
                self.rest = None;
                Some(Err(e))
            }
        }
    }
}

/// Splits off a leading token; returns (token, rest). The token may be empty.
#[inline]
pub(crate) fn take_token(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&b| !is_token(b)).unwrap_or(s.len());
    s.split_at(n)
}

/// Parses decimal digits (no sign) into a u64, failing on non-digits or overflow of u64.
#[inline]
pub(crate) fn parse_u64(s: &[u8]) -> Result<u64, ValueError> {
    if s.is_empty() {
        return Err(ValueError::InvalidNumber);
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(ValueError::InvalidNumber);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(ValueError::OutOfRange)?;
    }
    Ok(v)
}

/// Parses a decimal u32 (delta-seconds, CSeq numbers).
#[inline]
pub(crate) fn parse_u32(s: &[u8]) -> Result<u32, ValueError> {
    u32::try_from(parse_u64(s)?).map_err(|_| ValueError::OutOfRange)
}

/// Removes surrounding quotes and `\` escapes of a quoted string; other input is returned
/// unchanged. Borrowed when nothing needed unescaping.
pub fn unquote(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    if s.len() < 2 || s[0] != b'"' || s[s.len() - 1] != b'"' {
        return Cow::Borrowed(s);
    }
    let inner = &s[1..s.len() - 1];
    if find(b'\\', inner).is_none() {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            out.push(inner[i + 1]);
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// Decodes `%HH` escapes once (never recursively). Invalid escapes are kept literally.
pub fn percent_decode(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    if find(b'%', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let v: Vec<_> = ListSplit::new(b"\"a,b\" <sip:x,y@h>;p=1 , c")
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(v, vec![&b"\"a,b\" <sip:x,y@h>;p=1"[..], &b"c"[..]]);
        let v: Vec<_> = ListSplit::new(b"a,,b").map(|r| r.unwrap()).collect();
        assert_eq!(v, vec![&b"a"[..], &b""[..], &b"b"[..]]);
        assert!(ListSplit::new(b"\"open, x").any(|r| r.is_err()));
    }

    #[test]
    fn percent_decode_once() {
        assert_eq!(&*percent_decode(b"v%61lue%25%34%31"), b"value%41");
        assert_eq!(&*percent_decode(b"null-%00-null"), b"null-\0-null");
        assert_eq!(&*percent_decode(b"%Z%45"), b"%ZE");
        assert_eq!(&*percent_decode(b"ab%4"), b"ab%4");
        assert_eq!(&*percent_decode(b"ab%"), b"ab%");
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(&*unquote(br#""J Rosenberg \\\"""#), br#"J Rosenberg \""#);
        assert_eq!(&*unquote(b"plain"), b"plain");
    }

    #[test]
    fn find_agrees_with_position() {
        let hay: Vec<u8> = (0u8..=255).chain(0u8..40).collect();
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 40, 47, 48, 100, 296] {
            let s = &hay[..len.min(hay.len())];
            for needle in [0u8, 1, 7, 8, 0x80, 0xff, b'@', b'>', 39] {
                assert_eq!(
                    find(needle, s),
                    s.iter().position(|&b| b == needle),
                    "{len} {needle}"
                );
            }
        }
        assert_eq!(find(b'@', b"aaaaaaa@aaaaaaa@"), Some(7));
        assert_eq!(find(b'\x01', b"\x00\x01"), Some(1));
        assert_eq!(
            find(b'\x01', b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
            Some(9)
        );
    }

    #[test]
    fn find2_and_quoted_end_agree_with_simple_scans() {
        let hay: Vec<u8> = (0u8..=255).chain(0u8..40).collect();
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 40, 47, 48, 100, 296] {
            let s = &hay[..len.min(hay.len())];
            for (a, b) in [(b'"', b'\\'), (0, 1), (0x80, 0x7f), (8, 200), (0xff, 0xfe)] {
                assert_eq!(
                    find2(a, b, s),
                    s.iter().position(|&x| x == a || x == b),
                    "{len} {a} {b}"
                );
            }
        }
        let simple = |s: &[u8]| {
            let mut i = 1;
            while i < s.len() {
                match s[i] {
                    b'\\' => i += 2,
                    b'"' => return Ok(i + 1),
                    _ => i += 1,
                }
            }
            Err(ValueError::UnterminatedQuote)
        };
        for q in [
            &br#""""#[..],
            br#""abc" rest"#,
            br#""a\"b" x"#,
            br#""a\\" x""#,
            br#""unterminated"#,
            br#""ends in backslash\"#,
            br#""ends in escaped quote\""#,
            br#""a long quoted string that is well over forty-eight octets long" <x>"#,
            br#""a long quoted string that is \"escaped\" and well over forty-eight octets"#,
            b"\"",
        ] {
            assert_eq!(quoted_end(q), simple(q), "{:?}", String::from_utf8_lossy(q));
        }
    }

    #[test]
    fn space_or_control_agrees_with_simple_scan() {
        for len in [0usize, 3, 8, 9, 16, 23] {
            for bad in [0u8, b' ', b'\t', 0x1f, 0x7f] {
                for at in 0..len {
                    let mut v = vec![b'a'; len];
                    v[at] = bad;
                    assert!(has_space_or_control(&v));
                }
            }
            assert!(!has_space_or_control(&vec![b'~'; len]));
            assert!(!has_space_or_control(&vec![0x80; len]));
            assert!(!has_space_or_control(&vec![0x21; len]));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"0009"), Ok(9));
        assert_eq!(
            parse_u32(b"36893488147419103232"),
            Err(ValueError::OutOfRange)
        );
        assert_eq!(parse_u32(b"4294967296"), Err(ValueError::OutOfRange));
        assert_eq!(parse_u32(b"-1"), Err(ValueError::InvalidNumber));
        assert_eq!(parse_u32(b""), Err(ValueError::InvalidNumber));
    }

    #[test]
    fn slice_of_out_of_owner_copies() {
        let owner = Bytes::from_static(b"hello world");
        assert_eq!(slice_of(&owner, &owner[6..]), "world");
        assert_eq!(slice_of(&owner, b"other"), "other");
    }
}
