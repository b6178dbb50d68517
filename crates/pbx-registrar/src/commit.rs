//! Applying a planned change to the in-memory tables (timers, flows) and describing it as
//! effects; building the 200 that lists the AOR's bindings.

use bytes::{BufMut, Bytes, BytesMut};
use pbx_domain::UserId;
use pbx_sip::{HeaderName, Request, Response, StatusCode};

use crate::auth::reply_to;
use crate::event::{RegistrationEvent, RemovalReason};
use crate::registrar::{Registrar, expire_task};
use crate::request::{ContactSet, RegisterRequest};
use crate::table::{Entry, Plan};
use crate::types::{BindingKey, Effect, Now};

impl Registrar {
    /// Installs `plan` as the bindings of `user`.
    pub(crate) fn commit(&mut self, user: UserId, plan: Plan, now: Now, effects: &mut Vec<Effect>) {
        let old = self.aors.remove(&user).unwrap_or_default();
        for (list, reason) in [
            (plan.unregistered, RemovalReason::Unregistered),
            (plan.evicted, RemovalReason::Evicted),
        ] {
            for entry in list {
                // Release what the stored version holds (timer, flow), which a binding
                // refreshed earlier in the same request no longer describes.
                let stored = old
                    .iter()
                    .find(|previous| previous.id == entry.id)
                    .cloned()
                    .unwrap_or(entry);
                self.release(user, &stored);
                self.removed_effects(stored, reason, effects);
            }
        }
        let mut entries = Vec::with_capacity(plan.entries.len());
        for mut entry in plan.entries {
            if entry.timer.is_some() {
                // Not named by this request: unchanged.
                entries.push(entry);
                continue;
            }
            let key = BindingKey::of(&entry.record);
            let expires_secs = entry.remaining_secs(now.instant);
            match old.iter().find(|previous| previous.id == entry.id) {
                Some(previous) => {
                    self.release(user, previous);
                    if !previous.record.same_key(&entry.record) {
                        effects.push(Effect::DeleteBinding(BindingKey::of(&previous.record)));
                    }
                    if entry.record.is_refresh_of(&previous.record) {
                        // A plain refresh is written back only when the store's copy would
                        // otherwise lapse early: when less than half of the newly granted
                        // lifetime is left on it (or it would outlive the new expiry). Phones
                        // that re-register every minute for their NAT (expiry an hour) cost
                        // one write per half hour instead of thirty; after a crash a restored
                        // binding keeps at least half its lifetime, and phones re-register
                        // by then.
                        let stored = previous.stored_expires_at_ms;
                        let new = entry.record.expires_at_ms;
                        let granted = new.saturating_sub(now.unix_ms);
                        let lasts = stored.saturating_sub(now.unix_ms) >= granted / 2;
                        if self.config.persist_refreshes_lazily && lasts && stored <= new {
                            entry.stored_expires_at_ms = stored;
                        } else {
                            entry.stored_expires_at_ms = new;
                            effects.push(Effect::RefreshBinding(entry.record.clone()));
                        }
                    } else {
                        entry.stored_expires_at_ms = entry.record.expires_at_ms;
                        effects.push(Effect::PersistBinding(entry.record.clone()));
                    }
                    effects.push(Effect::Event(RegistrationEvent::Refreshed {
                        key,
                        flow: entry.flow,
                        expires_secs,
                    }));
                }
                None => {
                    entry.stored_expires_at_ms = entry.record.expires_at_ms;
                    effects.push(Effect::PersistBinding(entry.record.clone()));
                    effects.push(Effect::Event(RegistrationEvent::Registered {
                        key,
                        contact: entry.record.contact_uri.clone(),
                        flow: entry.flow,
                        behind_nat: entry.behind_nat,
                        expires_secs,
                    }));
                }
            }
            entry.timer = Some(
                self.timers
                    .insert(entry.expires_at, expire_task(user, &entry)),
            );
            self.flow_attach(user, entry.id, entry.flow, now.instant);
            entries.push(entry);
        }
        if !entries.is_empty() {
            self.aors.insert(user, entries);
        }
    }

    /// Adds one binding (restore).
    pub(crate) fn insert_entry(&mut self, user: UserId, mut entry: Entry, now: Now) {
        entry.timer = Some(
            self.timers
                .insert(entry.expires_at, expire_task(user, &entry)),
        );
        self.flow_attach(user, entry.id, entry.flow, now.instant);
        self.aors.entry(user).or_default().push(entry);
    }

    /// Removes the bindings of `user` matching `which`, with their timers and flow
    /// membership.
    pub(crate) fn take_entries(
        &mut self,
        user: UserId,
        which: impl Fn(&Entry) -> bool,
    ) -> Vec<Entry> {
        let Some(entries) = self.aors.get_mut(&user) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<Entry>, Vec<Entry>) = entries.drain(..).partition(|e| which(e));
        if kept.is_empty() {
            self.aors.remove(&user);
        } else {
            *entries = kept;
        }
        for entry in &taken {
            self.release(user, entry);
        }
        taken
    }

    /// The effects of a removed binding: delete it and say why.
    pub(crate) fn removed_effects(
        &self,
        entry: Entry,
        reason: RemovalReason,
        effects: &mut Vec<Effect>,
    ) {
        let key = BindingKey::of(&entry.record);
        effects.push(Effect::DeleteBinding(key.clone()));
        effects.push(Effect::Event(RegistrationEvent::Removed { key, reason }));
    }

    fn release(&mut self, user: UserId, entry: &Entry) {
        if let Some(slot) = entry.timer {
            self.timers.remove(slot);
        }
        self.flow_detach(user, entry.id, &entry.flow);
    }

    /// The 200 for a processed REGISTER: every binding of the AOR with its remaining
    /// expiry (RFC 3261 §10.3 step 8), Path echoed when the device supports it (RFC 3327
    /// §5.3), `Require: outbound` when a flow was registered (RFC 5626 §6).
    pub(crate) fn ok(
        &self,
        request: &Request,
        register: &RegisterRequest,
        user: UserId,
        now: Now,
    ) -> Response {
        let mut response = reply_to(request, &self.ids, StatusCode::OK);
        let headers = response.headers_mut();
        for entry in self.aors.get(&user).map(Vec::as_slice).unwrap_or_default() {
            headers.push(HeaderName::Contact, contact_value(entry, now));
        }
        let mut supported = Vec::new();
        let registered = matches!(register.contacts, ContactSet::Addresses(_));
        if registered && register.supports_path && !register.path.is_empty() {
            for hop in &register.path {
                headers.push(HeaderName::Path, Bytes::from(hop.clone()));
            }
            supported.push("path");
        }
        if registered && register.uses_outbound() {
            headers.push(HeaderName::Require, Bytes::from_static(b"outbound"));
            supported.push("outbound");
        }
        if !supported.is_empty() {
            headers.push(HeaderName::Supported, Bytes::from(supported.join(", ")));
        }
        response
    }
}

/// `<uri>;expires=N[;q=..][;+sip.instance="<..>"][;reg-id=..]`.
fn contact_value(entry: &Entry, now: Now) -> Bytes {
    let record = &entry.record;
    let mut out = BytesMut::with_capacity(record.contact_uri.len() + 64);
    out.put_u8(b'<');
    out.put_slice(record.contact_uri.as_bytes());
    out.put_slice(b">;expires=");
    out.put_slice(entry.remaining_secs(now.instant).to_string().as_bytes());
    if let Some(q) = record.q_milli {
        out.put_slice(format!(";q={}.{:03}", q / 1000, q % 1000).as_bytes());
    }
    if let Some(instance) = &record.instance_id {
        out.put_slice(format!(";+sip.instance=\"<{instance}>\"").as_bytes());
    }
    if let Some(reg_id) = record.reg_id {
        out.put_slice(format!(";reg-id={reg_id}").as_bytes());
    }
    out.freeze()
}
