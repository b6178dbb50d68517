//! Calls on the running server: INVITE admission (digest challenge with 407, the caller's
//! tenant from its credential, no open relay), callee lookup in the caller's tenant through
//! the registrar's bindings, the `pbx-call` engine driven from the SIP endpoint task, media
//! through the `pbx-media` relay, and finished calls handed on as [`CallEnded`] records.
//!
//! Everything here runs synchronously on the endpoint driver task, like the registrar.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pbx_call::{
    CallConfig, CallEngine, CallKey, CallRecord, Direction, Disposition, ForkTarget, HangupSide,
    MediaAllocator, MediaUnavailable, NewCall, Now, Side, Stage, StreamStats,
};
use pbx_domain::{DeviceId, DigestAlgorithm, DirectorySnapshot, SipCredential, TenantId, UserId};
use pbx_media::{MediaEvent, MediaEventKind, MediaRelay};
use pbx_policy::CallHandle;
use pbx_registrar::Registrar;
use pbx_sip::{HeaderName, Host, Method, NameAddr, Request, Response, StatusCode};
use pbx_sip_auth::{
    Answer, AuthRole, Credentials, Ha1, HashFunction, NonceCountTracker, RequestContext, Verifier,
    digest_uri_matches,
};
use pbx_sip_engine::{AcceptedTransaction, Event, FlowId, Incoming, Target};
use pbx_sip_net::{Context, Flow, Transport};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

mod attended;
mod transfer;
mod trunk;

use crate::cdr::CdrSink;
use crate::config::ConfigError;
use crate::guard::{CallCheck, CallTerminator, CallVerdict, SecurityGuard};

/// Who the call belongs to, carried through the engine into the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallContext {
    /// The caller's tenant.
    pub tenant_id: TenantId,
    /// The calling user.
    pub user_id: UserId,
    /// The calling device (`None` for calls from a trunk).
    pub device_id: Option<DeviceId>,
    /// The called user, for internal calls.
    pub callee_user_id: Option<UserId>,
    /// The called tenant, when it is not the caller's (a call to another tenant's number,
    /// connected internally): that tenant gets an inbound CDR of its own.
    pub callee_tenant: Option<CalleeTenant>,
}

/// The other side's view of a call between two tenants of the platform.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalleeTenant {
    /// The called tenant.
    pub tenant_id: TenantId,
    /// The called user.
    pub user_id: UserId,
    /// The caller as presented to it (the caller's number, or `anonymous`).
    pub caller: String,
}

/// A finished call attempt as the engine reports it.
pub type CallEnded = CallRecord<CallContext>;

/// One change of a call's durable record (the CDR), in the domain model the CDR store keeps:
/// `Started` (open record), `Ringing` / `Answered` (updated), `Ended` (closed, final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrUpdate {
    /// Which change.
    pub stage: Stage,
    /// The record after the change.
    pub record: pbx_domain::CallRecord,
    /// The called tenant's inbound record of the same call, for a call between tenants.
    pub callee_record: Option<pbx_domain::CallRecord>,
}

/// Keeps the domain CDR of every live call in step with the engine's reports.
#[derive(Debug)]
struct CdrBook {
    node_id: String,
    open: std::collections::HashMap<u64, pbx_domain::CallRecord>,
    /// The called tenant's record id of each live call between tenants.
    callee_ids: std::collections::HashMap<u64, pbx_domain::CdrId>,
    /// The open records of transferred calls: record key → the engine's key of the call.
    transfers: std::collections::HashMap<u64, u64>,
}

impl CdrBook {
    fn apply(&mut self, stage: Stage, record: &CallEnded) -> Option<CdrUpdate> {
        use pbx_domain::{CallEnd, CallStart, CdrId, MediaStreamStats};
        let entry = match stage {
            Stage::Started | Stage::Ended if !self.open.contains_key(&record.call_key) => {
                let random: [u8; 10] = rand::random();
                let start_ms = u64::try_from(record.started_at_ms).unwrap_or(0);
                let opened = pbx_domain::CallRecord::open(CallStart {
                    id: CdrId::from_parts(start_ms, &random),
                    tenant_id: record.context.tenant_id,
                    user_id: Some(record.context.user_id),
                    device_id: record.context.device_id,
                    direction: match record.direction {
                        Direction::Inbound => pbx_domain::CallDirection::Inbound,
                        Direction::Outbound => pbx_domain::CallDirection::Outbound,
                        _ => pbx_domain::CallDirection::Internal,
                    },
                    caller: record.caller.clone(),
                    callee_dialled: record.callee_dialled.clone(),
                    callee: record.callee_normalised.clone(),
                    trunk_id: record.trunk.as_deref().and_then(|t| t.parse().ok()),
                    sip_call_id: record.a_call_id.clone(),
                    node_id: self.node_id.clone(),
                    start_ms: record.started_at_ms,
                });
                self.open.entry(record.call_key).or_insert(opened)
            }
            _ => self.open.get_mut(&record.call_key)?,
        };
        // The trunk tried last (after a failover, not the one the record started with).
        if let Some(trunk) = record.trunk.as_deref().and_then(|t| t.parse().ok()) {
            entry.trunk_id = Some(trunk);
        }
        match stage {
            Stage::Started => {}
            Stage::Ringing => entry.rang(record.ringing_at_ms.unwrap_or(record.started_at_ms)),
            Stage::Answered => {
                if let Some(ring) = record.ringing_at_ms {
                    entry.rang(ring);
                }
                entry.answered(record.answered_at_ms.unwrap_or(record.started_at_ms));
            }
            Stage::Ended => {
                if let Some(ring) = record.ringing_at_ms {
                    entry.rang(ring);
                }
                if let Some(answer) = record.answered_at_ms {
                    entry.answered(answer);
                }
                let stream = |leg: &str, from: &StreamStats, to: &StreamStats| MediaStreamStats {
                    leg: leg.to_owned(),
                    media: "audio".to_owned(),
                    codec: None,
                    packets_in: from.packets,
                    packets_out: to.packets,
                    bytes_in: from.bytes,
                    bytes_out: to.bytes,
                    packets_lost: from.lost,
                    jitter_us: from.jitter_us,
                };
                if record.answered_at_ms.is_some() {
                    entry.media = vec![
                        stream("caller", &record.media_a, &record.media_b),
                        stream("callee", &record.media_b, &record.media_a),
                    ];
                }
                entry.close(CallEnd {
                    end_ms: record.ended_at_ms,
                    disposition: domain_disposition(record.disposition, record.hangup_status),
                    sip_status: Some(record.hangup_status),
                    hangup_cause: Some(record.hangup_cause.clone()),
                    hangup_side: match record.hangup_side {
                        HangupSide::Caller => pbx_domain::HangupSide::Caller,
                        HangupSide::Callee => pbx_domain::HangupSide::Callee,
                        HangupSide::System => pbx_domain::HangupSide::System,
                    },
                });
            }
        }
        let updated = entry.clone();
        let callee_record = record.context.callee_tenant.as_ref().map(|callee| {
            let id = *self.callee_ids.entry(record.call_key).or_insert_with(|| {
                let random: [u8; 10] = rand::random();
                CdrId::from_parts(u64::try_from(record.started_at_ms).unwrap_or(0), &random)
            });
            callee_view(&updated, id, callee)
        });
        if stage == Stage::Ended {
            self.open.remove(&record.call_key);
            self.callee_ids.remove(&record.call_key);
            self.transfers.remove(&record.call_key);
        } else if let Some(call) = record.transfer_of {
            self.transfers.insert(record.call_key, call);
        }
        Some(CdrUpdate {
            stage,
            record: updated,
            callee_record,
        })
    }
}

impl CdrBook {
    /// The open record of call `key`: its first, or after a transfer the transferred call's.
    fn current(&self, key: CallKey) -> Option<&pbx_domain::CallRecord> {
        self.open.get(&key.0).or_else(|| {
            self.transfers
                .iter()
                .filter(|(_, call)| **call == key.0)
                .find_map(|(record, _)| self.open.get(record))
        })
    }
}

/// The called tenant's inbound record of a call between tenants: the caller's record with the
/// called tenant, user, presented caller and the number as the callee (no device, no trunk).
fn callee_view(
    record: &pbx_domain::CallRecord,
    id: pbx_domain::CdrId,
    callee: &CalleeTenant,
) -> pbx_domain::CallRecord {
    let mut view = record.clone();
    view.id = id;
    view.tenant_id = callee.tenant_id;
    view.user_id = Some(callee.user_id);
    view.device_id = None;
    view.direction = pbx_domain::CallDirection::Inbound;
    view.caller.clone_from(&callee.caller);
    view.callee_dialled.clone_from(&record.callee);
    view.trunk_id = None;
    view
}

/// A call attempt refused before the engine took it (unknown number, fraud guard): one
/// closed record, written once.
#[derive(Debug, Clone)]
pub struct Refused<'a> {
    /// The caller's tenant, user and device.
    pub context: &'a CallContext,
    /// The caller's extension or number.
    pub caller: &'a str,
    /// What was dialled.
    pub dialled: &'a str,
    /// The normalised callee, when known (else the dialled text).
    pub normalised: Option<&'a str>,
    /// The caller's Call-ID.
    pub call_id: &'a str,
    /// Internal or outbound.
    pub direction: pbx_domain::CallDirection,
    /// The SIP status the caller got.
    pub status: u16,
    /// How it is filed.
    pub disposition: pbx_domain::Disposition,
    /// Why, in words.
    pub cause: String,
}

impl CdrBook {
    fn refused(&self, refused: &Refused<'_>, now_ms: i64) -> pbx_domain::CallRecord {
        use pbx_domain::{CallEnd, CallStart, CdrId};
        let random: [u8; 10] = rand::random();
        let mut record = pbx_domain::CallRecord::open(CallStart {
            id: CdrId::from_parts(u64::try_from(now_ms).unwrap_or(0), &random),
            tenant_id: refused.context.tenant_id,
            user_id: Some(refused.context.user_id),
            device_id: refused.context.device_id,
            direction: refused.direction,
            caller: refused.caller.to_owned(),
            callee_dialled: refused.dialled.to_owned(),
            callee: refused.normalised.unwrap_or(refused.dialled).to_owned(),
            trunk_id: None,
            sip_call_id: refused.call_id.to_owned(),
            node_id: self.node_id.clone(),
            start_ms: now_ms,
        });
        record.close(CallEnd {
            end_ms: now_ms,
            disposition: refused.disposition,
            sip_status: Some(refused.status),
            hangup_cause: Some(refused.cause.clone()),
            hangup_side: pbx_domain::HangupSide::System,
        });
        record
    }
}

fn domain_disposition(disposition: Disposition, status: u16) -> pbx_domain::Disposition {
    use pbx_domain::Disposition as D;
    match disposition {
        Disposition::Answered => D::Answered,
        Disposition::Busy => D::Busy,
        Disposition::NoAnswer => D::NoAnswer,
        Disposition::Cancelled => D::Cancelled,
        Disposition::Unavailable if matches!(status, 403 | 603) => D::Rejected,
        Disposition::Unavailable => D::Unavailable,
        Disposition::Blocked => D::Blocked,
        _ => D::Failed,
    }
}

/// `[calls]`: call handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsSection {
    /// How long B-legs ring before the caller gets 480.
    pub ring_timeout_secs: u32,
    /// Answered calls end after this long (0: no limit).
    pub max_duration_secs: u32,
    /// RFC 4028 session interval asked for on each leg (0: no session timers).
    pub session_expires_secs: u32,
    /// No RTP for this long ends the call (BYE with a Reason header).
    pub rtp_timeout_secs: u32,
    /// The address the media relay binds (empty: the first SIP UDP listener's address).
    pub media_bind_ip: String,
    /// The address put in SDP (empty: the bind address, or the outward address when the
    /// relay binds a wildcard).
    pub media_advertised_ip: String,
    /// Media in only one direction for this long raises a `call.one_way_audio` event.
    pub one_way_after_secs: u32,
    /// A latched RTP source silent for this long may be replaced by a new source of the
    /// same IP (a NAT rebinding), in milliseconds.
    pub relatch_after_ms: u32,
}

impl Default for CallsSection {
    fn default() -> Self {
        Self {
            ring_timeout_secs: 60,
            max_duration_secs: 4 * 3600,
            session_expires_secs: 1800,
            rtp_timeout_secs: 60,
            media_bind_ip: String::new(),
            media_advertised_ip: String::new(),
            one_way_after_secs: 10,
            relatch_after_ms: 1000,
        }
    }
}

/// Validated `[calls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// Ring timeout.
    pub ring_timeout: Duration,
    /// Maximum answered duration.
    pub max_duration: Option<Duration>,
    /// Session interval.
    pub session_expires: Option<Duration>,
    /// RTP timeout.
    pub rtp_timeout: Duration,
    /// Relay bind address (`None`: from the SIP listeners).
    pub media_bind_ip: Option<IpAddr>,
    /// Address in SDP (`None`: derived).
    pub media_advertised_ip: Option<IpAddr>,
    /// One-way audio detection.
    pub one_way_after: Duration,
    /// Relatch hold-off.
    pub relatch_after: Duration,
}

impl CallsSection {
    /// Checks the section.
    pub fn validate(&self) -> Result<CallSettings, ConfigError> {
        if !(5..=600).contains(&self.ring_timeout_secs) {
            return Err(ConfigError::invalid(
                "calls.ring_timeout_secs",
                "must be between 5 and 600",
            ));
        }
        if self.session_expires_secs != 0 && self.session_expires_secs < 90 {
            return Err(ConfigError::invalid(
                "calls.session_expires_secs",
                "must be 0 (off) or at least 90 (RFC 4028 Min-SE)",
            ));
        }
        if self.rtp_timeout_secs < 5 {
            return Err(ConfigError::invalid(
                "calls.rtp_timeout_secs",
                "must be at least 5",
            ));
        }
        if self.one_way_after_secs < 2 {
            return Err(ConfigError::invalid(
                "calls.one_way_after_secs",
                "must be at least 2",
            ));
        }
        if !(100..=60_000).contains(&self.relatch_after_ms) {
            return Err(ConfigError::invalid(
                "calls.relatch_after_ms",
                "must be between 100 and 60000",
            ));
        }
        let ip = |key: &str, text: &str| -> Result<Option<IpAddr>, ConfigError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            text.trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::invalid(key, format!("`{text}` is not an IP address")))
        };
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Ok(CallSettings {
            ring_timeout: secs(self.ring_timeout_secs),
            max_duration: (self.max_duration_secs > 0).then(|| secs(self.max_duration_secs)),
            session_expires: (self.session_expires_secs > 0)
                .then(|| secs(self.session_expires_secs)),
            rtp_timeout: secs(self.rtp_timeout_secs),
            media_bind_ip: ip("calls.media_bind_ip", &self.media_bind_ip)?,
            media_advertised_ip: ip("calls.media_advertised_ip", &self.media_advertised_ip)?,
            one_way_after: secs(self.one_way_after_secs),
            relatch_after: Duration::from_millis(u64::from(self.relatch_after_ms)),
        })
    }
}

impl Default for CallSettings {
    fn default() -> Self {
        // The defaults of the section always validate.
        CallsSection::default().validate().unwrap_or(CallSettings {
            ring_timeout: Duration::from_secs(60),
            max_duration: None,
            session_expires: None,
            rtp_timeout: Duration::from_secs(60),
            media_bind_ip: None,
            media_advertised_ip: None,
            one_way_after: Duration::from_secs(10),
            relatch_after: Duration::from_secs(1),
        })
    }
}

impl CallSettings {
    /// The engine configuration.
    pub fn engine_config(&self) -> CallConfig {
        let mut config = CallConfig::default();
        config.ring_timeout = self.ring_timeout;
        config.max_duration = self.max_duration;
        config.session_expires = self.session_expires;
        config
    }

    /// The relay's bind and advertised addresses, given the SIP UDP listeners.
    pub fn media_addresses(&self, sip_udp: &[SocketAddr]) -> (IpAddr, IpAddr) {
        let bind = self
            .media_bind_ip
            .or_else(|| sip_udp.first().map(SocketAddr::ip))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let advertised = self
            .media_advertised_ip
            .unwrap_or(if bind.is_unspecified() {
                outward_ip(bind).unwrap_or(IpAddr::from([127, 0, 0, 1]))
            } else {
                bind
            });
        (bind, advertised)
    }
}

/// The local address the system would use towards the outside (no packet is sent).
fn outward_ip(family: IpAddr) -> Option<IpAddr> {
    let (bind, probe) = if family.is_ipv6() {
        ("[::]:0", "[2001:db8::1]:9")
    } else {
        ("0.0.0.0:0", "192.0.2.1:9")
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Starts the media relay and the call engine from the settings. Returns the engine for the
/// TU (reporting every call attempt to `cdrs`, checked by `guard`) and the relay's events,
/// which [`spawn_tasks`] feeds back to the TU.
pub fn start(
    settings: &crate::config::Settings,
    cdrs: &CdrSink,
    guard: Option<Arc<SecurityGuard>>,
) -> Result<(Calls, CallQueues), pbx_media::RelayError> {
    let call_settings = &settings.calls;
    let (bind, advertised) = call_settings.media_addresses(&settings.sip_udp);
    let (low, high) = settings.rtp_ports;
    crate::limits::raise_open_files(
        settings.rtp_ports,
        pbx_sip_net::Limits::default().max_connections,
    );
    let mut config = pbx_media::RelayConfig::new(bind, low..=high);
    config.advertised_ip = advertised;
    config.rtp_timeout = call_settings.rtp_timeout;
    config.one_way_after = call_settings.one_way_after;
    config.relatch_after = call_settings.relatch_after;
    // One relay wake-up per driver step (`PlatformTu::before_send` flushes), not one per
    // session command.
    config.batch_commands = true;
    let (relay, events) = MediaRelay::start(config)?;
    tracing::info!(%bind, %advertised, ports = ?(low, high), "media relay started");
    let mut calls = Calls::new(call_settings.engine_config(), relay, cdrs.clone());
    calls.guard = guard;
    let (event_tx, call_events) = mpsc::channel(1024);
    calls.events = Some(event_tx);
    Ok((
        calls,
        CallQueues {
            media: events,
            call_events,
        },
    ))
}

/// A call event for the event log (`events` table), such as `call.one_way_audio`.
#[derive(Debug, Clone)]
pub struct CallEvent {
    /// When (Unix ms).
    pub at_ms: i64,
    /// The tenant.
    pub tenant: TenantId,
    /// Dotted kind.
    pub kind: &'static str,
    /// Details.
    pub payload: serde_json::Value,
}

/// What the calls module hands to its background tasks.
#[derive(Debug)]
pub struct CallQueues {
    media: mpsc::Receiver<MediaEvent>,
    call_events: mpsc::Receiver<CallEvent>,
}

/// Drives the TU's calls from the relay's events, and installs the guard's call terminator
/// (the guard ends running calls through the endpoint).
pub fn spawn_tasks(
    handle: pbx_sip_net::EndpointHandle<crate::sip::PlatformTu>,
    queues: CallQueues,
    guard: Option<&SecurityGuard>,
    store: pbx_store::Store,
) -> Vec<tokio::task::JoinHandle<()>> {
    let CallQueues {
        media: mut events,
        mut call_events,
    } = queues;
    if let Some(guard) = guard {
        guard.set_call_terminator(Arc::new(Terminator(handle.clone())));
    }
    let media = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if handle
                .execute(move |tu, ctx| tu.media_event(ctx, &event))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let log = tokio::spawn(async move {
        while let Some(event) = call_events.recv().await {
            if let Err(error) = store
                .events()
                .append(event.at_ms, Some(event.tenant), event.kind, &event.payload)
                .await
            {
                tracing::warn!(%error, kind = event.kind, "call event not stored");
            }
        }
    });
    vec![media, log]
}

/// Prometheus text for `/metrics`: the media relay's counters and the CDR writer's.
pub fn metrics_text(relay: &MediaRelay, cdrs: &CdrSink) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let relay = relay.counters();
    let stats = cdrs.stats();
    let mut out = String::new();
    let metrics: [(&str, &str, &str, u64); 12] = [
        (
            "cloudpbx_media_sessions",
            "gauge",
            "Media relay sessions (calls) allocated.",
            relay.sessions,
        ),
        (
            "cloudpbx_media_port_pairs_free",
            "gauge",
            "RTP/RTCP port pairs free in the pool.",
            relay.free_pairs as u64,
        ),
        (
            "cloudpbx_media_port_pairs",
            "gauge",
            "RTP/RTCP port pairs in the pool.",
            relay.total_pairs as u64,
        ),
        (
            "cloudpbx_media_allocation_failures_total",
            "counter",
            "Media sessions refused because the port pool was exhausted.",
            relay.allocation_failures,
        ),
        (
            "cloudpbx_media_packets_relayed_total",
            "counter",
            "RTP and RTCP packets relayed.",
            relay.packets_relayed,
        ),
        (
            "cloudpbx_media_packets_dropped_total",
            "counter",
            "Packets received but not relayed (latching rule, no destination yet).",
            relay.packets_dropped,
        ),
        (
            "cloudpbx_media_backlog_batches_total",
            "counter",
            "Times the relay drained a socket backlog (it fell behind).",
            relay.backlog_batches,
        ),
        (
            "cloudpbx_cdr_stored_total",
            "counter",
            "CDR writes stored directly.",
            stats.stored.load(Relaxed),
        ),
        (
            "cloudpbx_cdr_journaled_total",
            "counter",
            "CDR writes appended to the journal (store unavailable or queue full).",
            stats.journaled.load(Relaxed),
        ),
        (
            "cloudpbx_cdr_replayed_total",
            "counter",
            "Journaled CDR writes replayed into the store.",
            stats.replayed.load(Relaxed),
        ),
        (
            "cloudpbx_cdr_journal_pending",
            "gauge",
            "CDR writes waiting in the journal.",
            stats.pending.load(Relaxed),
        ),
        (
            "cloudpbx_cdr_interrupted_total",
            "counter",
            "Open CDRs closed as interrupted at start.",
            stats.interrupted.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

/// The guard's hand on running calls: ends them on the endpoint task.
struct Terminator(pbx_sip_net::EndpointHandle<crate::sip::PlatformTu>);

impl CallTerminator for Terminator {
    fn end_calls(&self, calls: &[CallHandle], reason: &str) {
        let calls = calls.to_vec();
        let reason = reason.to_owned();
        if let Err(error) = self.0.try_execute(move |tu, ctx| {
            if let Some(engine) = tu.calls_mut() {
                engine.end_guarded(ctx, &calls, &reason);
            }
        }) {
            tracing::error!(%error, "the guard could not end calls");
        }
    }
}

/// How many finished calls the TU keeps for inspection (tests, diagnostics).
const RECENT: usize = 256;

/// The calls part of the platform TU.
pub struct Calls {
    engine: CallEngine<CallContext>,
    relay: MediaRelay,
    cdrs: CdrSink,
    book: CdrBook,
    recent: std::collections::VecDeque<CallEnded>,
    /// The fraud guard (issue 5): source whitelist, destination classes, limits.
    guard: Option<Arc<SecurityGuard>>,
    /// The guard's handles of running calls, by call key.
    guarded: HashMap<u64, CallHandle>,
    /// The guard's handle of a transfer to a number just started, by call key, until its
    /// record is reported (`transfer.rs`).
    transfer_pending: HashMap<u64, CallHandle>,
    /// The guard's handles of transfers to numbers, by their record's key (with the call's
    /// key): counted until that record ends.
    transfer_guarded: HashMap<u64, (u64, CallHandle)>,
    /// Call events for the event log.
    events: Option<mpsc::Sender<CallEvent>>,
    /// Trunks, routes and numbers (calls to and from the public network, `trunk.rs`).
    routing: Option<Arc<crate::trunks::LiveRouting>>,
    salt: u64,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("calls", &self.engine.call_count())
            .finish_non_exhaustive()
    }
}

/// What the calls module borrows from the TU for one request.
#[allow(missing_debug_implementations)] // borrows of the TU's own fields
pub struct Services<'a> {
    /// Bindings.
    pub registrar: &'a Registrar,
    /// Accounts.
    pub directory: &'a DirectorySnapshot,
    /// Digest verifier (the registrar's).
    pub verifier: &'a Verifier,
    /// Nonce counts.
    pub tracker: &'a mut NonceCountTracker,
}

impl Calls {
    /// Calls relayed through `relay`; every call attempt's record goes to `cdrs`.
    pub fn new(config: CallConfig, relay: MediaRelay, cdrs: CdrSink) -> Calls {
        Calls {
            engine: CallEngine::new(config),
            relay,
            book: CdrBook {
                node_id: cdrs.node_id().to_owned(),
                open: HashMap::new(),
                callee_ids: HashMap::new(),
                transfers: HashMap::new(),
            },
            cdrs,
            recent: std::collections::VecDeque::new(),
            guard: None,
            guarded: HashMap::new(),
            transfer_pending: HashMap::new(),
            transfer_guarded: HashMap::new(),
            events: None,
            routing: None,
            salt: rand::random(),
        }
    }

    /// Ends the calls the guard names (critical usage breach), with its Reason text.
    pub fn end_guarded(&mut self, ctx: &mut Context<'_>, calls: &[CallHandle], reason: &str) {
        let now = now_pair(ctx);
        let keys: Vec<u64> = self
            .guarded
            .iter()
            .map(|(key, handle)| (*key, *handle))
            .chain(self.transfer_guarded.values().copied())
            .filter(|(_, handle)| calls.contains(handle))
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            tracing::warn!(call = key, reason, "fraud guard ends the call");
            self.engine
                .hang_up(ctx.engine(), now, CallKey(key), "fraud guard");
        }
        self.flush();
    }

    /// A clean shutdown: ends every call (BYE to both legs of answered calls, 503 and CANCEL
    /// for ringing ones, `Reason` "server shutting down") and files their records closed;
    /// the draining endpoint then lets those transactions finish.
    pub fn shut_down(&mut self, ctx: &mut Context<'_>) {
        let live = self.engine.call_count();
        if live > 0 {
            tracing::info!(calls = live, "shutting down: ending the calls in progress");
        }
        let now = now_pair(ctx);
        self.engine.shut_down(ctx.engine(), now);
        self.flush();
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.engine.call_count()
    }

    /// A new INVITE (no To tag) or an in-dialog request (any method with a To tag).
    pub fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        services: Services<'_>,
    ) {
        let now = now_pair(ctx);
        let in_dialog = incoming
            .request()
            .to()
            .map(|to| to.tag.is_some())
            .unwrap_or(false);
        if in_dialog {
            self.engine.handle_in_dialog(ctx.engine(), now, incoming);
            // A REFER asks for a transfer, resolved here like a call the transferor dials.
            self.resolve_transfers(ctx, &services);
        } else if *incoming.method() == Method::Invite {
            self.invite(ctx, incoming, services);
        } else {
            // Out-of-dialog BYE, UPDATE, INFO, ...: no such call.
            ctx.engine().reject(now.instant, incoming, StatusCode(481));
        }
        self.flush();
    }

    /// An engine event; `true` when it was a call's.
    pub fn on_event(&mut self, ctx: &mut Context<'_>, event: &Event) -> bool {
        let now = now_pair(ctx);
        let mine = self.engine.handle_event(ctx.engine(), now, event);
        self.flush();
        mine
    }

    /// Fires due call timers (ring timeout, maximum duration, session timers).
    pub fn tick(&mut self, ctx: &mut Context<'_>) {
        let now = now_pair(ctx);
        if self
            .engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now.instant)
        {
            self.engine.handle_timeout(ctx.engine(), now);
            self.flush();
        }
    }

    /// A relay event: RTP timeout ends the call with a Reason header.
    pub fn on_media_event(&mut self, ctx: &mut Context<'_>, event: &MediaEvent) {
        let Some(key) = CallKey::from_label(&event.label) else {
            return;
        };
        match &event.kind {
            MediaEventKind::RtpTimeout => {
                tracing::info!(call = key.0, "RTP timeout: ending the call");
                let now = now_pair(ctx);
                self.engine.media_timeout(ctx.engine(), now, key);
                self.flush();
            }
            MediaEventKind::OneWayAudio { direction } => {
                tracing::info!(call = key.0, ?direction, "one-way audio");
                let Some(record) = self.book.current(key) else {
                    return;
                };
                let flowing = match direction {
                    pbx_media::Flow::AToB => "caller_to_callee",
                    pbx_media::Flow::BToA => "callee_to_caller",
                };
                let event = CallEvent {
                    at_ms: now_pair(ctx).unix_ms,
                    tenant: record.tenant_id,
                    kind: "call.one_way_audio",
                    payload: serde_json::json!({
                        "cdr": record.id.to_string(),
                        "sip_call_id": record.sip_call_id,
                        "caller": record.caller,
                        "callee": record.callee,
                        "flowing": flowing,
                    }),
                };
                if let Some(events) = &self.events
                    && events.try_send(event).is_err()
                {
                    tracing::warn!(
                        call = key.0,
                        "call event queue full: one-way audio not stored"
                    );
                }
            }
            _ => {}
        }
    }

    /// The last finished calls, oldest first.
    pub fn recent(&self) -> Vec<CallEnded> {
        self.recent.iter().cloned().collect()
    }

    /// The relay (counters for metrics and tests).
    pub fn relay(&self) -> &MediaRelay {
        &self.relay
    }

    /// Hands the relay the session commands queued since the last flush (one wake-up of the
    /// relay thread); called before the messages that name the sessions are sent.
    pub fn flush_media(&self) {
        self.relay.flush();
    }

    fn flush(&mut self) {
        while let Some((stage, record)) = self.engine.poll_record() {
            let update = self.book.apply(stage, &record);
            if let Some(guard) = &self.guard {
                match stage {
                    // A transfer to a number counts as a call of the transferor's.
                    Stage::Started => {
                        if let Some(handle) = record
                            .transfer_of
                            .and_then(|key| self.transfer_pending.remove(&key))
                        {
                            let key = record.transfer_of.unwrap_or(record.call_key);
                            self.transfer_guarded.insert(record.call_key, (key, handle));
                        }
                    }
                    Stage::Answered => {
                        if let Some(handle) = self.guarded.get(&record.call_key) {
                            guard.call_answered(*handle);
                        }
                        if let Some((_, handle)) = self.transfer_guarded.get(&record.call_key) {
                            guard.call_answered(*handle);
                        }
                        // An attended transfer: the target's call (a call to a number, say)
                        // goes on in the joined call, and counts until that ends.
                        if let Some(handle) = record.joined.and_then(|k| self.guarded.remove(&k)) {
                            let key = record.transfer_of.unwrap_or(record.call_key);
                            self.transfer_guarded.insert(record.call_key, (key, handle));
                        }
                    }
                    // A call's first record ends when a transferor leaves it; the guard
                    // counts the call until the engine no longer has it.
                    Stage::Ended => {
                        if let Some((_, handle)) = self.transfer_guarded.remove(&record.call_key) {
                            guard.call_ended(handle);
                        }
                        let key = record.transfer_of.unwrap_or(record.call_key);
                        if !self.engine.contains(CallKey(key))
                            && let Some(handle) = self.guarded.remove(&key)
                        {
                            guard.call_ended(handle);
                        }
                    }
                    _ => {}
                }
            }
            if let Some(CdrUpdate {
                stage,
                record,
                callee_record,
            }) = &update
            {
                if let Some(callee_record) = callee_record {
                    match stage {
                        Stage::Started => self.cdrs.call_started(callee_record),
                        Stage::Answered => self.cdrs.call_updated(callee_record),
                        Stage::Ended => self.cdrs.call_ended(callee_record),
                        _ => {}
                    }
                }
                match stage {
                    Stage::Started => self.cdrs.call_started(record),
                    Stage::Ended => {
                        tracing::info!(
                            cdr = %record.id,
                            tenant = %record.tenant_id,
                            caller = %record.caller,
                            callee = %record.callee,
                            disposition = ?record.disposition,
                            status = ?record.sip_status,
                            cause = ?record.hangup_cause,
                            billable_secs = record.billable_secs,
                            "call ended"
                        );
                        self.cdrs.call_ended(record);
                    }
                    // The answer is what billing needs if the node dies mid-call; the ring
                    // time reaches the store with the answer or the final record.
                    Stage::Answered => self.cdrs.call_updated(record),
                    _ => {}
                }
            }
            if stage == Stage::Ended {
                if self.recent.len() == RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(record);
            }
        }
    }

    /// Files a call attempt refused before the engine took it (one closed CDR) and answers
    /// the caller with `refused.status` (plus a `Reason` header when given).
    fn refuse(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        refused: &Refused<'_>,
        reason: Option<&str>,
    ) {
        let now = now_pair(ctx);
        let record = self.book.refused(refused, now.unix_ms);
        tracing::info!(
            cdr = %record.id,
            tenant = %record.tenant_id,
            callee = %record.callee,
            status = refused.status,
            cause = %refused.cause,
            "call refused"
        );
        self.cdrs.call_ended(&record);
        let Ok(accepted) = ctx.engine().accept(now.instant, incoming) else {
            return;
        };
        let Ok(mut response) = ctx.engine().response(accepted, StatusCode(refused.status)) else {
            return;
        };
        if let Some(reason) = reason {
            response
                .headers_mut()
                .push(HeaderName::Reason, Bytes::from(reason.to_owned()));
        }
        let _ = ctx.engine().send_response(now.instant, accepted, response);
    }

    fn invite(&mut self, ctx: &mut Context<'_>, incoming: Incoming, services: Services<'_>) {
        let now = now_pair(ctx);
        let Some(flow) = ctx.flow() else {
            ctx.engine().ignore(incoming);
            return;
        };
        // Calls from a carrier's network to our numbers (IP-authenticated trunks).
        let Some(incoming) = self.inbound_from_trunk(ctx, incoming, &flow, &services) else {
            return;
        };
        let request = incoming.request().clone();
        let mut services = services;
        let credential = match authenticate(
            &request,
            (flow.remote, flow.transport),
            now,
            &mut services,
            self.guard.as_deref(),
            &mut self.salt,
        ) {
            Ok(credential) => credential,
            Err(response) => {
                ctx.engine()
                    .respond_stateless(now.instant, incoming, &response);
                return;
            }
        };
        let directory = services.directory;
        let (Some(tenant), Some(caller)) = (
            directory.tenant(credential.tenant_id),
            directory.user(credential.user_id),
        ) else {
            ctx.engine().reject(now.instant, incoming, StatusCode(500));
            return;
        };
        let context = CallContext {
            tenant_id: tenant.id,
            user_id: caller.id,
            device_id: Some(credential.device_id),
            callee_user_id: None,
            callee_tenant: None,
        };
        let call_id = String::from_utf8_lossy(&request.call_id().unwrap_or_default()).into_owned();
        // Never an open relay: only our own domains (or our own address) and users. An
        // authenticated user's attempt at anything else is refused and filed, as a refused
        // transfer to it is (nothing is sent anywhere).
        let domain_ok = request.uri().as_sip().map(|sip| match &sip.host {
            Host::Domain(name) => {
                let name = String::from_utf8_lossy(name);
                name.eq_ignore_ascii_case(tenant.sip_domain.as_str())
                    || name.eq_ignore_ascii_case(services.verifier.realm())
            }
            Host::Ipv4(ip) => IpAddr::V4(*ip) == flow.local.ip(),
            Host::Ipv6(ip) => IpAddr::V6(*ip) == flow.local.ip(),
        });
        let Some(sip) = request.uri().as_sip().filter(|_| domain_ok == Some(true)) else {
            let (status, cause) = match domain_ok {
                None => (416, "unsupported URI scheme"),
                Some(_) => (403, "not our domain"),
            };
            let dialled = request.uri().to_string();
            self.refuse(
                ctx,
                incoming,
                &Refused {
                    context: &context,
                    caller: caller.extension.as_str(),
                    dialled: &dialled,
                    normalised: None,
                    call_id: &call_id,
                    direction: pbx_domain::CallDirection::Outbound,
                    status,
                    disposition: pbx_domain::Disposition::Failed,
                    cause: cause.to_owned(),
                },
                None,
            );
            return;
        };
        let dialled = sip
            .user_unescaped()
            .map(|u| String::from_utf8_lossy(&u).into_owned())
            .unwrap_or_default();
        let Some(callee) = directory.user_by_extension(tenant.id, &dialled) else {
            // Not one of the tenant's extensions: a call out of the platform. The fraud guard
            // decides before any routing, so a blocked destination never reaches a trunk.
            let mut outbound = Outbound {
                context,
                caller: caller.extension.as_str().to_owned(),
                dialled,
                e164: None,
                call_id,
                guard: None,
            };
            if let Some(guard) = self.guard.clone() {
                let check = CallCheck {
                    tenant: tenant.id,
                    user: caller.id,
                    class_of_service: caller.class_of_service,
                    dialled: &outbound.dialled,
                    normalised: None,
                };
                match guard.check_call(&check) {
                    CallVerdict::Block {
                        status,
                        reason,
                        why,
                        class,
                    } => {
                        let cause = format!("blocked by the fraud guard: {why:?} ({class:?})");
                        self.refuse(
                            ctx,
                            incoming,
                            &Refused {
                                context: &outbound.context,
                                caller: &outbound.caller,
                                dialled: &outbound.dialled,
                                normalised: None,
                                call_id: &outbound.call_id,
                                direction: pbx_domain::CallDirection::Outbound,
                                status,
                                disposition: pbx_domain::Disposition::Blocked,
                                cause,
                            },
                            Some(&reason),
                        );
                        return;
                    }
                    CallVerdict::Allow { e164, handle, .. } => {
                        outbound.e164 = e164.map(|digits| format!("+{digits}"));
                        outbound.guard = handle;
                    }
                }
            }
            self.outbound(ctx, incoming, outbound, &services);
            return;
        };
        let domain = tenant.sip_domain.as_str().to_owned();
        let to = name_addr(&format!("<sip:{}@{domain}>", callee.extension.as_str()));
        let targets = match &to {
            Some(to) => trunk::binding_targets(services.registrar, callee.id, to),
            None => Vec::new(),
        };
        let display = caller.display_name.as_str().replace('"', "");
        let from = name_addr(&format!(
            "\"{display}\" <sip:{}@{domain}>",
            caller.extension.as_str()
        ));
        let (Some(from), Some(_)) = (from, to) else {
            ctx.engine().reject(now.instant, incoming, StatusCode(500));
            return;
        };
        let a_target = caller_target(&flow);
        let Ok(AcceptedTransaction::Invite(invite)) = ctx.engine().accept(now.instant, incoming)
        else {
            return;
        };
        let new = NewCall {
            context: CallContext {
                callee_user_id: Some(callee.id),
                callee_tenant: None,
                ..context
            },
            direction: Direction::Internal,
            caller: caller.extension.as_str().to_owned(),
            callee_dialled: dialled.clone(),
            callee_normalised: callee.extension.as_str().to_owned(),
            from,
            a_target,
            a_local: flow.local,
            targets,
            trunk: None,
        };
        let mut media = RelayAllocator(&self.relay);
        if let Err(error) =
            self.engine
                .start_call(ctx.engine(), now, invite, request, new, &mut media)
        {
            tracing::debug!(%error, "call not started");
        }
    }
}

/// A call to a number outside the tenant, admitted by the fraud guard.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The caller's tenant, user and device.
    pub context: CallContext,
    /// The caller's extension.
    pub caller: String,
    /// What was dialled (Request-URI user part).
    pub dialled: String,
    /// The number in E.164 (`+...`) when the guard could classify it.
    pub e164: Option<String>,
    /// The caller's Call-ID.
    pub call_id: String,
    /// The guard's handle (counted as running until the call ends; `None` for emergency
    /// calls and without a guard).
    pub guard: Option<CallHandle>,
}

impl Calls {
    /// Routes an outbound call. Trunk routing plugs in here; without a route the caller gets
    /// 404 and the attempt is filed as unavailable.
    fn outbound(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: Incoming,
        outbound: Outbound,
        services: &Services<'_>,
    ) {
        if self.routing.is_some() {
            return self.route_outbound(ctx, incoming, outbound, services);
        }
        if let (Some(guard), Some(handle)) = (&self.guard, outbound.guard) {
            guard.call_ended(handle);
        }
        self.refuse(
            ctx,
            incoming,
            &Refused {
                context: &outbound.context,
                caller: &outbound.caller,
                dialled: &outbound.dialled,
                normalised: outbound.e164.as_deref(),
                call_id: &outbound.call_id,
                direction: pbx_domain::CallDirection::Outbound,
                status: 404,
                disposition: pbx_domain::Disposition::Unavailable,
                cause: "no route".to_owned(),
            },
            None,
        );
    }

    /// Counts a call the engine started for `outbound` with the guard until it ends.
    pub fn track_guarded(&mut self, key: CallKey, outbound: &Outbound) {
        if let Some(handle) = outbound.guard {
            self.guarded.insert(key.0, handle);
        }
    }
}

fn name_addr(text: &str) -> Option<NameAddr> {
    NameAddr::parse(text.as_bytes()).ok()
}

/// Where the caller's side of a call goes: back over the flow its INVITE came on.
fn caller_target(flow: &Flow) -> Target {
    Target {
        transport: flow_transport(flow),
        address: flow.remote,
        flow: flow.connection.map(|c| FlowId(c.0)),
    }
}

fn flow_transport(flow: &Flow) -> pbx_sip::Transport {
    match flow.transport {
        Transport::Tcp => pbx_sip::Transport::Tcp,
        Transport::Tls => pbx_sip::Transport::Tls,
        _ => pbx_sip::Transport::Udp,
    }
}

fn now_pair(ctx: &Context<'_>) -> Now {
    let pair = crate::sip::now_pair(ctx.now());
    Now::new(pair.instant, pair.unix_ms)
}

/// Authenticates an INVITE with Proxy-Authorization against the same accounts and verifier as
/// REGISTER. Unknown users and wrong passwords get the same 407; a known account from a
/// non-whitelisted address gets 403.
fn authenticate<'d>(
    request: &Request,
    (source, transport): (SocketAddr, Transport),
    now: Now,
    services: &mut Services<'d>,
    guard: Option<&SecurityGuard>,
    salt: &mut u64,
) -> Result<&'d SipCredential, Box<Response>> {
    let verifier = services.verifier;
    let unix_secs = u64::try_from(now.unix_ms / 1000).unwrap_or(0);
    let values = request.proxy_authorization();
    let mut malformed = false;
    let mut chosen = None;
    for value in &values {
        match Credentials::parse(value) {
            Ok(credentials) if credentials.realm == verifier.realm() => {
                chosen = Some(credentials);
                break;
            }
            Ok(_) => {}
            Err(_) => malformed = true,
        }
    }
    let challenge = |stale: bool, salt: &mut u64| {
        *salt = salt.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut response = reply(request, StatusCode(407), *salt);
        for challenge in
            verifier.challenges(unix_secs, salt.to_be_bytes(), Some(source.ip()), stale)
        {
            response.headers_mut().push(
                HeaderName::ProxyAuthenticate,
                Bytes::from(challenge.to_string()),
            );
        }
        response
    };
    let Some(credentials) = chosen else {
        return Err(Box::new(if malformed {
            reply(request, StatusCode::BAD_REQUEST, *salt)
        } else {
            challenge(false, salt)
        }));
    };
    let request_uri = String::from_utf8_lossy(&request.uri().to_bytes()).into_owned();
    if !digest_uri_matches(&credentials.uri, &request_uri) {
        return Err(Box::new(reply(request, StatusCode::BAD_REQUEST, *salt)));
    }
    let directory = services.directory;
    let context = RequestContext {
        method: "INVITE",
        client: Some(source.ip()),
        retransmission: None,
    };
    let verified = verifier.verify(
        &context,
        &credentials,
        |hash| stored_ha1(directory.usable_credential(&credentials.username), hash),
        services.tracker,
        unix_secs,
    );
    let credential = directory.usable_credential(&credentials.username);
    if let Some(credential) = credential
        && !match guard {
            // The guard records a whitelist_rejected event for it.
            // A whitelist-exempt (mobile) device is let in from anywhere over TLS only.
            Some(guard) => {
                guard.invite_source_allowed(directory, credential, source.ip(), transport)
            }
            None => {
                directory.source_permitted(credential, source.ip(), transport == Transport::Tls)
            }
        }
    {
        return Err(Box::new(reply(request, StatusCode::FORBIDDEN, *salt)));
    }
    match (verified, credential) {
        (Ok(_), Some(credential)) => Ok(credential),
        (Err(error), _) => Err(Box::new(match error.answer(AuthRole::Proxy) {
            Answer::Challenge { stale, .. } => challenge(stale, salt),
            _ => reply(request, StatusCode::BAD_REQUEST, *salt),
        })),
        (Ok(_), None) => Err(Box::new(challenge(false, salt))),
    }
}

/// A stateless answer with a To tag.
fn reply(request: &Request, status: StatusCode, salt: u64) -> Response {
    Response::for_request(request, status).with_to_tag(format!("{salt:016x}"))
}

/// The stored HA1 of `credential` for `hash`.
fn stored_ha1(credential: Option<&SipCredential>, hash: HashFunction) -> Option<Ha1> {
    let credential = credential?;
    let (stored, expected) = match hash {
        HashFunction::Md5 => (&credential.ha1_md5, DigestAlgorithm::Md5),
        HashFunction::Sha256 => (&credential.ha1_sha256, DigestAlgorithm::Sha256),
        _ => return None,
    };
    if stored.algorithm() != expected {
        return None;
    }
    Ha1::from_hex(hash, stored.as_hex()).ok()
}

/// `pbx-media` sessions behind the engine's media boundary.
struct RelayAllocator<'a>(&'a MediaRelay);

impl MediaAllocator for RelayAllocator<'_> {
    fn allocate(
        &mut self,
        label: &str,
    ) -> Result<Box<dyn pbx_call::MediaSession>, MediaUnavailable> {
        match self.0.allocate(label) {
            Ok(session) => Ok(Box::new(RelaySession(session))),
            Err(error) => {
                tracing::warn!(%error, "no media session");
                Err(MediaUnavailable)
            }
        }
    }
}

#[derive(Debug)]
struct RelaySession(pbx_media::MediaSession);

fn media_side(side: Side) -> pbx_media::Side {
    match side {
        Side::A => pbx_media::Side::A,
        Side::B => pbx_media::Side::B,
    }
}

impl pbx_call::MediaSession for RelaySession {
    fn local(&self, side: Side) -> SocketAddr {
        self.0.local(media_side(side))
    }

    fn set_remote(&mut self, side: Side, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        if let Err(error) = self.0.set_remote(media_side(side), rtp, rtcp) {
            tracing::debug!(%error, "relay set_remote");
        }
    }

    fn set_hold(&mut self, held: bool) {
        if let Err(error) = self.0.set_hold(held) {
            tracing::debug!(%error, "relay set_hold");
        }
    }

    fn stats(&self) -> [StreamStats; 2] {
        let stats = self.0.stats();
        let convert = |s: &pbx_media::StreamStats| StreamStats {
            packets: s.packets,
            bytes: s.bytes,
            lost: s.lost,
            jitter_us: (s.jitter_ms * 1000.0).max(0.0) as u64,
        };
        [convert(&stats.a_to_b), convert(&stats.b_to_a)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_defaults_validate_and_limits_are_checked() {
        let settings = CallsSection::default().validate().unwrap();
        assert_eq!(settings.ring_timeout, Duration::from_secs(60));
        assert_eq!(settings.session_expires, Some(Duration::from_secs(1800)));
        let section = CallsSection {
            session_expires_secs: 30,
            ..CallsSection::default()
        };
        assert!(section.validate().is_err());
        let section = CallsSection {
            media_advertised_ip: "not-an-ip".into(),
            ..CallsSection::default()
        };
        assert!(section.validate().is_err());
    }

    #[test]
    fn a_transferred_calls_record_is_a_cdr_of_its_own_and_the_calls_current_record() {
        let mut book = CdrBook {
            node_id: "node".into(),
            open: HashMap::new(),
            callee_ids: HashMap::new(),
            transfers: HashMap::new(),
        };
        let first = CallEnded {
            context: CallContext {
                tenant_id: TenantId::from_parts(1, &[1; 10]),
                user_id: UserId::from_parts(1, &[2; 10]),
                device_id: None,
                callee_user_id: None,
                callee_tenant: None,
            },
            call_key: 7,
            transfer_of: None,
            joined: None,
            a_call_id: "call@a".into(),
            direction: Direction::Internal,
            caller: "100".into(),
            callee_dialled: "101".into(),
            callee_normalised: "101".into(),
            trunk: None,
            answered_by: None,
            started_at_ms: 1_000,
            ringing_at_ms: None,
            answered_at_ms: Some(2_000),
            ended_at_ms: 1_000,
            duration_ms: 0,
            billable_secs: 0,
            disposition: Disposition::Failed,
            hangup_status: 500,
            hangup_cause: String::new(),
            hangup_side: HangupSide::System,
            media_a: StreamStats::default(),
            media_b: StreamStats::default(),
        };
        let second = CallEnded {
            call_key: 8,
            transfer_of: Some(7),
            callee_normalised: "102".into(),
            answered_at_ms: None,
            ..first.clone()
        };
        let opened = book.apply(Stage::Started, &first).unwrap().record;
        let transferred = book.apply(Stage::Started, &second).unwrap().record;
        assert_ne!(opened.id, transferred.id);
        assert_eq!(book.current(CallKey(7)).unwrap().id, opened.id);
        let mut ended = first.clone();
        ended.disposition = Disposition::Answered;
        ended.hangup_cause = "transferred".into();
        ended.ended_at_ms = 5_000;
        let closed = book.apply(Stage::Ended, &ended).unwrap().record;
        assert_eq!(closed.id, opened.id);
        assert_eq!(closed.hangup_cause.as_deref(), Some("transferred"));
        // The call goes on with the transferred call's record.
        assert_eq!(book.current(CallKey(7)).unwrap().id, transferred.id);
        book.apply(Stage::Ended, &second).unwrap();
        assert!(book.current(CallKey(7)).is_none());
        assert!(book.transfers.is_empty());
    }

    #[test]
    fn media_addresses_follow_the_sip_listener() {
        let settings = CallSettings::default();
        let (bind, advertised) = settings.media_addresses(&["127.0.0.1:5060".parse().unwrap()]);
        assert_eq!(bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(advertised, bind);
    }
}
