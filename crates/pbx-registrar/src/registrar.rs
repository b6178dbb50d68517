//! The registrar: REGISTER processing, the location service and restore after a restart.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use pbx_domain::{BindingRecord, DirectorySnapshot, TenantId, UserId};
use pbx_sip::{HeaderName, Method, Request, Response, StatusCode, Uri};
use pbx_sip_auth::{NonceCountTracker, Verifier};

use crate::alg::{contact_behind_nat, detect_alg};
use crate::auth::{Account, AuthInput, authenticate, reply_to};
use crate::config::{ConfigError, RegistrarConfig, realm_is_host};
use crate::event::{RegistrationEvent, RemovalReason};
use crate::ids::IdGenerator;
use crate::keepalive::{Flows, Task, Timers};
use crate::request::{ContactRequest, ContactSet, Malformed, RegisterRequest};
use crate::table::{Entry, Grant, PlanError, plan};
use crate::types::{BindingKey, Effect, FlowInfo, Now, Target};

/// What to do with a REGISTER: send `response` on the transaction, then apply `effects` in
/// order (persist/delete bindings, publish events).
#[derive(Debug)]
#[must_use]
pub struct RegisterOutcome {
    /// The final response.
    pub response: Response,
    /// Store writes and events.
    pub effects: Vec<Effect>,
}

/// The sans-IO registrar and location service. See the crate documentation for how to
/// drive it.
#[derive(Debug)]
pub struct Registrar {
    pub(crate) config: RegistrarConfig,
    pub(crate) realm: String,
    pub(crate) ids: IdGenerator,
    pub(crate) aors: HashMap<UserId, Vec<Entry>>,
    pub(crate) timers: Timers,
    pub(crate) flows: Flows,
    next_entry: u64,
}

impl Registrar {
    /// A registrar for `realm` (the digest realm, used in keep-alive From headers).
    /// `seed` should come from a real random source: it makes the branches, tags and nonce
    /// salts this crate generates unpredictable.
    pub fn new(
        config: RegistrarConfig,
        realm: impl Into<String>,
        seed: u64,
    ) -> Result<Registrar, ConfigError> {
        config.validate()?;
        let realm = realm.into();
        if !realm_is_host(&realm) {
            return Err(ConfigError::InvalidRealm);
        }
        Ok(Registrar {
            config,
            realm,
            ids: IdGenerator::new(seed),
            aors: HashMap::new(),
            timers: Timers::default(),
            flows: Flows::default(),
            next_entry: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes a REGISTER that arrived on `flow` (RFC 3261 §10.3): authenticates it
    /// against `directory` with `verifier`, applies the Contacts and answers.
    ///
    /// Answers: 401 (challenge; also for unknown users and wrong passwords, identically),
    /// 400 (malformed credentials; a malformed Contact, Path or Expires once authenticated), 403 (source not whitelisted for a known
    /// account, or more Contacts than the user may have), 423 with Min-Expires, 439 (outbound
    /// through a proxy without outbound support), 500 (CSeq out of order for the same
    /// Call-ID), 200 listing every binding of the AOR with its remaining `expires`.
    pub fn handle_register(
        &mut self,
        now: Now,
        request: &Request,
        flow: FlowInfo,
        directory: &DirectorySnapshot,
        verifier: &Verifier,
        tracker: &mut NonceCountTracker,
    ) -> RegisterOutcome {
        if request.method() != &Method::Register {
            let mut response = reply_to(request, &self.ids, StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .push(HeaderName::Allow, Bytes::from_static(b"REGISTER"));
            return outcome(response, Vec::new());
        }
        // RFC 3261 §10.3 authenticates (step 3) before it looks at the Contacts (steps 6
        // and 7): half of all REGISTERs are challenged, and they need not be read.
        let input = AuthInput {
            request,
            source: flow.source,
            tls: flow.transport == pbx_domain::Transport::Tls,
            now,
            directory,
            verifier,
        };
        let account = match authenticate(&input, tracker, &mut self.ids) {
            Ok(account) => account,
            Err(refusal) => {
                let effects = refusal.event.into_iter().map(Effect::Event).collect();
                return outcome(refusal.response, effects);
            }
        };
        let register = match RegisterRequest::read(request, &self.config) {
            Ok(register) => register,
            Err(malformed) => return outcome(self.error(request, malformed), Vec::new()),
        };
        self.apply(now, request, &register, flow, &account)
    }

    /// The targets to fork a request for `user` to, best first (higher `q`, then most
    /// recently refreshed). Each goes to its flow, with the registered Contact as
    /// Request-URI and the Path as route set.
    pub fn lookup(&self, user: UserId) -> Vec<Target> {
        let Some(entries) = self.aors.get(&user) else {
            return Vec::new();
        };
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by(|a, b| {
            let qa = a.record.q_milli.unwrap_or(1000);
            let qb = b.record.q_milli.unwrap_or(1000);
            qb.cmp(&qa).then(b.refreshed_at.cmp(&a.refreshed_at))
        });
        sorted
            .into_iter()
            .map(|entry| Target {
                key: BindingKey::of(&entry.record),
                request_uri: entry.contact.clone(),
                flow: entry.flow,
                route: entry.record.path.clone(),
                push: entry.record.push.clone(),
                instance_id: entry.record.instance_id.clone(),
                reg_id: entry.record.reg_id,
                q_milli: entry.record.q_milli,
                behind_nat: entry.behind_nat,
            })
            .collect()
    }

    /// The current bindings of `user`, as they would be persisted.
    pub fn bindings(&self, user: UserId) -> Vec<&BindingRecord> {
        self.aors
            .get(&user)
            .map(|entries| entries.iter().map(|entry| &entry.record).collect())
            .unwrap_or_default()
    }

    /// Removes one binding on request of the control plane (an administrator clearing a
    /// registration). Returns the delete and an `administrative` removal event; nothing
    /// when the binding is unknown.
    pub fn remove_binding(&mut self, key: &BindingKey) -> Vec<Effect> {
        let mut effects = Vec::new();
        for entry in self.take_entries(key.user_id, |e| e.record.key() == key.key) {
            self.removed_effects(entry, RemovalReason::Administrative, &mut effects);
        }
        effects
    }

    /// Removes every binding of `user` (user deleted, credentials rotated, tenant
    /// suspended).
    pub fn remove_user(&mut self, user: UserId) -> Vec<Effect> {
        let mut effects = Vec::new();
        for entry in self.take_entries(user, |_| true) {
            self.removed_effects(entry, RemovalReason::Administrative, &mut effects);
        }
        effects
    }

    /// Administrative removal of every binding of `tenant` (the API cleared the tenant's
    /// registrations).
    pub fn remove_tenant(&mut self, tenant: TenantId) -> Vec<Effect> {
        let users: Vec<UserId> = self
            .aors
            .iter()
            .filter(|(_, entries)| entries.iter().any(|entry| entry.record.tenant_id == tenant))
            .map(|(user, _)| *user)
            .collect();
        users
            .into_iter()
            .flat_map(|user| self.remove_user(user))
            .collect()
    }

    /// Number of bindings held.
    pub fn binding_count(&self) -> usize {
        self.aors.values().map(Vec::len).sum()
    }

    /// Number of pending timers (expiries and keep-alives), for metrics and tests.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Reloads persisted bindings after a restart. Bindings that expired meanwhile are
    /// deleted (returned as effects with `expired` events), and so are records whose
    /// Contact no longer parses. Connection ids are dropped (they belonged to the old
    /// process); TCP/TLS bindings stay reachable only if the device reconnects, which it
    /// does on its next keep-alive or refresh. A binding already present is kept.
    pub fn restore(&mut self, records: Vec<BindingRecord>, now: Now) -> Vec<Effect> {
        let mut effects = Vec::new();
        for record in records {
            let left_ms = record.expires_at_ms.saturating_sub(now.unix_ms);
            let contact = Uri::parse(Bytes::from(record.contact_uri.clone()));
            let (Ok(contact), true) = (contact, left_ms > 0) else {
                let key = BindingKey::of(&record);
                effects.push(Effect::DeleteBinding(key.clone()));
                effects.push(Effect::Event(RegistrationEvent::Removed {
                    key,
                    reason: RemovalReason::Expired,
                }));
                continue;
            };
            let user = record.user_id;
            let key = record.key();
            let exists = self
                .aors
                .get(&user)
                .is_some_and(|entries| entries.iter().any(|e| e.record.key() == key));
            if exists {
                continue;
            }
            let flow = FlowInfo::from_restored(&record.flow);
            let behind_nat = contact
                .as_sip()
                .is_some_and(|uri| contact_behind_nat(&uri.host, &flow));
            self.next_entry += 1;
            let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
            let record_expires = record.expires_at_ms;
            let entry = Entry {
                id: self.next_entry,
                record,
                contact,
                flow,
                expires_at: now.instant + left,
                refreshed_at: now.instant,
                behind_nat,
                timer: None,
                request_key: 0,
                stored_expires_at_ms: record_expires,
            };
            self.insert_entry(user, entry, now);
        }
        self.spread_keepalives(now.instant);
        effects
    }

    fn apply(
        &mut self,
        now: Now,
        request: &Request,
        register: &RegisterRequest,
        flow: FlowInfo,
        account: &Account,
    ) -> RegisterOutcome {
        let user = account.user_id;
        let mut effects = Vec::new();
        match &register.contacts {
            ContactSet::Query => {}
            ContactSet::Wildcard => {
                let current = self.aors.get(&user).map(Vec::as_slice).unwrap_or_default();
                let out_of_order = current.iter().any(|entry| {
                    entry.record.call_id == register.call_id && register.cseq <= entry.record.cseq
                });
                if out_of_order {
                    return outcome(self.out_of_order(request), effects);
                }
                for entry in self.take_entries(user, |_| true) {
                    self.removed_effects(entry, RemovalReason::Wildcard, &mut effects);
                }
            }
            ContactSet::Addresses(contacts) => {
                let mut granted = Vec::with_capacity(contacts.len());
                for contact in contacts {
                    match self.grant_secs(contact.expires_secs) {
                        Some(secs) => granted.push((contact.clone(), secs)),
                        None => return outcome(self.too_brief(request), effects),
                    }
                }
                if register.uses_outbound() && !self.first_hop_ok(register) {
                    let mut response = reply_to(request, &self.ids, StatusCode(439));
                    response.set_status(StatusCode(439), "First Hop Lacks Outbound Support");
                    return outcome(response, effects);
                }
                let alg = detect_alg(request, &flow);
                let node_id = self.config.node_id.clone();
                let make = |contact: &ContactRequest, secs: u32| {
                    let record = BindingRecord {
                        tenant_id: account.tenant_id,
                        user_id: account.user_id,
                        device_id: Some(account.device_id),
                        aor: account.aor.clone(),
                        contact_uri: contact.uri_text.clone(),
                        instance_id: contact.instance.clone(),
                        reg_id: contact.reg_id,
                        path: register.path.clone(),
                        push: contact.push.clone(),
                        expires_at_ms: now.unix_ms.saturating_add(i64::from(secs) * 1000),
                        q_milli: contact.q_milli,
                        call_id: register.call_id.clone(),
                        cseq: register.cseq,
                        user_agent: register.user_agent.clone(),
                        flow: flow.to_domain(&node_id),
                        sip_alg_detected: alg.is_some(),
                        sip_alg_reason: alg.map(|a| a.reason.as_str().to_owned()),
                    };
                    let behind_nat = contact
                        .uri
                        .as_sip()
                        .is_some_and(|uri| contact_behind_nat(&uri.host, &flow));
                    (record, behind_nat)
                };
                let current = self.aors.get(&user).map(Vec::as_slice).unwrap_or_default();
                let mut grant = Grant {
                    call_id: &register.call_id,
                    cseq: register.cseq,
                    now: now.instant,
                    max_contacts: self.config.max_contacts_per_user,
                    make: &make,
                    flow,
                    next_id: &mut self.next_entry,
                    request_key: account.request_key,
                };
                let planned = match plan(current, &granted, &mut grant) {
                    Ok(planned) => planned,
                    Err(PlanError::OutOfOrder) => {
                        return outcome(self.out_of_order(request), effects);
                    }
                    Err(PlanError::Retransmission) => {
                        // Answered again as it was: 200 with the bindings as they are.
                        let response = self.ok(request, register, user, now);
                        return outcome(response, effects);
                    }
                    Err(PlanError::TooManyContacts) => {
                        let mut response = reply_to(request, &self.ids, StatusCode::FORBIDDEN);
                        response.set_status(StatusCode::FORBIDDEN, "Too Many Contacts");
                        return outcome(response, effects);
                    }
                };
                self.commit(user, planned, now, &mut effects);
                if let Some(suspicion) = alg {
                    effects.push(Effect::Event(RegistrationEvent::AlgSuspected {
                        tenant_id: account.tenant_id,
                        user_id: account.user_id,
                        source: flow.source,
                        reason: suspicion.reason,
                    }));
                }
            }
        }
        let response = self.ok(request, register, user, now);
        outcome(response, effects)
    }

    /// Granted seconds for a requested expiry: 0 stays 0, too short is `None` (423), too
    /// long is shortened.
    fn grant_secs(&self, requested: u32) -> Option<u32> {
        match requested {
            0 => Some(0),
            secs if secs < self.config.min_expires_secs => None,
            secs => Some(secs.min(self.config.max_expires_secs)),
        }
    }

    /// RFC 5626 §6: outbound is only usable when we are the first hop (one Via, no Path) or
    /// the first-hop proxy's Path URI carries `ob`.
    fn first_hop_ok(&self, register: &RegisterRequest) -> bool {
        if register.path.is_empty() {
            register.via_count <= 1
        } else {
            register.first_hop_ob
        }
    }

    fn error(&self, request: &Request, malformed: Malformed) -> Response {
        let mut response = reply_to(request, &self.ids, malformed.status);
        response.set_status(malformed.status, malformed.phrase);
        response
    }

    fn too_brief(&self, request: &Request) -> Response {
        let mut response = reply_to(request, &self.ids, StatusCode::INTERVAL_TOO_BRIEF);
        response.headers_mut().push(
            HeaderName::MinExpires,
            Bytes::from(self.config.min_expires_secs.to_string()),
        );
        response
    }

    fn out_of_order(&self, request: &Request) -> Response {
        let mut response = reply_to(request, &self.ids, StatusCode::SERVER_INTERNAL_ERROR);
        response.set_status(StatusCode::SERVER_INTERNAL_ERROR, "CSeq Out of Order");
        response
    }
}

fn outcome(response: Response, effects: Vec<Effect>) -> RegisterOutcome {
    RegisterOutcome { response, effects }
}

/// Used by the commit and timer code.
pub(crate) fn expire_task(user: UserId, entry: &Entry) -> Task {
    Task::Expire {
        user,
        entry: entry.id,
    }
}
