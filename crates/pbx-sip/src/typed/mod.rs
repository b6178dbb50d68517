//! Typed, lazy access to header values. Nothing here runs at parse time: each accessor
//! parses the stored value slices when called and returns zero-copy `Bytes` pieces.
//!
//! The same accessors exist on [`Headers`], [`crate::Request`], [`crate::Response`] and
//! [`crate::Message`].

mod misc;
mod name_addr;
mod via;

use bytes::Bytes;

pub use misc::{
    CSeq, Event, MediaType, Reason, Refresher, Replaces, RetryAfter, SessionExpires,
    SubscriptionState,
};
pub use name_addr::{
    Contact, ContactAddress, ContactAddressRef, ContactRef, NameAddr, NameAddrRef, PushParams,
    PushParamsRef, QValue,
};
pub use via::{BRANCH_MAGIC_COOKIE, Transport, Via, ViaRef};

use crate::error::{ParseError, ValueError};
use crate::header::{HeaderName, Headers};
use crate::method::Method;
use crate::scan::{ListSplit, is_token_str, parse_u32, slice_of, trim};

/// Most values a list accessor (`via()`, `contacts()`, `route()`, ...) returns; more is an
/// error, so a 64 KiB header of tiny values cannot make one call build a huge vector.
pub const MAX_LIST_VALUES: usize = 512;

/// The one element of a list value that holds no comma (`ListSplit` would yield exactly
/// `trim(value)` or an error), or `None` when the value must be split.
#[inline]
fn sole_element(value: &[u8]) -> Option<&[u8]> {
    match crate::scan::find(b',', value) {
        None => Some(trim(value)),
        Some(_) => None,
    }
}

/// The error `ListSplit` reports for a comma-free `value`, if any. Consulted only after its
/// element was rejected, so errors are exactly those of split-then-parse.
#[cold]
fn split_error(value: &[u8]) -> Option<ValueError> {
    ListSplit::new(value).next().and_then(Result::err)
}

/// Parses the sole element of a comma-free list value with the checks, and the error
/// precedence, of the split-then-parse loop (`count` values already taken).
#[inline]
fn sole<'a, T>(
    value: &'a [u8],
    item: &'a [u8],
    count: usize,
    parse: impl FnOnce(&'a [u8]) -> Result<T, ValueError>,
) -> Result<T, ValueError> {
    let result = if item.is_empty() {
        Err(ValueError::EmptyElement)
    } else if count == MAX_LIST_VALUES {
        Err(ValueError::TooManyValues)
    } else {
        parse(item)
    };
    result.map_err(|kind| split_error(value).unwrap_or(kind))
}

/// The one value of a singleton header; `Ok(None)` when absent.
#[inline]
fn single<'a>(
    h: &'a Headers,
    name: &HeaderName,
) -> Result<Option<(&'a Bytes, &'a [u8])>, ParseError> {
    h.single_sourced(name)
        .map_err(|()| ParseError::DuplicateSingletonHeader(name.clone()))
}

#[inline]
fn single_typed<T>(
    h: &Headers,
    name: HeaderName,
    parse: impl FnOnce(&Bytes, &[u8]) -> Result<T, ValueError>,
) -> Result<Option<T>, ParseError> {
    match single(h, &name)? {
        Some((owner, v)) => parse(owner, v)
            .map(Some)
            .map_err(|kind| ParseError::value(name, kind)),
        None => Ok(None),
    }
}

#[inline]
fn required<T>(
    h: &Headers,
    name: HeaderName,
    parse: impl FnOnce(&Bytes, &[u8]) -> Result<T, ValueError>,
) -> Result<T, ParseError> {
    match single(h, &name)? {
        Some((owner, v)) => parse(owner, v).map_err(|kind| ParseError::value(name, kind)),
        None => Err(ParseError::MissingHeader(name)),
    }
}

#[inline]
fn list<T>(
    h: &Headers,
    name: HeaderName,
    parse: impl Fn(&Bytes, &[u8]) -> Result<T, ValueError>,
) -> Result<Vec<T>, ParseError> {
    // Large items (Contact) start with room for one, so the common single-value list is one
    // small allocation on the allocator's fast path.
    let mut out = Vec::with_capacity(if std::mem::size_of::<T>() > 256 { 1 } else { 4 });
    for (owner, value) in h.sourced(&name) {
        if let Some(item) = sole_element(value) {
            let parsed = sole(value, item, out.len(), |item| parse(owner, item));
            out.push(parsed.map_err(|kind| ParseError::value(name.clone(), kind))?);
            continue;
        }
        for item in ListSplit::new(value) {
            let item = item.map_err(|kind| ParseError::value(name.clone(), kind))?;
            if item.is_empty() {
                return Err(ParseError::value(name, ValueError::EmptyElement));
            }
            if out.len() == MAX_LIST_VALUES {
                return Err(ParseError::value(name, ValueError::TooManyValues));
            }
            out.push(parse(owner, item).map_err(|kind| ParseError::value(name.clone(), kind))?);
        }
    }
    Ok(out)
}

/// Token lists (Supported, Require, ...): an empty header value is an empty list.
fn tokens(h: &Headers, name: HeaderName) -> Result<Vec<Bytes>, ParseError> {
    let mut out = Vec::new();
    for (owner, value) in h.sourced(&name) {
        if trim(value).is_empty() {
            continue;
        }
        for item in ListSplit::new(value) {
            let item = item.map_err(|kind| ParseError::value(name.clone(), kind))?;
            if !is_token_str(item) {
                return Err(ParseError::value(name, ValueError::InvalidToken));
            }
            if out.len() == MAX_LIST_VALUES {
                return Err(ParseError::value(name, ValueError::TooManyValues));
            }
            out.push(slice_of(owner, item));
        }
    }
    Ok(out)
}

fn raw_all(h: &Headers, name: HeaderName) -> Vec<Bytes> {
    h.sourced(&name)
        .map(|(owner, v)| slice_of(owner, v))
        .collect()
}

fn raw_one(h: &Headers, name: HeaderName) -> Option<Bytes> {
    h.sourced(&name).next().map(|(owner, v)| slice_of(owner, v))
}

#[inline]
fn u32_value(_: &Bytes, s: &[u8]) -> Result<u32, ValueError> {
    parse_u32(trim(s))
}

#[inline]
fn max_forwards(_: &Bytes, s: &[u8]) -> Result<u8, ValueError> {
    let n = crate::scan::parse_u64(trim(s))?;
    u8::try_from(n).map_err(|_| ValueError::OutOfRange)
}

#[inline]
fn call_id(owner: &Bytes, s: &[u8]) -> Result<Bytes, ValueError> {
    let s = trim(s);
    if s.is_empty() || crate::scan::has_space_or_control(s) {
        return Err(ValueError::UnexpectedChar);
    }
    Ok(slice_of(owner, s))
}

fn allow_method(_: &Bytes, s: &[u8]) -> Result<Method, ValueError> {
    Method::from_token(s).ok_or(ValueError::InvalidToken)
}

pub(crate) fn via(h: &Headers) -> Result<Vec<Via>, ParseError> {
    list(h, HeaderName::Via, Via::parse_in)
}

pub(crate) fn top_via(h: &Headers) -> Result<Via, ParseError> {
    let (owner, value) = h
        .sourced(&HeaderName::Via)
        .next()
        .ok_or_else(|| ParseError::MissingHeader(HeaderName::Via))?;
    if let Some(item) = sole_element(value) {
        // `ListSplit` yields `item` (empty included) or an error; Via::parse rejects empty.
        return Via::parse_as(owner, item, |kind| {
            ParseError::value(HeaderName::Via, split_error(value).unwrap_or(kind))
        });
    }
    let first = ListSplit::new(value)
        .next()
        .unwrap_or(Ok(&[]))
        .map_err(|kind| ParseError::value(HeaderName::Via, kind))?;
    Via::parse_as(owner, first, |kind| {
        ParseError::value(HeaderName::Via, kind)
    })
}

pub(crate) fn via_ref(h: &Headers) -> Result<Vec<ViaRef<'_>>, ParseError> {
    list_ref(h, HeaderName::Via, ViaRef::parse)
}

pub(crate) fn top_via_ref(h: &Headers) -> Result<ViaRef<'_>, ParseError> {
    let value = h
        .get(&HeaderName::Via)
        .ok_or_else(|| ParseError::MissingHeader(HeaderName::Via))?;
    if let Some(item) = sole_element(value) {
        return ViaRef::parse(item).map_err(|kind| {
            ParseError::value(HeaderName::Via, split_error(value).unwrap_or(kind))
        });
    }
    let first = ListSplit::new(value)
        .next()
        .unwrap_or(Ok(&[]))
        .map_err(|kind| ParseError::value(HeaderName::Via, kind))?;
    ViaRef::parse(first).map_err(|kind| ParseError::value(HeaderName::Via, kind))
}

pub(crate) fn name_addr_ref(h: &Headers, name: HeaderName) -> Result<NameAddrRef<'_>, ParseError> {
    match single(h, &name)? {
        Some((_, value)) => NameAddrRef::parse(value).map_err(|kind| ParseError::value(name, kind)),
        None => Err(ParseError::MissingHeader(name)),
    }
}

pub(crate) fn call_id_ref(h: &Headers) -> Result<&[u8], ParseError> {
    let name = HeaderName::CallId;
    match single(h, &name)? {
        Some((_, s)) => {
            let s = trim(s);
            if s.is_empty() || crate::scan::has_space_or_control(s) {
                return Err(ParseError::value(name, ValueError::UnexpectedChar));
            }
            Ok(s)
        }
        None => Err(ParseError::MissingHeader(name)),
    }
}

pub(crate) fn contacts_ref(h: &Headers) -> Result<Vec<ContactRef<'_>>, ParseError> {
    let contacts = list_ref(h, HeaderName::Contact, ContactRef::parse)?;
    if contacts.len() > 1 && contacts.iter().any(ContactRef::is_wildcard) {
        return Err(ParseError::value(
            HeaderName::Contact,
            ValueError::UnexpectedChar,
        ));
    }
    Ok(contacts)
}

pub(crate) fn name_addrs_ref(
    h: &Headers,
    name: HeaderName,
) -> Result<Vec<NameAddrRef<'_>>, ParseError> {
    list_ref(h, name, NameAddrRef::parse)
}

/// [`list`] for borrowed views.
#[inline]
fn list_ref<'a, T>(
    h: &'a Headers,
    name: HeaderName,
    parse: impl Fn(&'a [u8]) -> Result<T, ValueError>,
) -> Result<Vec<T>, ParseError> {
    let mut out = Vec::with_capacity(if std::mem::size_of::<T>() > 256 { 1 } else { 4 });
    for value in h.get_all(&name) {
        if let Some(item) = sole_element(value) {
            let parsed = sole(value, item, out.len(), &parse);
            out.push(parsed.map_err(|kind| ParseError::value(name.clone(), kind))?);
            continue;
        }
        for item in ListSplit::new(value) {
            let item = item.map_err(|kind| ParseError::value(name.clone(), kind))?;
            if item.is_empty() {
                return Err(ParseError::value(name, ValueError::EmptyElement));
            }
            if out.len() == MAX_LIST_VALUES {
                return Err(ParseError::value(name, ValueError::TooManyValues));
            }
            out.push(parse(item).map_err(|kind| ParseError::value(name.clone(), kind))?);
        }
    }
    Ok(out)
}

pub(crate) fn from(h: &Headers) -> Result<NameAddr, ParseError> {
    name_addr_field(h, HeaderName::From)
}

/// A mandatory singleton name-addr header, parsed straight into the result.
fn name_addr_field(h: &Headers, name: HeaderName) -> Result<NameAddr, ParseError> {
    match single(h, &name)? {
        Some((owner, value)) => NameAddr::parse_field(name, owner, value),
        None => Err(ParseError::MissingHeader(name)),
    }
}

pub(crate) fn to(h: &Headers) -> Result<NameAddr, ParseError> {
    name_addr_field(h, HeaderName::To)
}

pub(crate) fn call_id_of(h: &Headers) -> Result<Bytes, ParseError> {
    required(h, HeaderName::CallId, call_id)
}

pub(crate) fn cseq(h: &Headers) -> Result<CSeq, ParseError> {
    required(h, HeaderName::CSeq, CSeq::parse_in)
}

pub(crate) fn max_forwards_of(h: &Headers) -> Result<Option<u8>, ParseError> {
    single_typed(h, HeaderName::MaxForwards, max_forwards)
}

pub(crate) fn contacts(h: &Headers) -> Result<Vec<Contact>, ParseError> {
    let contacts = list(h, HeaderName::Contact, Contact::parse_in)?;
    if contacts.len() > 1 && contacts.iter().any(Contact::is_wildcard) {
        return Err(ParseError::value(
            HeaderName::Contact,
            ValueError::UnexpectedChar,
        ));
    }
    Ok(contacts)
}

pub(crate) fn name_addrs(h: &Headers, name: HeaderName) -> Result<Vec<NameAddr>, ParseError> {
    list(h, name, NameAddr::parse_in)
}

pub(crate) fn delta(h: &Headers, name: HeaderName) -> Result<Option<u32>, ParseError> {
    single_typed(h, name, u32_value)
}

pub(crate) fn token_list(h: &Headers, name: HeaderName) -> Result<Vec<Bytes>, ParseError> {
    tokens(h, name)
}

pub(crate) fn allow(h: &Headers) -> Result<Vec<Method>, ParseError> {
    let mut out = Vec::new();
    for (owner, value) in h.sourced(&HeaderName::Allow) {
        if trim(value).is_empty() {
            continue;
        }
        for item in ListSplit::new(value) {
            let item = item.map_err(|kind| ParseError::value(HeaderName::Allow, kind))?;
            out.push(
                allow_method(owner, item)
                    .map_err(|kind| ParseError::value(HeaderName::Allow, kind))?,
            );
        }
    }
    Ok(out)
}

pub(crate) fn raw(h: &Headers, name: HeaderName) -> Option<Bytes> {
    raw_one(h, name)
}

pub(crate) fn raws(h: &Headers, name: HeaderName) -> Vec<Bytes> {
    raw_all(h, name)
}

pub(crate) fn content_type(h: &Headers) -> Result<Option<MediaType>, ParseError> {
    single_typed(h, HeaderName::ContentType, MediaType::parse_in)
}

pub(crate) fn session_expires(h: &Headers) -> Result<Option<SessionExpires>, ParseError> {
    single_typed(h, HeaderName::SessionExpires, misc::session_expires)
}

pub(crate) fn min_se(h: &Headers) -> Result<Option<u32>, ParseError> {
    single_typed(h, HeaderName::MinSe, misc::delta_with_params)
}

pub(crate) fn retry_after(h: &Headers) -> Result<Option<RetryAfter>, ParseError> {
    single_typed(h, HeaderName::RetryAfter, misc::retry_after)
}

pub(crate) fn reason(h: &Headers) -> Result<Vec<Reason>, ParseError> {
    list(h, HeaderName::Reason, misc::reason)
}

pub(crate) fn event(h: &Headers) -> Result<Option<Event>, ParseError> {
    single_typed(h, HeaderName::Event, misc::event)
}

pub(crate) fn subscription_state(h: &Headers) -> Result<Option<SubscriptionState>, ParseError> {
    single_typed(h, HeaderName::SubscriptionState, misc::subscription_state)
}

pub(crate) fn refer_to(h: &Headers) -> Result<Option<NameAddr>, ParseError> {
    single_typed(h, HeaderName::ReferTo, NameAddr::parse_in)
}

pub(crate) fn replaces(h: &Headers) -> Result<Option<Replaces>, ParseError> {
    single_typed(h, HeaderName::Replaces, misc::replaces)
}

/// Generates the typed accessors inside an `impl` block whose type has `fn hdrs(&self) ->
/// &Headers`.
macro_rules! typed_accessors {
    () => {
        /// Every Via value, top first.
        pub fn via(&self) -> Result<Vec<$crate::Via>, $crate::ParseError> {
            $crate::typed::via(self.hdrs())
        }
        /// The topmost Via value (parses only that one).
        pub fn top_via(&self) -> Result<$crate::Via, $crate::ParseError> {
            $crate::typed::top_via(self.hdrs())
        }
        /// From (mandatory, singleton).
        pub fn from(&self) -> Result<$crate::NameAddr, $crate::ParseError> {
            $crate::typed::from(self.hdrs())
        }
        /// To (mandatory, singleton).
        pub fn to(&self) -> Result<$crate::NameAddr, $crate::ParseError> {
            $crate::typed::to(self.hdrs())
        }
        /// Call-ID (mandatory, singleton).
        pub fn call_id(&self) -> Result<bytes::Bytes, $crate::ParseError> {
            $crate::typed::call_id_of(self.hdrs())
        }
        /// CSeq (mandatory, singleton).
        pub fn cseq(&self) -> Result<$crate::CSeq, $crate::ParseError> {
            $crate::typed::cseq(self.hdrs())
        }
        /// Max-Forwards (0..=255), `None` when absent.
        pub fn max_forwards(&self) -> Result<Option<u8>, $crate::ParseError> {
            $crate::typed::max_forwards_of(self.hdrs())
        }
        /// Every Contact value (`*` included); empty when absent.
        pub fn contacts(&self) -> Result<Vec<$crate::Contact>, $crate::ParseError> {
            $crate::typed::contacts(self.hdrs())
        }
        /// Route values, top first.
        pub fn route(&self) -> Result<Vec<$crate::NameAddr>, $crate::ParseError> {
            $crate::typed::name_addrs(self.hdrs(), $crate::HeaderName::Route)
        }
        /// Record-Route values, top first.
        pub fn record_route(&self) -> Result<Vec<$crate::NameAddr>, $crate::ParseError> {
            $crate::typed::name_addrs(self.hdrs(), $crate::HeaderName::RecordRoute)
        }
        /// Path values (RFC 3327), top first.
        pub fn path(&self) -> Result<Vec<$crate::NameAddr>, $crate::ParseError> {
            $crate::typed::name_addrs(self.hdrs(), $crate::HeaderName::Path)
        }
        /// Expires (delta-seconds).
        pub fn expires(&self) -> Result<Option<u32>, $crate::ParseError> {
            $crate::typed::delta(self.hdrs(), $crate::HeaderName::Expires)
        }
        /// Min-Expires (delta-seconds).
        pub fn min_expires(&self) -> Result<Option<u32>, $crate::ParseError> {
            $crate::typed::delta(self.hdrs(), $crate::HeaderName::MinExpires)
        }
        /// Supported option tags.
        pub fn supported(&self) -> Result<Vec<bytes::Bytes>, $crate::ParseError> {
            $crate::typed::token_list(self.hdrs(), $crate::HeaderName::Supported)
        }
        /// Require option tags.
        pub fn require(&self) -> Result<Vec<bytes::Bytes>, $crate::ParseError> {
            $crate::typed::token_list(self.hdrs(), $crate::HeaderName::Require)
        }
        /// Proxy-Require option tags.
        pub fn proxy_require(&self) -> Result<Vec<bytes::Bytes>, $crate::ParseError> {
            $crate::typed::token_list(self.hdrs(), $crate::HeaderName::ProxyRequire)
        }
        /// Unsupported option tags.
        pub fn unsupported(&self) -> Result<Vec<bytes::Bytes>, $crate::ParseError> {
            $crate::typed::token_list(self.hdrs(), $crate::HeaderName::Unsupported)
        }
        /// Allow methods.
        pub fn allow(&self) -> Result<Vec<$crate::Method>, $crate::ParseError> {
            $crate::typed::allow(self.hdrs())
        }
        /// User-Agent value, raw.
        pub fn user_agent(&self) -> Option<bytes::Bytes> {
            $crate::typed::raw(self.hdrs(), $crate::HeaderName::UserAgent)
        }
        /// Server value, raw.
        pub fn server(&self) -> Option<bytes::Bytes> {
            $crate::typed::raw(self.hdrs(), $crate::HeaderName::Server)
        }
        /// Content-Type.
        pub fn content_type(&self) -> Result<Option<$crate::MediaType>, $crate::ParseError> {
            $crate::typed::content_type(self.hdrs())
        }
        /// Content-Length header value (not the body length).
        pub fn content_length(&self) -> Result<Option<u32>, $crate::ParseError> {
            $crate::typed::delta(self.hdrs(), $crate::HeaderName::ContentLength)
        }
        /// Session-Expires (RFC 4028).
        pub fn session_expires(
            &self,
        ) -> Result<Option<$crate::SessionExpires>, $crate::ParseError> {
            $crate::typed::session_expires(self.hdrs())
        }
        /// Min-SE (RFC 4028).
        pub fn min_se(&self) -> Result<Option<u32>, $crate::ParseError> {
            $crate::typed::min_se(self.hdrs())
        }
        /// Retry-After.
        pub fn retry_after(&self) -> Result<Option<$crate::RetryAfter>, $crate::ParseError> {
            $crate::typed::retry_after(self.hdrs())
        }
        /// Reason values (RFC 3326).
        pub fn reason(&self) -> Result<Vec<$crate::Reason>, $crate::ParseError> {
            $crate::typed::reason(self.hdrs())
        }
        /// Event (RFC 6665).
        pub fn event(&self) -> Result<Option<$crate::Event>, $crate::ParseError> {
            $crate::typed::event(self.hdrs())
        }
        /// Subscription-State (RFC 6665).
        pub fn subscription_state(
            &self,
        ) -> Result<Option<$crate::SubscriptionState>, $crate::ParseError> {
            $crate::typed::subscription_state(self.hdrs())
        }
        /// Refer-To (RFC 3515).
        pub fn refer_to(&self) -> Result<Option<$crate::NameAddr>, $crate::ParseError> {
            $crate::typed::refer_to(self.hdrs())
        }
        /// Replaces (RFC 3891).
        pub fn replaces(&self) -> Result<Option<$crate::Replaces>, $crate::ParseError> {
            $crate::typed::replaces(self.hdrs())
        }
        /// Authorization values, raw (parse with the digest crate).
        pub fn authorization(&self) -> Vec<bytes::Bytes> {
            $crate::typed::raws(self.hdrs(), $crate::HeaderName::Authorization)
        }
        /// Proxy-Authorization values, raw.
        pub fn proxy_authorization(&self) -> Vec<bytes::Bytes> {
            $crate::typed::raws(self.hdrs(), $crate::HeaderName::ProxyAuthorization)
        }
        /// WWW-Authenticate values, raw.
        pub fn www_authenticate(&self) -> Vec<bytes::Bytes> {
            $crate::typed::raws(self.hdrs(), $crate::HeaderName::WwwAuthenticate)
        }
        /// Every Via value, top first, borrowed (see [`ViaRef`](crate::ViaRef)).
        pub fn via_ref(&self) -> Result<Vec<$crate::ViaRef<'_>>, $crate::ParseError> {
            $crate::typed::via_ref(self.hdrs())
        }
        /// The topmost Via value, borrowed: the checks of `top_via()`, no copy.
        pub fn top_via_ref(&self) -> Result<$crate::ViaRef<'_>, $crate::ParseError> {
            $crate::typed::top_via_ref(self.hdrs())
        }
        /// From, borrowed: the checks of `from()`, no copy.
        pub fn from_ref(&self) -> Result<$crate::NameAddrRef<'_>, $crate::ParseError> {
            $crate::typed::name_addr_ref(self.hdrs(), $crate::HeaderName::From)
        }
        /// To, borrowed: the checks of `to()`, no copy.
        pub fn to_ref(&self) -> Result<$crate::NameAddrRef<'_>, $crate::ParseError> {
            $crate::typed::name_addr_ref(self.hdrs(), $crate::HeaderName::To)
        }
        /// Call-ID, borrowed: the checks of `call_id()`, no copy.
        pub fn call_id_ref(&self) -> Result<&[u8], $crate::ParseError> {
            $crate::typed::call_id_ref(self.hdrs())
        }
        /// Every Contact value, borrowed: the checks of `contacts()`, no copy.
        pub fn contacts_ref(&self) -> Result<Vec<$crate::ContactRef<'_>>, $crate::ParseError> {
            $crate::typed::contacts_ref(self.hdrs())
        }
        /// Route values, borrowed.
        pub fn route_ref(&self) -> Result<Vec<$crate::NameAddrRef<'_>>, $crate::ParseError> {
            $crate::typed::name_addrs_ref(self.hdrs(), $crate::HeaderName::Route)
        }
        /// Record-Route values, borrowed.
        pub fn record_route_ref(&self) -> Result<Vec<$crate::NameAddrRef<'_>>, $crate::ParseError> {
            $crate::typed::name_addrs_ref(self.hdrs(), $crate::HeaderName::RecordRoute)
        }
        /// Path values, borrowed.
        pub fn path_ref(&self) -> Result<Vec<$crate::NameAddrRef<'_>>, $crate::ParseError> {
            $crate::typed::name_addrs_ref(self.hdrs(), $crate::HeaderName::Path)
        }
        /// Proxy-Authenticate values, raw.
        pub fn proxy_authenticate(&self) -> Vec<bytes::Bytes> {
            $crate::typed::raws(self.hdrs(), $crate::HeaderName::ProxyAuthenticate)
        }
    };
}

pub(crate) use typed_accessors;

impl Headers {
    fn hdrs(&self) -> &Headers {
        self
    }

    typed_accessors!();
}

#[cfg(test)]
mod tests;
