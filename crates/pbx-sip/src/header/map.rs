//! The ordered header list. Received fields point into the message buffer (no copy, no
//! per-field allocation); fields that are added or changed own their value.

use std::mem::{Discriminant, discriminant};

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderName;
use crate::error::ValueError;
use crate::scan::{ListSplit, slice_of};

/// The header fields of a message, in order.
///
/// Values are the field value after line unfolding, with leading and trailing whitespace
/// removed. Fields that were received and not changed are printed back byte-identical
/// (original name spelling, spacing and folding).
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// Buffer the received fields point into.
    buf: Bytes,
    fields: Vec<Field>,
    /// Values not in `buf` (unfolded on receipt, or set by the application).
    owned: Vec<Bytes>,
    /// Hot singleton headers (see [`singleton_bit`]) present among the fields, and those
    /// present more than once: lets the singleton accessors stop at the first match instead
    /// of scanning every field for a duplicate. Valid only while `counted`, i.e. while every
    /// field was appended by the parser; any other change clears `counted`.
    seen: u16,
    dup: u16,
    counted: bool,
}

/// The bit of a singleton header counted at parse time, or 0.
#[inline]
fn singleton_bit(name: &HeaderName) -> u16 {
    match name {
        HeaderName::From => 1,
        HeaderName::To => 2,
        HeaderName::CallId => 4,
        HeaderName::CSeq => 8,
        HeaderName::MaxForwards => 16,
        HeaderName::ContentLength => 32,
        HeaderName::ContentType => 64,
        HeaderName::Expires => 128,
        _ => 0,
    }
}

#[derive(Debug, Clone)]
struct Field {
    /// Discriminant of `name`, compared first (cheaper than `HeaderName::eq`).
    kind: Discriminant<HeaderName>,
    name: HeaderName,
    /// Original line (name through end of value, excluding the final CRLF) in `buf`, or
    /// [`Span::NONE`] for a field that was added or changed.
    raw: Span,
    /// The value: a range in `buf`, or (with [`Span::OWNED`] set in `start`) an index into
    /// `owned`. Two `u32`s keep a field at 64 octets, so 16 fit one small allocation.
    value: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };
    const OWNED: u32 = 1 << 31;
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_buffer(buf: Bytes, capacity: usize) -> Self {
        Self {
            buf,
            fields: Vec::with_capacity(capacity),
            owned: Vec::new(),
            seen: 0,
            dup: 0,
            counted: true,
        }
    }

    /// Appends a received field. `line` and `value` are ranges in the buffer.
    #[inline]
    pub(crate) fn push_received(
        &mut self,
        name: HeaderName,
        line: (usize, usize),
        value: (usize, usize),
    ) {
        self.note_singleton(&name);
        self.fields.push(Field {
            kind: discriminant(&name),
            name,
            raw: span(line),
            value: span(value),
        });
    }

    /// Appends a received folded field with its unfolded value.
    pub(crate) fn push_received_unfolded(
        &mut self,
        name: HeaderName,
        line: (usize, usize),
        value: Bytes,
    ) {
        self.note_singleton(&name);
        let value = self.own(value);
        self.fields.push(Field {
            kind: discriminant(&name),
            name,
            raw: span(line),
            value,
        });
    }

    #[inline]
    fn note_singleton(&mut self, name: &HeaderName) {
        let bit = singleton_bit(name);
        self.dup |= self.seen & bit;
        self.seen |= bit;
    }

    /// Number of header fields (lines, not comma-separated values).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields in order as (name, value).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            headers: self,
            index: 0,
        }
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.is(name))
            .map(|f| self.value_of(f))
    }

    /// The value of the first field named `name` as `Bytes` (refcount only).
    pub fn get_bytes(&self, name: &HeaderName) -> Option<Bytes> {
        self.fields
            .iter()
            .find(|f| f.is(name))
            .map(|f| self.bytes_of(f))
    }

    /// The values of every field named `name`, in order (one per field, not split).
    pub fn get_all(&self, name: &HeaderName) -> impl Iterator<Item = &[u8]> + '_ {
        let name = name.clone();
        self.fields
            .iter()
            .filter(move |f| f.is(&name))
            .map(|f| self.value_of(f))
    }

    /// Every comma-separated value of every field named `name`, in order (quote- and
    /// `<>`-aware). Empty elements are returned as errors.
    pub fn values(
        &self,
        name: &HeaderName,
    ) -> impl Iterator<Item = Result<&[u8], ValueError>> + '_ {
        self.get_all(name)
            .flat_map(ListSplit::new)
            .map(|r| match r {
                Ok([]) => Err(ValueError::EmptyElement),
                other => other,
            })
    }

    /// Like [`Headers::values`], with each value paired with the buffer that owns it, for
    /// zero-copy typed parsing.
    pub(crate) fn sourced(&self, name: &HeaderName) -> impl Iterator<Item = (&Bytes, &[u8])> + '_ {
        let name = name.clone();
        self.fields.iter().filter(move |f| f.is(&name)).map(|f| {
            let owner = self.owner_of(f);
            (owner, self.value_of(f))
        })
    }

    /// The one field named `name` as (owning buffer, value): `Ok(None)` when absent,
    /// `Err(())` when there are several (one pass, no iterator adapters: the singleton
    /// accessors run on every message).
    #[inline]
    pub(crate) fn single_sourced(&self, name: &HeaderName) -> Result<Option<(&Bytes, &[u8])>, ()> {
        let bit = singleton_bit(name);
        if self.counted && bit != 0 {
            if self.dup & bit != 0 {
                return Err(());
            }
            if self.seen & bit == 0 {
                return Ok(None);
            }
            return Ok(self
                .fields
                .iter()
                .find(|f| f.is(name))
                .map(|f| (self.owner_of(f), self.value_of(f))));
        }
        let mut fields = self.fields.iter();
        let Some(first) = fields.by_ref().find(|f| f.is(name)) else {
            return Ok(None);
        };
        if fields.any(|f| f.is(name)) {
            return Err(());
        }
        Ok(Some((self.owner_of(first), self.value_of(first))))
    }

    /// All fields in order as (name, value as `Bytes`), the value sliced from the message
    /// buffer (refcount only).
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&HeaderName, Bytes)> + '_ {
        self.fields.iter().map(|f| (&f.name, self.bytes_of(f)))
    }

    /// All fields as (name, owning buffer, value), for zero-copy slicing of chosen fields.
    pub(crate) fn iter_sourced(&self) -> impl Iterator<Item = (&HeaderName, &Bytes, &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (&f.name, self.owner_of(f), self.value_of(f)))
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.fields.iter().filter(|f| f.is(name)).count()
    }

    /// Whether a field named `name` exists.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.fields.iter().any(|f| f.is(name))
    }

    /// Appends a field.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.counted = false;
        let field = self.new_field(name, value.into());
        self.fields.push(field);
    }

    /// Inserts a field before the first field of the same name (the top of the list, as
    /// for a new Via or Record-Route), or at the very top when there is none.
    pub fn insert_first(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.counted = false;
        let at = self.fields.iter().position(|f| f.is(&name)).unwrap_or(0);
        let field = self.new_field(name, value.into());
        self.fields.insert(at, field);
    }

    /// Removes every field named `name`; returns how many were removed.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        self.counted = false;
        let before = self.fields.len();
        self.fields.retain(|f| !f.is(name));
        before - self.fields.len()
    }

    /// Replaces every field named `name` by one field with `value`, at the position of the
    /// first one (or at the end).
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.counted = false;
        let field = self.new_field(name, value.into());
        match self.fields.iter().position(|f| f.is(&field.name)) {
            Some(at) => {
                let name = field.name.clone();
                self.fields[at] = field;
                let mut index = 0;
                self.fields.retain(|f| {
                    let keep = index <= at || !f.is(&name);
                    index += 1;
                    keep
                });
            }
            None => self.fields.push(field),
        }
    }

    /// Removes the topmost *value* of `name` (for Via: the top Via, even when several
    /// values share one field line) and returns it.
    pub fn remove_first_value(&mut self, name: &HeaderName) -> Option<Bytes> {
        self.counted = false;
        let at = self.fields.iter().position(|f| f.is(name))?;
        let owner = self.bytes_of(&self.fields[at]);
        let mut split = ListSplit::new(&owner);
        let first = match split.next() {
            Some(Ok(first)) => slice_of(&owner, first),
            _ => owner.clone(),
        };
        let rest: Vec<&[u8]> = split.filter_map(Result::ok).collect();
        if rest.is_empty() {
            self.fields.remove(at);
        } else {
            let joined = rest.join(&b", "[..]);
            let value = self.own(Bytes::from(joined));
            self.fields[at].raw = Span::NONE;
            self.fields[at].value = value;
        }
        Some(first)
    }

    /// Prints every field followed by CRLF.
    pub fn write_to(&self, out: &mut BytesMut) {
        for f in &self.fields {
            match f.raw {
                Span::NONE => {
                    out.put_slice(f.name.as_bytes());
                    out.put_slice(b": ");
                    out.put_slice(self.value_of(f));
                }
                s => out.put_slice(&self.buf[s.start as usize..s.end as usize]),
            }
            out.put_slice(b"\r\n");
        }
    }

    /// Octets [`Headers::write_to`] will print (for buffer sizing).
    pub(crate) fn printed_len(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match f.raw {
                Span::NONE => f.name.as_bytes().len() + 4 + self.value_of(f).len(),
                s => (s.end - s.start) as usize + 2,
            })
            .sum()
    }

    fn new_field(&mut self, name: HeaderName, value: Bytes) -> Field {
        Field {
            kind: discriminant(&name),
            name,
            raw: Span::NONE,
            value: self.own(value),
        }
    }

    fn own(&mut self, value: Bytes) -> Span {
        let index = self.owned.len() as u32;
        self.owned.push(value);
        Span {
            start: Span::OWNED | index,
            end: 0,
        }
    }

    /// The buffer a field's value lives in.
    #[inline]
    fn owner_of(&self, f: &Field) -> &Bytes {
        if f.value.start & Span::OWNED != 0 {
            self.owned
                .get((f.value.start & !Span::OWNED) as usize)
                .unwrap_or(&self.buf)
        } else {
            &self.buf
        }
    }

    #[inline]
    fn value_of<'a>(&'a self, f: &Field) -> &'a [u8] {
        if f.value.start & Span::OWNED != 0 {
            self.owned
                .get((f.value.start & !Span::OWNED) as usize)
                .map_or(&[], |b| &b[..])
        } else {
            &self.buf[f.value.start as usize..f.value.end as usize]
        }
    }

    fn bytes_of(&self, f: &Field) -> Bytes {
        slice_of(self.owner_of(f), self.value_of(f))
    }
}

impl Field {
    #[inline]
    fn is(&self, name: &HeaderName) -> bool {
        self.kind == discriminant(name)
            && (!matches!(name, HeaderName::Other(_)) || self.name == *name)
    }
}

#[cfg(test)]
pub(crate) fn field_size() -> usize {
    std::mem::size_of::<Field>()
}

fn span((start, end): (usize, usize)) -> Span {
    // Message size is capped far below 4 GiB by `Limits`, so offsets fit u32.
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// Iterator over (name, value) of all header fields.
#[derive(Debug)]
pub struct Iter<'a> {
    headers: &'a Headers,
    index: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a HeaderName, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let f = self.headers.fields.get(self.index)?;
        self.index += 1;
        Some((&f.name, self.headers.value_of(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Headers {
        let mut h = Headers::new();
        h.push(
            HeaderName::Via,
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        h.push(HeaderName::To, "<sip:b@x>");
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        h
    }

    #[test]
    fn get_push_insert_set_remove() {
        let mut h = sample();
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(&HeaderName::To), Some(&b"<sip:b@x>"[..]));
        assert_eq!(h.values(&HeaderName::Via).count(), 3);
        h.insert_first(HeaderName::Via, "SIP/2.0/TCP top;branch=z9hG4bK0");
        assert_eq!(
            h.get(&HeaderName::Via),
            Some(&b"SIP/2.0/TCP top;branch=z9hG4bK0"[..])
        );
        assert_eq!(
            h.remove_first_value(&HeaderName::Via).unwrap(),
            "SIP/2.0/TCP top;branch=z9hG4bK0"
        );
        assert_eq!(
            h.remove_first_value(&HeaderName::Via).unwrap(),
            "SIP/2.0/UDP a;branch=z9hG4bK1"
        );
        assert_eq!(
            h.get(&HeaderName::Via),
            Some(&b"SIP/2.0/UDP b;branch=z9hG4bK2"[..])
        );
        h.set(HeaderName::Via, "SIP/2.0/UDP only");
        assert_eq!(h.count(&HeaderName::Via), 1);
        assert_eq!(h.remove(&HeaderName::Via), 1);
        assert!(!h.contains(&HeaderName::Via));
        h.insert_first(HeaderName::Route, "<sip:r;lr>");
        assert_eq!(h.iter().next().unwrap().0, &HeaderName::Route);
    }

    #[test]
    fn singleton_counts_follow_every_change() {
        let buf = Bytes::from_static(b"From: a\r\nTo: b\r\nFrom: c\r\n");
        let mut h = Headers::with_buffer(buf, 4);
        h.push_received(HeaderName::From, (0, 7), (6, 7));
        h.push_received(HeaderName::To, (9, 14), (13, 14));
        assert_eq!(
            h.single_sourced(&HeaderName::From).map(|v| v.map(|v| v.1)),
            Ok(Some(&b"a"[..]))
        );
        assert_eq!(h.single_sourced(&HeaderName::CallId), Ok(None));
        h.push_received(HeaderName::From, (16, 23), (22, 23));
        assert_eq!(h.single_sourced(&HeaderName::From), Err(()));
        // After an edit the counts are not trusted: the full scan answers.
        let mut edited = h.clone();
        edited.remove(&HeaderName::From);
        assert_eq!(edited.single_sourced(&HeaderName::From), Ok(None));
        let mut edited = h.clone();
        edited.set(HeaderName::From, "x");
        assert_eq!(
            edited
                .single_sourced(&HeaderName::From)
                .map(|v| v.map(|v| v.1)),
            Ok(Some(&b"x"[..]))
        );
        let mut edited = h.clone();
        edited.push(HeaderName::CallId, "c1");
        edited.insert_first(HeaderName::CallId, "c0");
        assert_eq!(edited.single_sourced(&HeaderName::CallId), Err(()));
        let mut edited = h;
        assert!(edited.remove_first_value(&HeaderName::From).is_some());
        assert_eq!(
            edited
                .single_sourced(&HeaderName::From)
                .map(|v| v.map(|v| v.1)),
            Ok(Some(&b"c"[..]))
        );
        let mut fresh = Headers::new();
        fresh.push(HeaderName::To, "t");
        assert_eq!(
            fresh
                .single_sourced(&HeaderName::To)
                .map(|v| v.map(|v| v.1)),
            Ok(Some(&b"t"[..]))
        );
    }

    #[test]
    fn printing_uses_canonical_names_for_new_fields() {
        let mut out = BytesMut::new();
        sample().write_to(&mut out);
        assert!(out.starts_with(b"Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"));
        assert!(out.ends_with(b"To: <sip:b@x>\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK3\r\n"));
        assert_eq!(out.len(), sample().printed_len());
    }
}
