//! Lazy `;name=value` parameter lists, kept as the received text.

use std::fmt;

use bytes::Bytes;

use crate::error::ValueError;
use crate::scan::{is_token, quoted_end, trim};

/// A parameter list as received, starting at its first `;` (or empty). Lookups scan the
/// text; names compare case-insensitively. Values are returned as written (quoted values
/// keep their quotes; see [`crate::scan::unquote`]).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Params {
    raw: Bytes,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps raw text such as `;lr;transport=tcp` (not validated; see [`Params::validate`]).
    pub fn from_raw(raw: impl Into<Bytes>) -> Self {
        Self { raw: raw.into() }
    }

    /// The text as received, leading `;` included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The raw text as `Bytes`.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Parameters in order as (name, value); a flag parameter has no value.
    pub fn iter(&self) -> ParamIter<'_> {
        ParamIter { rest: &self.raw }
    }

    /// The value of `name`: `Some(Some(v))`, `Some(None)` for a flag, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&[u8]>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The value of `name` if present with a value.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.get(name).flatten()
    }

    /// The value of `name` as `Bytes` (refcount only).
    pub fn value_bytes(&self, name: &str) -> Option<Bytes> {
        self.value(name)
            .map(|v| crate::scan::slice_of(&self.raw, v))
    }

    /// Whether `name` is present (flag or valued).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends `;name` or `;name=value` (value written as given).
    pub fn push(&mut self, name: &str, value: Option<&[u8]>) {
        let mut v =
            Vec::with_capacity(self.raw.len() + name.len() + 2 + value.map_or(0, <[u8]>::len));
        v.extend_from_slice(&self.raw);
        v.push(b';');
        v.extend_from_slice(name.as_bytes());
        if let Some(value) = value {
            v.push(b'=');
            v.extend_from_slice(value);
        }
        self.raw = Bytes::from(v);
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        if !self.contains(name) {
            return;
        }
        let mut v = Vec::with_capacity(self.raw.len());
        for (n, value) in self.iter() {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            v.push(b';');
            v.extend_from_slice(n);
            if let Some(value) = value {
                v.push(b'=');
                v.extend_from_slice(value);
            }
        }
        self.raw = Bytes::from(v);
    }

    /// Checks the grammar: `*( SEMI token [ EQUAL (token / host / quoted-string) ] )`
    /// with LWS allowed around `;` and `=`. Empty parameters (`;;`) are rejected.
    pub fn validate(raw: &[u8]) -> Result<(), ValueError> {
        scan(raw, |_, _| Ok(()))
    }
}

/// Octets of an unquoted parameter value (token, host, and the lenient rest).
static VALUE_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b > b' ' && b != 0x7f && !matches!(b, b',' | b';' | b'"' | b'<' | b'>');
        i += 1;
    }
    t
};

#[inline]
fn is_value_char(b: u8) -> bool {
    VALUE_CHAR[b as usize]
}

#[inline]
fn skip_ws(raw: &[u8], mut i: usize) -> usize {
    while i < raw.len() && matches!(raw[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Validates a parameter list (see [`Params::validate`]) and calls `visit` with each
/// (name, value) in one pass.
#[inline]
pub(crate) fn scan<'a>(
    raw: &'a [u8],
    mut visit: impl FnMut(&'a [u8], Option<&'a [u8]>) -> Result<(), ValueError>,
) -> Result<(), ValueError> {
    let n = raw.len();
    let mut i = skip_ws(raw, 0);
    if i == n {
        return Ok(());
    }
    if raw[i] != b';' {
        return Err(ValueError::UnexpectedChar);
    }
    i += 1;
    loop {
        i = skip_ws(raw, i);
        let name_start = i;
        while i < n && is_token(raw[i]) {
            i += 1;
        }
        let name = &raw[name_start..i];
        if name.is_empty() {
            return Err(if i == n || raw[i] == b';' {
                ValueError::EmptyElement
            } else {
                ValueError::InvalidToken
            });
        }
        i = skip_ws(raw, i);
        let mut value = None;
        if i < n && raw[i] == b'=' {
            i = skip_ws(raw, i + 1);
            let value_start = i;
            if i < n && raw[i] == b'"' {
                i += quoted_end(&raw[i..])?;
            } else {
                while i < n && is_value_char(raw[i]) {
                    i += 1;
                }
            }
            if i == value_start {
                return Err(ValueError::Empty);
            }
            value = Some(&raw[value_start..i]);
            i = skip_ws(raw, i);
        }
        visit(name, value)?;
        if i == n {
            return Ok(());
        }
        if raw[i] != b';' {
            return Err(ValueError::UnexpectedChar);
        }
        i += 1;
    }
}

/// Splits at the next `;` outside a quoted string: (item, rest after `;`).
fn split_param(s: &[u8]) -> Result<(&[u8], Option<&[u8]>), ValueError> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b';' => return Ok((&s[..i], Some(&s[i + 1..]))),
            b'"' => i += quoted_end(&s[i..])?,
            _ => i += 1,
        }
    }
    Ok((s, None))
}

/// Iterator over the parameters of a [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
}

impl<'a> ParamIter<'a> {
    /// Iterates over a borrowed parameter list.
    pub(crate) fn over(rest: &'a [u8]) -> Self {
        Self { rest }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (item, next) = match split_param(self.rest) {
                Ok(split) => split,
                Err(_) => (self.rest, None),
            };
            self.rest = next.unwrap_or(&[]);
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            return Some(match crate::scan::find(b'=', item) {
                Some(i) => (trim(&item[..i]), Some(trim(&item[i + 1..]))),
                None => (item, None),
            });
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Params({:?})", String::from_utf8_lossy(&self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_with_lws() {
        let p = Params::from_raw(&b" ;   tag    = 1918181833n ; lr ;q=\"a;b\""[..]);
        assert_eq!(p.value("TAG"), Some(&b"1918181833n"[..]));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("q"), Some(&b"\"a;b\""[..]));
        assert!(p.get("x").is_none());
        assert_eq!(p.iter().count(), 3);
    }

    #[test]
    fn validate_rejects_empty_params() {
        assert!(Params::validate(b";a=1;b").is_ok());
        assert!(Params::validate(b"").is_ok());
        assert_eq!(Params::validate(b";;;;"), Err(ValueError::EmptyElement));
        assert_eq!(
            Params::validate(b";a=\"x"),
            Err(ValueError::UnterminatedQuote)
        );
        assert!(Params::validate(b";received=[2001:db8::9:255]").is_ok());
        assert!(Params::validate(b"x").is_err());
    }

    #[test]
    fn push_and_remove() {
        let mut p = Params::from_raw(&b";lr"[..]);
        p.push("transport", Some(b"tcp"));
        assert_eq!(p.as_bytes(), b";lr;transport=tcp");
        p.remove("lr");
        assert_eq!(p.as_bytes(), b";transport=tcp");
    }
}
