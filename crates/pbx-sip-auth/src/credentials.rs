//! `Authorization` / `Proxy-Authorization` values: `Digest` credentials (RFC 3261 §25.1
//! `digest-response`, RFC 7616 §3.4).

use std::borrow::Cow;
use std::fmt;

use crate::algorithm::Algorithm;
use crate::syntax::{
    AuthParam, Cursor, Item, MAX_EXTRA_PARAMS, ParseError, RawValue, value_str, write_param,
};

/// A nonce count: exactly 8 hex digits on the wire, kept as sent because the digest is computed
/// over the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceCount {
    raw: [u8; 8],
    value: u32,
}

impl NonceCount {
    /// The canonical lowercase form of `value`.
    pub fn new(value: u32) -> NonceCount {
        let mut raw = [0u8; 8];
        // `encode_to_slice` only fails on a length mismatch, and 4 bytes always fill 8 digits.
        let _ = hex::encode_to_slice(value.to_be_bytes(), &mut raw);
        NonceCount { raw, value }
    }

    /// Parses exactly 8 hex digits (either case, kept as sent).
    pub fn parse(text: &str) -> Result<NonceCount, ParseError> {
        let raw: [u8; 8] = text
            .as_bytes()
            .try_into()
            .map_err(|_| ParseError::InvalidNonceCount)?;
        let mut bytes = [0u8; 4];
        hex::decode_to_slice(raw, &mut bytes).map_err(|_| ParseError::InvalidNonceCount)?;
        Ok(NonceCount {
            raw,
            value: u32::from_be_bytes(bytes),
        })
    }

    /// The count.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// The 8 digits as sent.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.raw).unwrap_or_default()
    }
}

/// Parsed `Digest` credentials. Text fields borrow from the header value unless unescaping
/// forced a copy; [`Credentials::into_owned`] detaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `username`.
    pub username: Cow<'a, str>,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`, as issued by the server.
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri); the caller checks it against the Request-URI
    /// ([`crate::digest_uri_matches`]).
    pub uri: Cow<'a, str>,
    /// `response` (request-digest), hex.
    pub response: Cow<'a, str>,
    /// `algorithm` as sent; absent means MD5 ([`Credentials::algorithm`]).
    pub algorithm: Option<Cow<'a, str>>,
    /// `cnonce`.
    pub cnonce: Option<Cow<'a, str>>,
    /// `opaque`.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop` as sent (`auth`); absent means RFC 2069 compatibility mode.
    pub qop: Option<Cow<'a, str>>,
    /// `nc`.
    pub nc: Option<NonceCount>,
    /// Parameters this crate does not interpret (`userhash`, `username*`, extensions).
    pub params: Vec<AuthParam<'a>>,
}

/// The `algorithm` parameter names an algorithm this crate does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown digest algorithm")]
pub struct UnknownAlgorithm;

impl<'a> Credentials<'a> {
    /// Parses an `Authorization` or `Proxy-Authorization` header value.
    ///
    /// A well-formed value in another scheme gives [`ParseError::UnsupportedScheme`].
    pub fn parse(value: &'a [u8]) -> Result<Credentials<'a>, ParseError> {
        let text = value_str(value)?;
        let mut cursor = Cursor::new(text);
        let scheme = cursor.scheme()?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ParseError::UnsupportedScheme);
        }
        let mut fields = Fields::default();
        loop {
            match cursor.next_item(false)? {
                Item::End => break,
                Item::NextScheme => return Err(ParseError::ExpectedEquals { at: 0 }),
                Item::Param(name, value) => fields.take(name, value)?,
            }
        }
        fields.finish()
    }

    /// The algorithm; `MD5` when the parameter is absent (RFC 7616 §3.4).
    pub fn algorithm(&self) -> Result<Algorithm, UnknownAlgorithm> {
        match &self.algorithm {
            None => Ok(Algorithm::Md5),
            Some(name) => Algorithm::from_name(name).ok_or(UnknownAlgorithm),
        }
    }

    /// Copies the borrowed parts so the value outlives the input.
    pub fn into_owned(self) -> Credentials<'static> {
        fn own(text: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(text.into_owned())
        }
        Credentials {
            username: own(self.username),
            realm: own(self.realm),
            nonce: own(self.nonce),
            uri: own(self.uri),
            response: own(self.response),
            algorithm: self.algorithm.map(own),
            cnonce: self.cnonce.map(own),
            opaque: self.opaque.map(own),
            qop: self.qop.map(own),
            nc: self.nc,
            params: self.params.into_iter().map(AuthParam::into_owned).collect(),
        }
    }
}

impl fmt::Display for Credentials<'_> {
    /// Prints the value in the usual order: quoted strings, with `algorithm`, `qop` and `nc`
    /// as tokens (RFC 3261 §25.1, RFC 7616 §3.4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest ")?;
        let first = &mut true;
        write_param(f, first, "username", &self.username, true)?;
        write_param(f, first, "realm", &self.realm, true)?;
        write_param(f, first, "nonce", &self.nonce, true)?;
        write_param(f, first, "uri", &self.uri, true)?;
        write_param(f, first, "response", &self.response, true)?;
        if let Some(algorithm) = &self.algorithm {
            write_param(f, first, "algorithm", algorithm, false)?;
        }
        if let Some(cnonce) = &self.cnonce {
            write_param(f, first, "cnonce", cnonce, true)?;
        }
        if let Some(opaque) = &self.opaque {
            write_param(f, first, "opaque", opaque, true)?;
        }
        if let Some(qop) = &self.qop {
            write_param(f, first, "qop", qop, false)?;
        }
        if let Some(nc) = &self.nc {
            write_param(f, first, "nc", nc.as_str(), false)?;
        }
        for param in &self.params {
            write_param(f, first, &param.name, &param.value, param.quoted)?;
        }
        Ok(())
    }
}

/// Collects parameters while parsing, rejecting duplicates.
#[derive(Default)]
struct Fields<'a> {
    username: Option<Cow<'a, str>>,
    realm: Option<Cow<'a, str>>,
    nonce: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    response: Option<Cow<'a, str>>,
    algorithm: Option<Cow<'a, str>>,
    cnonce: Option<Cow<'a, str>>,
    opaque: Option<Cow<'a, str>>,
    qop: Option<Cow<'a, str>>,
    nc: Option<NonceCount>,
    params: Vec<AuthParam<'a>>,
}

impl<'a> Fields<'a> {
    fn take(&mut self, name: &'a str, value: RawValue<'a>) -> Result<(), ParseError> {
        const KNOWN: [&str; 10] = [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "cnonce",
            "opaque",
            "qop",
            "nc",
        ];
        let Some(known) = KNOWN.into_iter().find(|k| k.eq_ignore_ascii_case(name)) else {
            if self.params.len() >= MAX_EXTRA_PARAMS {
                return Err(ParseError::TooManyParameters);
            }
            self.params.push(AuthParam {
                name: Cow::Borrowed(name),
                value: value.text,
                quoted: value.quoted,
            });
            return Ok(());
        };
        if known == "nc" {
            if self.nc.is_some() {
                return Err(ParseError::DuplicateParameter("nc"));
            }
            self.nc = Some(NonceCount::parse(&value.text)?);
            return Ok(());
        }
        let slot = match known {
            "username" => &mut self.username,
            "realm" => &mut self.realm,
            "nonce" => &mut self.nonce,
            "uri" => &mut self.uri,
            "response" => &mut self.response,
            "algorithm" => &mut self.algorithm,
            "cnonce" => &mut self.cnonce,
            "opaque" => &mut self.opaque,
            _ => &mut self.qop,
        };
        if slot.is_some() {
            return Err(ParseError::DuplicateParameter(known));
        }
        *slot = Some(value.text);
        Ok(())
    }

    fn finish(self) -> Result<Credentials<'a>, ParseError> {
        Ok(Credentials {
            username: self
                .username
                .ok_or(ParseError::MissingParameter("username"))?,
            realm: self.realm.ok_or(ParseError::MissingParameter("realm"))?,
            nonce: self.nonce.ok_or(ParseError::MissingParameter("nonce"))?,
            uri: self.uri.ok_or(ParseError::MissingParameter("uri"))?,
            response: self
                .response
                .ok_or(ParseError::MissingParameter("response"))?,
            algorithm: self.algorithm,
            cnonce: self.cnonce,
            opaque: self.opaque,
            qop: self.qop,
            nc: self.nc,
            params: self.params,
        })
    }
}
