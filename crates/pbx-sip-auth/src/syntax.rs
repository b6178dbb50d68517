//! The shared grammar of `Authorization` and `WWW-Authenticate` values (RFC 3261 §25.1,
//! RFC 7235 §2.1): scheme tokens, comma-separated `name=value` auth-params whose value is a
//! token or a quoted string, and the printer that writes them back.
//!
//! The scanner works on `&str` (the value is checked as UTF-8 once, up front) and never panics:
//! every index is bounds-checked through `get`/`peek`.

use std::borrow::Cow;
use std::fmt;

/// Longest header value this crate looks at. Real credentials are a few hundred bytes; a value
/// this long is hostile or broken.
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// Most extension (unknown) parameters kept for one credentials or challenge value.
pub const MAX_EXTRA_PARAMS: usize = 16;

/// Why a header value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The value is empty or only whitespace.
    #[error("empty header value")]
    Empty,
    /// The value is longer than [`MAX_VALUE_LEN`].
    #[error("header value longer than {MAX_VALUE_LEN} bytes")]
    TooLong,
    /// The value is not valid UTF-8.
    #[error("header value is not valid UTF-8")]
    InvalidUtf8,
    /// The scheme is well formed but is not `Digest` (RFC 4475 §3.3.7: answer with a challenge
    /// in a scheme the server knows).
    #[error("authentication scheme is not Digest")]
    UnsupportedScheme,
    /// A token (scheme or parameter name) was expected at this byte offset.
    #[error("expected a token at offset {at}")]
    ExpectedToken {
        /// Byte offset into the value.
        at: usize,
    },
    /// The scheme was not followed by whitespace.
    #[error("expected whitespace after the scheme at offset {at}")]
    ExpectedWhitespace {
        /// Byte offset into the value.
        at: usize,
    },
    /// A parameter name was not followed by `=`.
    #[error("expected '=' at offset {at}")]
    ExpectedEquals {
        /// Byte offset into the value.
        at: usize,
    },
    /// `=` was not followed by a token or a quoted string.
    #[error("expected a token or quoted string at offset {at}")]
    ExpectedValue {
        /// Byte offset into the value.
        at: usize,
    },
    /// A parameter was followed by something other than `,` or the end.
    #[error("expected ',' at offset {at}")]
    ExpectedComma {
        /// Byte offset into the value.
        at: usize,
    },
    /// A quoted string has no closing `"`.
    #[error("unterminated quoted string")]
    UnterminatedQuotedString,
    /// A control character (or a bare CR/LF) appears inside a quoted string.
    #[error("invalid character in quoted string at offset {at}")]
    InvalidCharacter {
        /// Byte offset into the value.
        at: usize,
    },
    /// A parameter that may appear once appears twice (RFC 7616 §3.4).
    #[error("parameter {0} appears more than once")]
    DuplicateParameter(&'static str),
    /// A required parameter is missing.
    #[error("required parameter {0} is missing")]
    MissingParameter(&'static str),
    /// `nc` is not exactly 8 hexadecimal digits.
    #[error("nc is not 8 hexadecimal digits")]
    InvalidNonceCount,
    /// More than [`MAX_EXTRA_PARAMS`] extension parameters.
    #[error("more than {MAX_EXTRA_PARAMS} extension parameters")]
    TooManyParameters,
}

/// An extension parameter this crate does not interpret, kept so that it can be printed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// Parameter name as received.
    pub name: Cow<'a, str>,
    /// Value, unescaped if it was a quoted string.
    pub value: Cow<'a, str>,
    /// Whether the value was a quoted string (printed back the same way).
    pub quoted: bool,
}

impl AuthParam<'_> {
    /// Copies the borrowed parts so the value outlives the input.
    pub fn into_owned(self) -> AuthParam<'static> {
        AuthParam {
            name: Cow::Owned(self.name.into_owned()),
            value: Cow::Owned(self.value.into_owned()),
            quoted: self.quoted,
        }
    }
}

/// A parameter value as scanned: the unescaped text and whether it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawValue<'a> {
    pub(crate) text: Cow<'a, str>,
    pub(crate) quoted: bool,
}

/// What the parameter scanner found next.
pub(crate) enum Item<'a> {
    /// A `name=value` parameter.
    Param(&'a str, RawValue<'a>),
    /// A token not followed by `=`: the scheme of the next challenge (list mode only).
    NextScheme,
    /// End of input.
    End,
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Whether `s` can be printed as a bare token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Checks the length and encoding of a raw header value.
pub(crate) fn value_str(raw: &[u8]) -> Result<&str, ParseError> {
    if raw.len() > MAX_VALUE_LEN {
        return Err(ParseError::TooLong);
    }
    let text = std::str::from_utf8(raw).map_err(|_| ParseError::InvalidUtf8)?;
    if text.bytes().all(is_whitespace) {
        return Err(ParseError::Empty);
    }
    Ok(text)
}

/// A bounds-checked cursor over a header value.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Skips whitespace; returns whether any was skipped.
    pub(crate) fn skip_whitespace(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Skips whitespace and commas (empty list elements are allowed, RFC 7230 §7).
    fn skip_separators(&mut self) {
        while self.peek().is_some_and(|b| is_whitespace(b) || b == b',') {
            self.pos += 1;
        }
    }

    /// Reads a token, or reports where one was expected.
    pub(crate) fn token(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        match self.text.get(start..self.pos) {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(ParseError::ExpectedToken { at: start }),
        }
    }

    /// Reads an authentication scheme followed by whitespace or the end of input.
    pub(crate) fn scheme(&mut self) -> Result<&'a str, ParseError> {
        self.skip_separators();
        let scheme = self.token()?;
        if !self.at_end() && !self.skip_whitespace() {
            return Err(ParseError::ExpectedWhitespace { at: self.pos });
        }
        Ok(scheme)
    }

    /// Skips a token68 (RFC 7235 §2.1) if one comes next, as used by `Basic`/`Bearer`
    /// challenges that share a `WWW-Authenticate` list with `Digest` ones.
    pub(crate) fn skip_token68(&mut self) {
        let bytes = self.text.as_bytes();
        let mut end = self.pos;
        while bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
        {
            end += 1;
        }
        if end == self.pos {
            return;
        }
        while bytes.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while bytes.get(after).copied().is_some_and(is_whitespace) {
            after += 1;
        }
        if matches!(bytes.get(after), None | Some(b',')) {
            self.pos = after;
        }
    }

    /// Reads the next auth-param. With `list` set, a token not followed by `=` is reported as
    /// the start of the next challenge instead of an error.
    pub(crate) fn next_item(&mut self, list: bool) -> Result<Item<'a>, ParseError> {
        self.skip_separators();
        if self.at_end() {
            return Ok(Item::End);
        }
        let start = self.pos;
        let name = self.token()?;
        self.skip_whitespace();
        if self.peek() != Some(b'=') {
            if list {
                self.pos = start;
                return Ok(Item::NextScheme);
            }
            return Err(ParseError::ExpectedEquals { at: self.pos });
        }
        self.pos += 1;
        self.skip_whitespace();
        let value = match self.peek() {
            Some(b'"') => RawValue {
                text: self.quoted_string()?,
                quoted: true,
            },
            _ => RawValue {
                text: Cow::Borrowed(
                    self.token()
                        .map_err(|_| ParseError::ExpectedValue { at: self.pos })?,
                ),
                quoted: false,
            },
        };
        self.skip_whitespace();
        match self.peek() {
            None | Some(b',') => Ok(Item::Param(name, value)),
            Some(_) => Err(ParseError::ExpectedComma { at: self.pos }),
        }
    }

    /// Reads a quoted string starting at `"`, unescaping quoted-pairs (RFC 3261 §25.1).
    fn quoted_string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        self.pos += 1; // opening quote, checked by the caller
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut owned: Option<String> = None;
        let mut run_start = start;
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(ParseError::UnterminatedQuotedString);
            };
            match b {
                b'"' => {
                    let tail = self.text.get(run_start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(match owned {
                        Some(mut text) => {
                            text.push_str(tail);
                            Cow::Owned(text)
                        }
                        None => Cow::Borrowed(tail),
                    });
                }
                b'\\' => {
                    let escaped = bytes.get(self.pos + 1).copied();
                    match escaped {
                        None => return Err(ParseError::UnterminatedQuotedString),
                        Some(b'\r' | b'\n') | Some(0x80..) => {
                            return Err(ParseError::InvalidCharacter { at: self.pos + 1 });
                        }
                        Some(e) => {
                            let text = owned.get_or_insert_with(String::new);
                            text.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
                            text.push(char::from(e));
                            self.pos += 2;
                            run_start = self.pos;
                        }
                    }
                }
                b'\t' => self.pos += 1,
                0x00..=0x1f | 0x7f => return Err(ParseError::InvalidCharacter { at: self.pos }),
                _ => self.pos += 1,
            }
        }
    }
}

/// Writes `value` as a quoted string. CR and LF cannot be carried by a quoted string and are
/// never written (a header injection guard); constructors that take user input reject them.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut run_start = 0;
    for (index, b) in value.bytes().enumerate() {
        let escape = matches!(b, b'"' | b'\\') || (b < 0x20 && b != b'\t') || b == 0x7f;
        if !escape {
            continue;
        }
        f.write_str(value.get(run_start..index).unwrap_or_default())?;
        if b != b'\r' && b != b'\n' {
            f.write_str("\\")?;
            f.write_str(value.get(index..index + 1).unwrap_or_default())?;
        }
        run_start = index + 1;
    }
    f.write_str(value.get(run_start..).unwrap_or_default())?;
    f.write_str("\"")
}

/// Writes one `, name=value` pair (or `name=value` when `first`).
pub(crate) fn write_param(
    f: &mut fmt::Formatter<'_>,
    first: &mut bool,
    name: &str,
    value: &str,
    quoted: bool,
) -> fmt::Result {
    if !*first {
        f.write_str(", ")?;
    }
    *first = false;
    f.write_str(name)?;
    f.write_str("=")?;
    if quoted || !is_token(value) {
        write_quoted(f, value)
    } else {
        f.write_str(value)
    }
}

/// Whether `value` can be written into a header: no CR, LF or NUL.
pub(crate) fn is_header_safe(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}
