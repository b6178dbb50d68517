//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path, Refer-To.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ParseError, ValueError};
use crate::header::HeaderName;
use crate::params::Params;
use crate::scan::{is_token, is_ws, quoted_end, slice_of, trim, unquote};
use crate::uri::{Uri, UriRef};

/// `[display-name] <uri> *(;param)` or `addr-spec *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as received (quoted strings keep their quotes and escapes; see
    /// [`NameAddr::display_name_unquoted`]).
    pub display_name: Option<Bytes>,
    /// The URI.
    pub uri: Uri,
    /// `tag` parameter (From/To).
    pub tag: Option<Bytes>,
    /// Header parameters after the URI, as received (the tag included).
    pub params: Params,
}

impl NameAddr {
    /// `<uri>` with no display name and no parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            tag: None,
            params: Params::new(),
        }
    }

    /// Parses one value.
    pub fn parse(value: &[u8]) -> Result<NameAddr, ValueError> {
        Self::parse_in(&Bytes::copy_from_slice(value), value)
    }

    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<NameAddr, ValueError> {
        Ok(NameAddrRef::parse(s)?.to_name_addr_in(owner))
    }

    /// Parses the value of header `name`, reporting errors as that header's.
    pub(crate) fn parse_field(
        name: HeaderName,
        owner: &Bytes,
        s: &[u8],
    ) -> Result<NameAddr, ParseError> {
        match NameAddrRef::parse(s) {
            Ok(n) => Ok(n.to_name_addr_in(owner)),
            Err(kind) => Err(ParseError::value(name, kind)),
        }
    }

    /// The display name without quotes and `\` escapes.
    pub fn display_name_unquoted(&self) -> Option<Cow<'_, [u8]>> {
        self.display_name.as_deref().map(unquote)
    }

    /// Sets the tag (replacing any existing one).
    pub fn set_tag(&mut self, tag: impl Into<Bytes>) {
        let tag = tag.into();
        self.params.remove("tag");
        self.params.push("tag", Some(&tag));
        self.tag = Some(tag);
    }

    /// Prints in name-addr form (`"name" <uri>;params`).
    pub fn write_to(&self, out: &mut BytesMut) {
        if let Some(name) = &self.display_name {
            out.put_slice(name);
            out.put_u8(b' ');
        }
        out.put_u8(b'<');
        self.uri.write_to(out);
        out.put_u8(b'>');
        out.put_slice(self.params.as_bytes());
    }

    /// The printed value.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(96);
        self.write_to(&mut out);
        out.freeze()
    }
}

/// A name-addr or addr-spec value borrowed from the message: the same grammar and checks
/// as [`NameAddr`], no reference counting and no copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    /// Display name as received (quotes and escapes kept).
    pub display_name: Option<&'a [u8]>,
    /// The URI.
    pub uri: UriRef<'a>,
    /// `tag` parameter.
    pub tag: Option<&'a [u8]>,
    /// Header parameters after the URI, as received (tag included), validated.
    pub params: &'a [u8],
}

impl<'a> NameAddrRef<'a> {
    /// Parses one value with the rules of [`NameAddr::parse`].
    #[inline]
    pub fn parse(s: &'a [u8]) -> Result<NameAddrRef<'a>, ValueError> {
        Self::parse_visiting(s, |_, _| Ok(()))
    }

    /// Parses, calling `visit` with each header parameter (validated) in the same pass.
    #[inline]
    fn parse_visiting(
        s: &'a [u8],
        visit: impl FnMut(&'a [u8], Option<&'a [u8]>) -> Result<(), ValueError>,
    ) -> Result<NameAddrRef<'a>, ValueError> {
        let parts = Parts::split(s, visit)?;
        Ok(NameAddrRef {
            display_name: parts.display_name,
            uri: UriRef::parse(parts.uri)?,
            tag: parts.tag,
            params: parts.params,
        })
    }

    /// The display name without quotes and `\` escapes.
    pub fn display_name_unquoted(&self) -> Option<Cow<'a, [u8]>> {
        self.display_name.map(unquote)
    }

    /// The header parameters in order as (name, value).
    pub fn param_iter(&self) -> crate::params::ParamIter<'a> {
        crate::params::ParamIter::over(self.params)
    }

    /// An owned [`NameAddr`] (copies the components).
    pub fn to_name_addr(self) -> NameAddr {
        self.to_name_addr_in(&Bytes::new())
    }

    #[inline]
    pub(crate) fn to_name_addr_in(self, owner: &Bytes) -> NameAddr {
        NameAddr {
            display_name: self.display_name.map(|d| slice_of(owner, d)),
            uri: self.uri.to_uri_in(owner),
            tag: self.tag.map(|t| slice_of(owner, t)),
            params: Params::from_raw(slice_of(owner, self.params)),
        }
    }
}

/// The pieces of a name-addr before its URI is parsed.
struct Parts<'a> {
    display_name: Option<&'a [u8]>,
    uri: &'a [u8],
    tag: Option<&'a [u8]>,
    params: &'a [u8],
}

impl<'a> Parts<'a> {
    #[inline]
    fn split(
        s: &'a [u8],
        mut visit: impl FnMut(&'a [u8], Option<&'a [u8]>) -> Result<(), ValueError>,
    ) -> Result<Parts<'a>, ValueError> {
        let s = trim(s);
        if s.is_empty() {
            return Err(ValueError::Empty);
        }
        let (display_name, uri, params) = if s[0] == b'"' {
            let end = quoted_end(s)?;
            let rest = trim(&s[end..]);
            if rest.first() != Some(&b'<') {
                return Err(ValueError::InvalidDisplayName);
            }
            let (uri, params) = angle(rest)?;
            (Some(&s[..end]), uri, params)
        } else if let Some(lt) = crate::scan::find(b'<', s) {
            let name = trim(&s[..lt]);
            if !name.iter().all(|&b| is_token(b) || is_ws(b)) {
                return Err(ValueError::InvalidDisplayName);
            }
            let (uri, params) = angle(&s[lt..])?;
            let display = (!name.is_empty()).then_some(name);
            (display, uri, params)
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            let end = crate::scan::find(b';', s).unwrap_or(s.len());
            let uri_text = trim(&s[..end]);
            if uri_text
                .iter()
                .any(|&b| matches!(b, b'?' | b',' | b' ' | b'\t'))
            {
                return Err(ValueError::InvalidUri);
            }
            (None, uri_text, &s[end..])
        };
        let mut tag = None;
        crate::params::scan(params, |name, value| {
            if name.len() == 3 && name.eq_ignore_ascii_case(b"tag") {
                tag = value;
            }
            visit(name, value)
        })?;
        Ok(Parts {
            display_name,
            uri,
            tag,
            params: trim(params),
        })
    }
}

/// `<uri>rest` → (uri text, rest).
fn angle(s: &[u8]) -> Result<(&[u8], &[u8]), ValueError> {
    let gt = crate::scan::find(b'>', s).ok_or(ValueError::UnterminatedAngle)?;
    // Whitespace just inside the brackets (RFC 4475 badaspec) is rejected by the URI
    // parser, which refuses every control and space octet.
    Ok((&s[1..gt], &s[gt + 1..]))
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// A q-value in thousandths (0..=1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QValue(pub u16);

impl QValue {
    /// Parses `0`, `1`, `0.5`, `0.333`, `1.000`.
    pub fn parse(s: &[u8]) -> Result<QValue, ValueError> {
        let (int, frac) = match crate::scan::find(b'.', s) {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, &b""[..]),
        };
        if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
            return Err(ValueError::InvalidQValue);
        }
        let mut thousandths: u16 = match int[0] {
            b'0' => 0,
            b'1' => 1000,
            _ => return Err(ValueError::InvalidQValue),
        };
        let mut scale = 100;
        for &d in frac {
            thousandths += u16::from(d - b'0') * scale;
            scale /= 10;
        }
        if thousandths > 1000 {
            return Err(ValueError::InvalidQValue);
        }
        Ok(QValue(thousandths))
    }
}

/// One Contact value: `*` or an address with its registration parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
// Boxing the address would cost an allocation per Contact on the registration path; a
// wildcard is rare and short-lived, so the size difference is the cheaper trade.
#[allow(clippy::large_enum_variant)]
pub enum Contact {
    /// `Contact: *` (remove all bindings, with `Expires: 0`).
    Wildcard,
    /// An address.
    Address(ContactAddress),
}

/// A Contact address and the parameters registrars care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAddress {
    /// The address (display name, URI, header params).
    pub name_addr: NameAddr,
    /// `expires` parameter.
    pub expires: Option<u32>,
    /// `q` parameter.
    pub q: Option<QValue>,
    /// `+sip.instance` (RFC 5626), quotes removed, e.g. `<urn:uuid:...>`.
    pub instance: Option<Bytes>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// RFC 8599 push parameters (read from the URI, else from the header params).
    pub push: PushParams,
}

/// RFC 8599 push notification parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushParams {
    /// `pn-provider` (e.g. `apns`, `fcm`).
    pub provider: Option<Bytes>,
    /// `pn-prid` (the device token).
    pub prid: Option<Bytes>,
    /// `pn-param`.
    pub param: Option<Bytes>,
}

/// Whether a parameter list may hold a `pn-` parameter (cheap pre-check: finds `-`).
fn has_pn_param(params: &[u8]) -> bool {
    let mut from = 0;
    while let Some(off) = crate::scan::find(b'-', &params[from..]) {
        let at = from + off;
        if at >= 2 && params[at - 2] | 0x20 == b'p' && params[at - 1] | 0x20 == b'n' {
            return true;
        }
        from = at + 1;
    }
    false
}

fn note_push<'a>(push: &mut PushParamsRef<'a>, name: &[u8], value: &'a [u8]) {
    if name.len() < 6 || !name[..3].eq_ignore_ascii_case(b"pn-") {
        return;
    }
    let slot = match &name[3..] {
        n if n.eq_ignore_ascii_case(b"provider") => &mut push.provider,
        n if n.eq_ignore_ascii_case(b"prid") => &mut push.prid,
        n if n.eq_ignore_ascii_case(b"param") => &mut push.param,
        _ => return,
    };
    *slot = Some(value);
}

impl PushParams {
    /// Whether a push provider is given.
    pub fn is_present(&self) -> bool {
        self.provider.is_some()
    }
}

impl Contact {
    /// Parses one Contact value.
    pub fn parse(value: &[u8]) -> Result<Contact, ValueError> {
        Self::parse_in(&Bytes::copy_from_slice(value), value)
    }

    pub(crate) fn parse_in(owner: &Bytes, s: &[u8]) -> Result<Contact, ValueError> {
        Ok(ContactRef::parse(s)?.to_contact_in(owner))
    }

    /// Whether this is `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Contact::Wildcard)
    }

    /// The address, unless this is `*`.
    pub fn address(&self) -> Option<&ContactAddress> {
        match self {
            Contact::Address(a) => Some(a),
            Contact::Wildcard => None,
        }
    }

    /// The URI, unless this is `*`.
    pub fn uri(&self) -> Option<&Uri> {
        self.address().map(|a| &a.name_addr.uri)
    }
}

/// One Contact value borrowed from the message: `*` or an address with its registration
/// parameters, with the grammar and checks of [`Contact`] (no reference counting, no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
// As for `Contact`: boxing the address would cost an allocation per value.
#[allow(clippy::large_enum_variant)]
pub enum ContactRef<'a> {
    /// `Contact: *`.
    Wildcard,
    /// An address.
    Address(ContactAddressRef<'a>),
}

/// A borrowed Contact address (see [`ContactAddress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAddressRef<'a> {
    /// The address.
    pub name_addr: NameAddrRef<'a>,
    /// `expires` parameter.
    pub expires: Option<u32>,
    /// `q` parameter.
    pub q: Option<QValue>,
    /// `+sip.instance`, quotes removed (owned only when it held `\` escapes).
    pub instance: Option<Cow<'a, [u8]>>,
    /// `reg-id`.
    pub reg_id: Option<u32>,
    /// RFC 8599 push parameters (from the URI, else from the header params).
    pub push: PushParamsRef<'a>,
}

/// Borrowed RFC 8599 push parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushParamsRef<'a> {
    /// `pn-provider`.
    pub provider: Option<&'a [u8]>,
    /// `pn-prid`.
    pub prid: Option<&'a [u8]>,
    /// `pn-param`.
    pub param: Option<&'a [u8]>,
}

impl<'a> ContactRef<'a> {
    /// Parses one Contact value with the rules of [`Contact::parse`].
    #[inline]
    pub fn parse(s: &'a [u8]) -> Result<ContactRef<'a>, ValueError> {
        if trim(s) == b"*" {
            return Ok(ContactRef::Wildcard);
        }
        let mut expires = None;
        let mut q = None;
        let mut instance = None;
        let mut reg_id = None;
        let mut push = PushParamsRef::default();
        let name_addr = NameAddrRef::parse_visiting(s, |name, value| {
            let Some(value) = value else { return Ok(()) };
            // Dispatch on length first: each parameter is compared once at most.
            let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
            match name.len() {
                7 if is(b"expires") => expires = Some(crate::scan::parse_u32(value)?),
                1 if is(b"q") => q = Some(QValue::parse(value)?),
                13 if is(b"+sip.instance") => instance = Some(unquote(value)),
                6 if is(b"reg-id") => reg_id = Some(crate::scan::parse_u32(value)?),
                _ => note_push(&mut push, name, value),
            }
            Ok(())
        })?;
        // RFC 8599 puts pn-* in the Contact URI; those win over header parameters.
        if let UriRef::Sip(sip) = &name_addr.uri
            && has_pn_param(sip.params)
        {
            for (name, value) in sip.params() {
                if let Some(value) = value {
                    note_push(&mut push, name, value);
                }
            }
        }
        Ok(ContactRef::Address(ContactAddressRef {
            name_addr,
            expires,
            q,
            instance,
            reg_id,
            push,
        }))
    }

    /// Whether this is `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, ContactRef::Wildcard)
    }

    /// The address, unless this is `*`.
    pub fn address(&self) -> Option<&ContactAddressRef<'a>> {
        match self {
            ContactRef::Address(a) => Some(a),
            ContactRef::Wildcard => None,
        }
    }

    /// The URI, unless this is `*`.
    pub fn uri(&self) -> Option<&UriRef<'a>> {
        self.address().map(|a| &a.name_addr.uri)
    }

    /// An owned [`Contact`] (copies the components).
    pub fn to_contact(&self) -> Contact {
        self.to_contact_in(&Bytes::new())
    }

    #[inline]
    pub(crate) fn to_contact_in(&self, owner: &Bytes) -> Contact {
        match self {
            ContactRef::Wildcard => Contact::Wildcard,
            ContactRef::Address(a) => {
                let slice = |v: Option<&[u8]>| v.map(|v| slice_of(owner, v));
                // Built in one literal: a Contact is over 400 octets, every extra move is a
                // memcpy.
                Contact::Address(ContactAddress {
                    name_addr: a.name_addr.to_name_addr_in(owner),
                    expires: a.expires,
                    q: a.q,
                    instance: a.instance.as_ref().map(|i| match i {
                        Cow::Borrowed(inner) => slice_of(owner, inner),
                        Cow::Owned(o) => Bytes::copy_from_slice(o),
                    }),
                    reg_id: a.reg_id,
                    push: PushParams {
                        provider: slice(a.push.provider),
                        prid: slice(a.push.prid),
                        param: slice(a.push.param),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Host;

    #[test]
    fn forms() {
        let n =
            NameAddr::parse(b"\"Alice \\\"A\\\"\" <sip:alice@example.com>;tag=1928301774").unwrap();
        assert_eq!(n.display_name_unquoted().unwrap().as_ref(), b"Alice \"A\"");
        assert_eq!(n.tag.as_deref(), Some(&b"1928301774"[..]));
        let n = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some(&b"caller"[..]));
        let n = NameAddr::parse(b"sip:user@example.com;tag=x;foo").unwrap();
        assert_eq!(n.tag.as_deref(), Some(&b"x"[..]));
        assert!(n.params.contains("foo"));
        assert!(n.uri.as_sip().unwrap().params.is_empty());
        let n = NameAddr::parse(b" <tel:+31201234567>;tag=a").unwrap();
        assert!(matches!(n.uri, Uri::Tel(_)));
        let n =
            NameAddr::parse(b"token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert!(n.display_name.is_some());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>"),
            Err(ValueError::UnterminatedQuote)
        );
        assert_eq!(
            NameAddr::parse(b"\"W, T\" < sip:t@example.org >"),
            Err(ValueError::InvalidUri)
        );
        assert_eq!(
            NameAddr::parse(b"Bell, Alexander <sip:a@b>"),
            Err(ValueError::InvalidDisplayName)
        );
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:x%3E").is_err());
        assert!(NameAddr::parse(b"\"Joe\" <sip:joe@example.org>;;;;").is_err());
        assert!(NameAddr::parse(b"<sip:joe@example.org").is_err());
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse(
            b"<sip:a@192.0.2.1;transport=tcp;pn-provider=apns;pn-prid=tok;pn-param=x.voip>;expires=3600;q=0.7;+sip.instance=\"<urn:uuid:f81d4fae>\";reg-id=1",
        )
        .unwrap();
        let a = c.address().unwrap();
        assert_eq!(a.expires, Some(3600));
        assert_eq!(a.q, Some(QValue(700)));
        assert_eq!(a.instance.as_deref(), Some(&b"<urn:uuid:f81d4fae>"[..]));
        assert_eq!(a.reg_id, Some(1));
        assert_eq!(a.push.provider.as_deref(), Some(&b"apns"[..]));
        assert_eq!(a.push.prid.as_deref(), Some(&b"tok"[..]));
        assert_eq!(a.push.param.as_deref(), Some(&b"x.voip"[..]));
        assert_eq!(
            a.name_addr.uri.as_sip().unwrap().host,
            Host::Ipv4([192, 0, 2, 1].into())
        );
        assert!(Contact::parse(b" * ").unwrap().is_wildcard());
        assert!(Contact::parse(b"<sip:a@b>;expires=280297596632815").is_err());
        assert!(Contact::parse(b"<sip:a@b>;q=1.5").is_err());
    }

    #[test]
    fn pn_precheck() {
        assert!(has_pn_param(b";transport=tcp;PN-provider=apns"));
        assert!(has_pn_param(b";pn-prid=x"));
        assert!(!has_pn_param(b";rinstance=6a2f-8e31;transport=udp"));
        assert!(!has_pn_param(b"-"));
        assert!(!has_pn_param(b""));
    }

    #[test]
    fn qvalues() {
        assert_eq!(QValue::parse(b"0.33"), Ok(QValue(330)));
        assert_eq!(QValue::parse(b"1"), Ok(QValue(1000)));
        assert_eq!(QValue::parse(b"1.000"), Ok(QValue(1000)));
        assert!(QValue::parse(b"1.001").is_err());
        assert!(QValue::parse(b"0.1234").is_err());
    }

    #[test]
    fn set_tag_and_print() {
        let mut n = NameAddr::parse(b"<sip:bob@example.com>").unwrap();
        n.set_tag("abc");
        assert_eq!(&n.to_bytes()[..], b"<sip:bob@example.com>;tag=abc");
        assert_eq!(NameAddr::parse(&n.to_bytes()).unwrap(), n);
    }
}
