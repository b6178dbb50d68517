//! `WWW-Authenticate` / `Proxy-Authenticate` values: `Digest` challenges (RFC 3261 §25.1
//! `digest-cln`, RFC 7616 §3.3). One header value may carry several challenges (one per
//! algorithm, RFC 8760 §2.4), possibly mixed with other schemes, which are skipped.

use std::borrow::Cow;
use std::fmt;

use crate::algorithm::Algorithm;
use crate::credentials::UnknownAlgorithm;
use crate::syntax::{
    AuthParam, Cursor, Item, MAX_EXTRA_PARAMS, ParseError, RawValue, value_str, write_param,
};

/// Most challenges kept from one header value.
pub const MAX_CHALLENGES: usize = 8;

/// A parsed or built `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `domain` (a space-separated URI list), rarely used in SIP.
    pub domain: Option<Cow<'a, str>>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `opaque`, to be echoed by the client.
    pub opaque: Option<Cow<'a, str>>,
    /// `stale=true`: the nonce was old but the credentials were right; retry without asking
    /// the user again.
    pub stale: bool,
    /// `algorithm` as sent; absent means MD5 ([`Challenge::algorithm`]).
    pub algorithm: Option<Cow<'a, str>>,
    /// `qop` options as sent, a comma-separated list inside quotes (`"auth"`).
    pub qop: Option<Cow<'a, str>>,
    /// Parameters this crate does not interpret (`charset`, `userhash`, extensions).
    pub params: Vec<AuthParam<'a>>,
}

impl<'a> Challenge<'a> {
    /// Parses a header value holding exactly one `Digest` challenge. Another scheme gives
    /// [`ParseError::UnsupportedScheme`].
    pub fn parse(value: &'a [u8]) -> Result<Challenge<'a>, ParseError> {
        let text = value_str(value)?;
        let mut cursor = Cursor::new(text);
        let scheme = cursor.scheme()?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ParseError::UnsupportedScheme);
        }
        let (challenge, more) = parse_digest(&mut cursor)?;
        if more {
            return Err(ParseError::ExpectedEquals {
                at: cursor.position(),
            });
        }
        Ok(challenge)
    }

    /// Parses a header value that may hold several challenges; keeps the `Digest` ones in
    /// order and skips other schemes. A value with no `Digest` challenge gives
    /// [`ParseError::UnsupportedScheme`].
    pub fn parse_list(value: &'a [u8]) -> Result<Vec<Challenge<'a>>, ParseError> {
        let text = value_str(value)?;
        let mut cursor = Cursor::new(text);
        let mut challenges = Vec::new();
        let mut seen = 0usize;
        loop {
            let scheme = cursor.scheme()?;
            seen += 1;
            if seen > MAX_CHALLENGES {
                return Err(ParseError::TooManyParameters);
            }
            let more = if scheme.eq_ignore_ascii_case("Digest") {
                let (challenge, more) = parse_digest(&mut cursor)?;
                challenges.push(challenge);
                more
            } else {
                skip_other(&mut cursor)?
            };
            if !more {
                break;
            }
        }
        if challenges.is_empty() {
            return Err(ParseError::UnsupportedScheme);
        }
        Ok(challenges)
    }

    /// The algorithm; `MD5` when the parameter is absent.
    pub fn algorithm(&self) -> Result<Algorithm, UnknownAlgorithm> {
        match &self.algorithm {
            None => Ok(Algorithm::Md5),
            Some(name) => Algorithm::from_name(name).ok_or(UnknownAlgorithm),
        }
    }

    /// Whether `qop` lists `auth`.
    pub fn offers_qop_auth(&self) -> bool {
        self.qop.as_deref().is_some_and(|list| {
            list.split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("auth"))
        })
    }

    /// Copies the borrowed parts so the value outlives the input.
    pub fn into_owned(self) -> Challenge<'static> {
        fn own(text: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(text.into_owned())
        }
        Challenge {
            realm: own(self.realm),
            domain: self.domain.map(own),
            nonce: own(self.nonce),
            opaque: self.opaque.map(own),
            stale: self.stale,
            algorithm: self.algorithm.map(own),
            qop: self.qop.map(own),
            params: self.params.into_iter().map(AuthParam::into_owned).collect(),
        }
    }
}

impl fmt::Display for Challenge<'_> {
    /// Prints one challenge: `Digest realm="..", nonce="..", ..., algorithm=SHA-256,
    /// qop="auth"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest ")?;
        let first = &mut true;
        write_param(f, first, "realm", &self.realm, true)?;
        if let Some(domain) = &self.domain {
            write_param(f, first, "domain", domain, true)?;
        }
        write_param(f, first, "nonce", &self.nonce, true)?;
        if let Some(opaque) = &self.opaque {
            write_param(f, first, "opaque", opaque, true)?;
        }
        if self.stale {
            write_param(f, first, "stale", "true", false)?;
        }
        if let Some(algorithm) = &self.algorithm {
            write_param(f, first, "algorithm", algorithm, false)?;
        }
        if let Some(qop) = &self.qop {
            write_param(f, first, "qop", qop, true)?;
        }
        for param in &self.params {
            write_param(f, first, &param.name, &param.value, param.quoted)?;
        }
        Ok(())
    }
}

/// Reads the parameters of one `Digest` challenge; the flag says whether another challenge
/// follows.
fn parse_digest<'a>(cursor: &mut Cursor<'a>) -> Result<(Challenge<'a>, bool), ParseError> {
    let mut fields = Fields::default();
    let more = loop {
        match cursor.next_item(true)? {
            Item::End => break false,
            Item::NextScheme => break true,
            Item::Param(name, value) => fields.take(name, value)?,
        }
    };
    Ok((fields.finish()?, more))
}

/// Skips the parameters (or token68) of a challenge in a scheme this crate does not handle.
fn skip_other(cursor: &mut Cursor<'_>) -> Result<bool, ParseError> {
    cursor.skip_token68();
    loop {
        match cursor.next_item(true)? {
            Item::End => return Ok(false),
            Item::NextScheme => return Ok(true),
            Item::Param(..) => {}
        }
    }
}

#[derive(Default)]
struct Fields<'a> {
    realm: Option<Cow<'a, str>>,
    domain: Option<Cow<'a, str>>,
    nonce: Option<Cow<'a, str>>,
    opaque: Option<Cow<'a, str>>,
    stale: Option<bool>,
    algorithm: Option<Cow<'a, str>>,
    qop: Option<Cow<'a, str>>,
    params: Vec<AuthParam<'a>>,
}

impl<'a> Fields<'a> {
    fn take(&mut self, name: &'a str, value: RawValue<'a>) -> Result<(), ParseError> {
        const KNOWN: [&str; 7] = [
            "realm",
            "domain",
            "nonce",
            "opaque",
            "stale",
            "algorithm",
            "qop",
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
        if known == "stale" {
            if self.stale.is_some() {
                return Err(ParseError::DuplicateParameter("stale"));
            }
            self.stale = Some(value.text.eq_ignore_ascii_case("true"));
            return Ok(());
        }
        let slot = match known {
            "realm" => &mut self.realm,
            "domain" => &mut self.domain,
            "nonce" => &mut self.nonce,
            "opaque" => &mut self.opaque,
            "algorithm" => &mut self.algorithm,
            _ => &mut self.qop,
        };
        if slot.is_some() {
            return Err(ParseError::DuplicateParameter(known));
        }
        *slot = Some(value.text);
        Ok(())
    }

    fn finish(self) -> Result<Challenge<'a>, ParseError> {
        Ok(Challenge {
            realm: self.realm.ok_or(ParseError::MissingParameter("realm"))?,
            domain: self.domain,
            nonce: self.nonce.ok_or(ParseError::MissingParameter("nonce"))?,
            opaque: self.opaque,
            stale: self.stale.unwrap_or(false),
            algorithm: self.algorithm,
            qop: self.qop,
            params: self.params,
        })
    }
}
