//! Bodies of the calls API: trunks, routes, calling settings, CDRs; and the hooks the server
//! plugs in ([`CallsApi`]: the trunk password key, live trunk registration status).

use std::sync::Arc;

use pbx_domain::{
    CallRecord, E164, MediaStreamStats, Route, TenantCallSettings, Transport, Trunk, TrunkId,
    TrunkMode,
};
use pbx_store::SecretKey;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Live registration state of a trunk at its carrier (from the running server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TrunkRegistrationView {
    /// `registering`, `registered`, `failed` or `stopped`.
    pub state: String,
    /// When the current registration expires (Unix ms), while registered.
    pub expires_at_ms: Option<i64>,
    /// The last final status the carrier answered.
    pub last_status: Option<u16>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the last REGISTER was sent (Unix ms).
    pub last_attempt_ms: Option<i64>,
    /// Successful registrations since start.
    pub registrations: u64,
}

/// Where a trunk's carrier host resolved to on the running server (RFC 3263).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrunkResolutionView {
    /// The targets calls try, in order (`ip:port`); the last good answer while lookups fail.
    #[schema(example = json!(["192.0.2.10:5060", "192.0.2.11:5060"]))]
    pub targets: Vec<String>,
    /// Why the last lookup failed, if it did.
    pub last_error: Option<String>,
}

/// Where the API reads live trunk registration states.
pub trait TrunkStatusSource: Send + Sync + std::fmt::Debug {
    /// The state of `trunk`, if it registers.
    fn registration(&self, trunk: TrunkId) -> Option<TrunkRegistrationView>;

    /// Where `trunk`'s host resolved to (`None`: an IP literal, or not known here).
    fn resolution(&self, trunk: &Trunk) -> Option<TrunkResolutionView> {
        let _ = trunk;
        None
    }
}

/// The calls API's server-side parts.
#[derive(Debug, Clone, Default)]
pub struct CallsApi {
    /// Encrypts trunk passwords at rest; without it, trunks with a password are refused.
    pub trunk_key: Option<SecretKey>,
    /// Live registration states.
    pub trunk_status: Option<Arc<dyn TrunkStatusSource>>,
}

fn default_port() -> u16 {
    5060
}

fn default_expires() -> u32 {
    600
}

fn default_true() -> bool {
    true
}

/// `POST` / `PUT` of a trunk.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkRequest {
    /// Name, unique per owner.
    #[schema(example = "carrier-a")]
    pub name: String,
    /// The carrier's host name or IP address.
    #[schema(example = "sip.carrier.example")]
    pub host: String,
    /// The carrier's port (default 5060).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `udp` (default), `tcp` or `tls`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "udp")]
    pub transport: Option<Transport>,
    /// `digest` (default) or `ip_peering`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "digest")]
    pub mode: Option<TrunkMode>,
    /// Our digest user name at the carrier.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Our digest password at the carrier (stored encrypted, never returned; on `PUT`,
    /// absent keeps the stored one).
    #[serde(default)]
    pub auth_password: Option<String>,
    /// Pin the carrier's realm.
    #[serde(default)]
    pub auth_realm: Option<String>,
    /// The user to REGISTER as (default: the auth user name).
    #[serde(default)]
    pub register_user: Option<String>,
    /// Keep a registration at the carrier.
    #[serde(default)]
    pub register: bool,
    /// Registration lifetime asked for (60–86400 s, default 600).
    #[serde(default = "default_expires")]
    pub register_expires_secs: u32,
    /// Networks (CIDR or address) the carrier sends calls from.
    #[serde(default)]
    #[schema(example = json!(["192.0.2.0/28"]))]
    pub inbound_networks: Vec<String>,
    /// Default priority in routes (lower first; default 100).
    #[serde(default)]
    pub priority: Option<i32>,
    /// How the caller's identity is sent to the carrier: `pai` (default: the number in
    /// `P-Asserted-Identity`, also for anonymous calls, with `Privacy: id` then), `from`
    /// (the `From` header only, `Privacy: id` when anonymous) or `rpid` (`Remote-Party-ID`
    /// with `privacy=off`/`full`). `From` carries the number, or `Anonymous`, in every mode.
    #[serde(default)]
    #[schema(example = "pai")]
    pub caller_identity: Option<String>,
    /// Enabled (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// A trunk (the password is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrunkView {
    /// Id.
    pub id: Uuid,
    /// Owning tenant; absent for operator trunks.
    pub tenant_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Carrier host.
    pub host: String,
    /// Carrier port.
    pub port: u16,
    /// Transport.
    pub transport: String,
    /// `digest` or `ip_peering`.
    pub mode: String,
    /// Digest user name.
    pub auth_username: Option<String>,
    /// Whether a password is stored.
    pub has_password: bool,
    /// Pinned realm.
    pub auth_realm: Option<String>,
    /// REGISTER user.
    pub register_user: Option<String>,
    /// Registers at the carrier.
    pub register: bool,
    /// Registration lifetime asked for.
    pub register_expires_secs: u32,
    /// Inbound source networks.
    pub inbound_networks: Vec<String>,
    /// Default priority.
    pub priority: i32,
    /// How the caller's identity is sent to the carrier: `pai`, `from` or `rpid`.
    #[schema(example = "pai")]
    pub caller_identity: String,
    /// Enabled.
    pub enabled: bool,
    /// Live registration state (registering trunks on a running server).
    pub registration: Option<TrunkRegistrationView>,
    /// Where the host name resolved to (NAPTR/SRV/A/AAAA) on a running server; absent for an
    /// IP literal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<TrunkResolutionView>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl TrunkView {
    /// The view of `trunk` with its live registration state.
    pub fn new(trunk: Trunk, registration: Option<TrunkRegistrationView>) -> Self {
        Self {
            id: trunk.id.as_uuid(),
            tenant_id: trunk.tenant_id.map(|id| id.as_uuid()),
            name: trunk.name,
            host: trunk.host,
            port: trunk.port,
            transport: trunk.transport.as_str().to_owned(),
            mode: trunk.mode.as_str().to_owned(),
            auth_username: trunk.auth_username,
            has_password: trunk.has_password,
            auth_realm: trunk.auth_realm,
            register_user: trunk.register_user,
            register: trunk.register,
            register_expires_secs: trunk.register_expires_secs,
            inbound_networks: trunk
                .inbound_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            priority: trunk.priority,
            caller_identity: trunk.caller_identity.as_str().to_owned(),
            enabled: trunk.enabled,
            registration,
            resolution: None,
            created_at_ms: trunk.created_at_ms,
            updated_at_ms: trunk.updated_at_ms,
        }
    }
}

/// One trunk of a route.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTrunkBody {
    /// The trunk (the tenant's own or an operator trunk).
    pub trunk_id: Uuid,
    /// Priority on this route (lower first); the trunk's own when absent.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// `POST` / `PUT` of a route.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    /// E.164 digits the destination starts with (`31`, `+3120`, `""` for everything).
    #[schema(example = "316")]
    pub prefix: String,
    /// Trunks to try, in order of priority, failing over on 5xx and timeouts.
    pub trunks: Vec<RouteTrunkBody>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A route.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouteView {
    /// Id.
    pub id: Uuid,
    /// Owning tenant; absent for operator routes.
    pub tenant_id: Option<Uuid>,
    /// Prefix (E.164 digits without `+`).
    pub prefix: String,
    /// Trunks.
    pub trunks: Vec<RouteTrunkBody>,
    /// Free text.
    pub description: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl From<Route> for RouteView {
    fn from(route: Route) -> Self {
        Self {
            id: route.id.as_uuid(),
            tenant_id: route.tenant_id.map(|id| id.as_uuid()),
            prefix: route.prefix,
            trunks: route
                .trunks
                .iter()
                .map(|entry| RouteTrunkBody {
                    trunk_id: entry.trunk_id.as_uuid(),
                    priority: entry.priority,
                })
                .collect(),
            description: route.description,
            created_at_ms: route.created_at_ms,
            updated_at_ms: route.updated_at_ms,
        }
    }
}

/// `PUT /api/v1/tenants/{tenant}/call-settings`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallSettingsRequest {
    /// ISO 3166 country of the national numbering plan (`NL`).
    #[schema(example = "NL")]
    pub country: String,
    /// The number presented for users without a DID of their own.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "+31201110000")]
    pub main_number: Option<E164>,
}

/// A tenant's calling settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallSettingsView {
    /// Country of the numbering plan.
    pub country: String,
    /// Main number.
    pub main_number: Option<String>,
}

impl From<TenantCallSettings> for CallSettingsView {
    fn from(settings: TenantCallSettings) -> Self {
        Self {
            country: settings.country,
            main_number: settings.main_number.map(String::from),
        }
    }
}

/// Query of `GET /api/v1/tenants/{tenant}/cdrs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CdrQuery {
    /// Calls that started at or after this time (Unix ms).
    pub from: Option<i64>,
    /// Calls that started before this time (Unix ms).
    pub to: Option<i64>,
    /// A user (id or extension).
    pub user: Option<String>,
    /// `internal`, `outbound` or `inbound`.
    pub direction: Option<String>,
    /// `answered`, `busy`, `no_answer`, `cancelled`, `rejected`, `blocked` (refused by the
    /// fraud guard), `unavailable`, `failed`, `interrupted`.
    pub disposition: Option<String>,
    /// `open` or `closed`.
    pub state: Option<String>,
    /// Digits contained in the caller, callee or dialled number.
    pub number: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Per-stream media statistics of a call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaStatsView {
    /// `caller` or `callee`.
    pub leg: String,
    /// Media type.
    pub media: String,
    /// Codec.
    pub codec: Option<String>,
    /// RTP packets received from the leg.
    pub packets_in: u64,
    /// RTP packets sent to the leg.
    pub packets_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets lost.
    pub packets_lost: u64,
    /// Jitter (µs).
    pub jitter_us: u64,
}

impl From<MediaStreamStats> for MediaStatsView {
    fn from(stats: MediaStreamStats) -> Self {
        Self {
            leg: stats.leg,
            media: stats.media,
            codec: stats.codec,
            packets_in: stats.packets_in,
            packets_out: stats.packets_out,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
            packets_lost: stats.packets_lost,
            jitter_us: stats.jitter_us,
        }
    }
}

/// A call detail record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CdrView {
    /// Id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// The tenant's user on the call.
    pub user_id: Option<Uuid>,
    /// The user's device.
    pub device_id: Option<Uuid>,
    /// `internal`, `outbound` or `inbound`.
    pub direction: String,
    /// Calling number or extension.
    pub caller: String,
    /// Called number as dialled.
    pub callee_dialled: String,
    /// Called number normalised (E.164 or extension).
    pub callee: String,
    /// Trunk used.
    pub trunk_id: Option<Uuid>,
    /// The caller side's SIP Call-ID.
    pub sip_call_id: String,
    /// Start (Unix ms).
    pub start_ms: i64,
    /// First ringing.
    pub ring_ms: Option<i64>,
    /// Answer.
    pub answer_ms: Option<i64>,
    /// End.
    pub end_ms: Option<i64>,
    /// Whole call, seconds (rounded up).
    pub duration_secs: i64,
    /// Answer to end, seconds (rounded up).
    pub billable_secs: i64,
    /// How it ended: `answered`, `busy`, `no_answer`, `cancelled`, `rejected`, `blocked`
    /// (refused by the fraud guard: blocked destination, class of service, a usage limit, a
    /// blocked account), `unavailable`, `failed`, `interrupted`.
    #[schema(example = "answered")]
    pub disposition: Option<String>,
    /// Final SIP status.
    pub sip_status: Option<u16>,
    /// Cause text.
    pub hangup_cause: Option<String>,
    /// `caller`, `callee` or `system`.
    pub hangup_side: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Media statistics per stream.
    pub media: Vec<MediaStatsView>,
}

impl From<CallRecord> for CdrView {
    fn from(record: CallRecord) -> Self {
        Self {
            id: record.id.as_uuid(),
            tenant_id: record.tenant_id.as_uuid(),
            user_id: record.user_id.map(|id| id.as_uuid()),
            device_id: record.device_id.map(|id| id.as_uuid()),
            direction: record.direction.as_str().to_owned(),
            caller: record.caller,
            callee_dialled: record.callee_dialled,
            callee: record.callee,
            trunk_id: record.trunk_id.map(|id| id.as_uuid()),
            sip_call_id: record.sip_call_id,
            start_ms: record.start_ms,
            ring_ms: record.ring_ms,
            answer_ms: record.answer_ms,
            end_ms: record.end_ms,
            duration_secs: record.duration_secs,
            billable_secs: record.billable_secs,
            disposition: record.disposition.map(|d| d.as_str().to_owned()),
            sip_status: record.sip_status,
            hangup_cause: record.hangup_cause,
            hangup_side: record.hangup_side.map(|s| s.as_str().to_owned()),
            state: record.state.as_str().to_owned(),
            media: record.media.into_iter().map(Into::into).collect(),
        }
    }
}

/// A page of CDRs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CdrPage {
    /// Records, newest first.
    pub items: Vec<CdrView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
