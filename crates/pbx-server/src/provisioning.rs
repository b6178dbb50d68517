//! Phone provisioning wired into `serve`: the TFTP server (`pbx-tftp`) and an HTTPS listener
//! serve files rendered by `pbx-provision`, decided per request against the live directory,
//! with every fetch written to the fetch log and security refusals to the event log.
//!
//! * TFTP: `companyname/<file>` (and the other path forms in `pbx_provision::path`) from a
//!   source on the tenant's whitelist. Uploads (Polycom logs and overrides) are refused with
//!   ERROR 2 and logged as `upload_refused`: phones carry on booting without them, and a
//!   provider keeps no customer data it did not ask for.
//! * HTTPS: `https://host:port/p/<token>/<file>` where the token is the device's (see
//!   `pbx_provision::seal`); the whitelist applies as for TFTP.
//! * Refusals that look like probing or a phone outside the whitelist (`not_whitelisted`,
//!   `unknown_tenant`, `unknown_mac`, `foreign_device`, `bad_token`, `token_mismatch`) are
//!   security events (`provisioning.refused` in the event log) and are reported to the
//!   [`ProvisioningGuard`]: in `serve` that is the SIP fraud guard, so each one is a failure
//!   on the source's ban score (as a failed SIP authentication; a source on the tenant's
//!   whitelist or one a phone authenticated from recently is not banned for them).
//! * Banned sources get nothing: TFTP datagrams from them are dropped before parsing (no
//!   reply, as SIP over UDP does; a request admitted just before the ban gets ERROR 2),
//!   HTTPS connections from them are closed at accept (a kept-alive one gets 403).
//! * What a client is told never depends on whether a MAC or company exists: see
//!   `pbx_provision::resolve` (everything refused before the whitelist admits the source is
//!   "access violation", everything after is "file not found").
//! * Operator template overrides are re-read without a restart: on a fetch at most every
//!   `[provisioning] template_check_secs` (2 s by default) when a file changed, and at once
//!   on `SIGHUP`. A broken override keeps the previous templates serving; the outcome is
//!   logged and written to the event log (`provisioning.templates_reloaded`,
//!   `provisioning.template_error`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use pbx_domain::{DeviceId, TenantId};
use pbx_provision::platform::{family_of, line};
use pbx_provision::render::template_for;
use pbx_provision::{Provisioner, Sealer, TenantValues, resolve};
use pbx_store::{Directory, ProvisioningFetch, Store};
use pbx_tftp::proto::Mode;
use pbx_tftp::server::{
    FileSource, ServerConfig, TftpRefusal, TftpServer, TransferEvent, TransferResult,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The hook the SIP fraud guard plugs into: bans apply to provisioning too, and refused
/// provisioning fetches count towards a source's ban score.
pub trait ProvisioningGuard: Send + Sync + 'static {
    /// Whether requests from `source` are dropped unanswered.
    fn is_banned(&self, source: IpAddr) -> bool;
    /// A refused fetch (security class) from `source`; `reason` is the fetch log result.
    /// `whitelisted`: the source is on the whitelist of the tenant the request named (count
    /// it for the tenant, do not ban the office for it).
    fn refused(
        &self,
        source: IpAddr,
        tenant: Option<TenantId>,
        reason: &'static str,
        whitelisted: bool,
    );
}

/// The SIP fraud guard: a refused fetch is one failure of the source (like a failed digest
/// authentication), so a source probing TFTP is banned after `failures_before_ban`, and the
/// ban then holds for SIP and provisioning alike.
impl ProvisioningGuard for crate::guard::SecurityGuard {
    fn is_banned(&self, source: IpAddr) -> bool {
        crate::guard::SecurityGuard::is_banned(self, source)
    }

    fn refused(
        &self,
        source: IpAddr,
        tenant: Option<TenantId>,
        _reason: &'static str,
        whitelisted: bool,
    ) {
        self.provisioning_refused(source, tenant, whitelisted);
    }
}

/// Protocol of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TFTP.
    Tftp,
    /// HTTPS.
    Https,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tftp => "tftp",
            Self::Https => "https",
        }
    }
}

/// Why a fetch got no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// Answer "access violation" / 403 (else "file not found" / 404).
    pub forbidden: bool,
    /// The fetch log result.
    pub reason: &'static str,
}

/// Counters for `/metrics`-style inspection and tests.
#[derive(Debug, Default)]
pub struct ProvisioningStats {
    /// Files handed to a transfer or an HTTPS response.
    pub rendered: AtomicU64,
    /// Requests refused (any reason).
    pub refused: AtomicU64,
    /// Security refusals.
    pub security: AtomicU64,
    /// Log entries dropped because the log queue was full.
    pub log_dropped: AtomicU64,
    /// Template sets reloaded without a restart.
    pub template_reloads: AtomicU64,
    /// Template reloads refused (the previous set kept serving).
    pub template_errors: AtomicU64,
}

enum LogEntry {
    Fetch(ProvisioningFetch),
    Security {
        at_ms: i64,
        tenant: Option<TenantId>,
        payload: serde_json::Value,
    },
    /// An operator-level event (template reloads).
    Event {
        at_ms: i64,
        kind: &'static str,
        payload: serde_json::Value,
    },
}

type Attribution = (Option<TenantId>, Option<DeviceId>);

/// The decision and rendering service shared by the TFTP and HTTPS front ends.
pub struct ProvisioningService {
    store: Store,
    directory: Arc<Directory>,
    provisioner: Arc<Provisioner>,
    log: mpsc::Sender<LogEntry>,
    guard: Option<Arc<dyn ProvisioningGuard>>,
    /// The operator's template overrides, re-checked on fetches.
    templates: pbx_provision::render::TemplateDir,
    /// TFTP transfers that were handed a file, for the end-of-transfer log line.
    pending: Mutex<HashMap<(SocketAddr, String), Attribution>>,
    stats: Arc<ProvisioningStats>,
}

impl std::fmt::Debug for ProvisioningService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningService")
            .field("platform", &self.provisioner.platform)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ProvisioningService {
    /// The counters.
    pub fn stats(&self) -> Arc<ProvisioningStats> {
        Arc::clone(&self.stats)
    }

    fn record(&self, entry: LogEntry) {
        if self.log.try_send(entry).is_err() {
            self.stats.log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn log_fetch(
        &self,
        protocol: Protocol,
        peer: SocketAddr,
        path: &str,
        attribution: Attribution,
        result: &str,
        bytes: u64,
    ) {
        self.record(LogEntry::Fetch(ProvisioningFetch {
            at_ms: now_ms(),
            tenant_id: attribution.0,
            device_id: attribution.1,
            protocol: protocol.as_str().to_owned(),
            source_ip: pbx_domain::whitelist::canonical_ip(peer.ip()).to_string(),
            source_port: peer.port(),
            path: path.to_owned(),
            result: result.to_owned(),
            bytes,
        }));
    }

    fn deny(
        &self,
        protocol: Protocol,
        peer: SocketAddr,
        path: &str,
        attribution: Attribution,
        denied: Denied,
        security: bool,
    ) -> Denied {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        self.log_fetch(protocol, peer, path, attribution, denied.reason, 0);
        if security {
            self.stats.security.fetch_add(1, Ordering::Relaxed);
            let source = pbx_domain::whitelist::canonical_ip(peer.ip());
            tracing::warn!(%source, path, reason = denied.reason, "provisioning fetch refused");
            self.record(LogEntry::Security {
                at_ms: now_ms(),
                tenant: attribution.0,
                payload: serde_json::json!({
                    "protocol": protocol.as_str(),
                    "source": source.to_string(),
                    "path": path,
                    "reason": denied.reason,
                }),
            });
            if let Some(guard) = &self.guard {
                let whitelisted = attribution.0.is_some_and(|tenant| {
                    pbx_provision::resolve::source_allowed(
                        &self.directory.snapshot(),
                        tenant,
                        None,
                        source,
                    )
                });
                guard.refused(source, attribution.0, denied.reason, whitelisted);
            }
        }
        denied
    }

    /// Re-reads the operator's template overrides if one changed (at most once per check
    /// interval, see [`pbx_provision::render::TemplateDir::poll`]).
    pub fn poll_templates(&self) {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        if let Some(outcome) = self.templates.poll(&self.provisioner.renderer, now) {
            self.template_outcome(&outcome, "changed");
        }
    }

    /// Re-reads the operator's template overrides now (`SIGHUP`), reports and returns the
    /// outcome.
    pub fn reload_templates(&self) -> pbx_provision::render::TemplateReload {
        let outcome = self.templates.reload(&self.provisioner.renderer, true);
        self.template_outcome(&outcome, "signal");
        outcome
    }

    fn template_outcome(&self, outcome: &pbx_provision::render::TemplateReload, trigger: &str) {
        use pbx_provision::render::TemplateReload;
        let dir = self.templates.dir().display().to_string();
        match outcome {
            TemplateReload::Reloaded(overridden) => {
                self.stats.template_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(dir, ?overridden, trigger, "provisioning templates reloaded");
                self.record(LogEntry::Event {
                    at_ms: now_ms(),
                    kind: "provisioning.templates_reloaded",
                    payload: serde_json::json!({
                        "dir": dir,
                        "overridden": overridden,
                        "trigger": trigger,
                    }),
                });
            }
            TemplateReload::Failed(error) => {
                self.stats.template_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    dir,
                    %error,
                    trigger,
                    "provisioning template override refused; the previous templates keep serving"
                );
                self.record(LogEntry::Event {
                    at_ms: now_ms(),
                    kind: "provisioning.template_error",
                    payload: serde_json::json!({
                        "dir": dir,
                        "error": error.to_string(),
                        "trigger": trigger,
                        "kept": "previous templates",
                    }),
                });
            }
            _ => {}
        }
    }

    /// Whether the guard bans `source`.
    pub fn is_banned(&self, source: IpAddr) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|guard| guard.is_banned(pbx_domain::whitelist::canonical_ip(source)))
    }

    /// Decides and renders one request. `token_device` is the device an HTTPS URL token
    /// named: the request may then only reach that device's files or its tenant's common
    /// files. Refusals are logged here; a successful TFTP fetch is logged when its transfer
    /// ends, an HTTPS one by the caller once the body is out.
    ///
    /// # Errors
    /// [`Denied`] with the answer to give.
    pub async fn fetch(
        &self,
        protocol: Protocol,
        peer: SocketAddr,
        path: &str,
        token_device: Option<DeviceId>,
    ) -> Result<(Bytes, Attribution), Denied> {
        if self.is_banned(peer.ip()) {
            // Banned after the request was admitted: refused, not counted again.
            let denied = Denied {
                forbidden: true,
                reason: "banned",
            };
            return Err(self.deny(protocol, peer, path, (None, None), denied, false));
        }
        self.poll_templates();
        let snapshot = self.directory.snapshot();
        let resolved = match resolve(&snapshot, peer.ip(), path) {
            Ok(resolved) => resolved,
            Err(refusal) => {
                let denied = Denied {
                    forbidden: refusal.is_access_violation(),
                    reason: refusal.kind(),
                };
                return Err(self.deny(
                    protocol,
                    peer,
                    path,
                    (refusal.tenant(), None),
                    denied,
                    refusal.is_security(),
                ));
            }
        };
        let tenant = &resolved.tenant;
        let device_id = resolved.device.as_ref().map(|d| d.id);
        let attribution = (Some(tenant.id), device_id.or(token_device));
        if let Some(token_device) = token_device
            && device_id.is_some_and(|id| id != token_device)
        {
            let denied = Denied {
                forbidden: true,
                reason: "token_mismatch",
            };
            return Err(self.deny(protocol, peer, path, attribution, denied, true));
        }
        let not_found = |reason| Denied {
            forbidden: false,
            reason,
        };
        let scope = Store::system_scope(tenant.id);
        let values = match self.store.provisioning().tenant_settings(&scope).await {
            Ok(row) => row
                .map(|row| TenantValues {
                    time_zone: Some(row.time_zone),
                    language: Some(row.language),
                })
                .unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "provisioning: tenant settings unreadable");
                return Err(self.deny(
                    protocol,
                    peer,
                    path,
                    attribution,
                    not_found("store_error"),
                    false,
                ));
            }
        };
        let line = match &resolved.device {
            None => None,
            Some(device) => {
                let secret = match self
                    .store
                    .provisioning()
                    .device_secret(&scope, device.id)
                    .await
                {
                    Ok(Some(secret)) => secret,
                    Ok(None) => {
                        return Err(self.deny(
                            protocol,
                            peer,
                            path,
                            attribution,
                            not_found("not_enabled"),
                            false,
                        ));
                    }
                    Err(error) => {
                        tracing::error!(%error, "provisioning: device secret unreadable");
                        return Err(self.deny(
                            protocol,
                            peer,
                            path,
                            attribution,
                            not_found("store_error"),
                            false,
                        ));
                    }
                };
                if !secret.enabled {
                    return Err(self.deny(
                        protocol,
                        peer,
                        path,
                        attribution,
                        not_found("credential_disabled"),
                        false,
                    ));
                }
                if secret.current_ha1_md5 != secret.provisioning.sealed_ha1_md5 {
                    return Err(self.deny(
                        protocol,
                        peer,
                        path,
                        attribution,
                        not_found("stale_credentials"),
                        false,
                    ));
                }
                let Ok(password) = self
                    .provisioner
                    .sealer
                    .open(device.id, &secret.provisioning.sealed_password)
                else {
                    tracing::error!(device = %device.id, "provisioning: sealed password does not open (provisioning key replaced?)");
                    return Err(self.deny(
                        protocol,
                        peer,
                        path,
                        attribution,
                        not_found("unseal_failed"),
                        false,
                    ));
                };
                let Some(user) = snapshot.user(device.user_id) else {
                    return Err(self.deny(
                        protocol,
                        peer,
                        path,
                        attribution,
                        not_found("unknown_device"),
                        false,
                    ));
                };
                Some(line(
                    tenant,
                    user,
                    device,
                    &secret.auth_username,
                    &password,
                    &secret.realm,
                ))
            }
        };
        let Some(template) = template_for(&resolved.file, resolved.vendor) else {
            return Err(self.deny(
                protocol,
                peer,
                path,
                attribution,
                not_found("not_found"),
                false,
            ));
        };
        let context = self.provisioner.platform.context(
            tenant,
            &values,
            resolved.vendor,
            &resolved.model,
            &family_of(&resolved.file),
            resolved.file.mac(),
            line,
        );
        match self.provisioner.renderer.render(template, &context) {
            Ok(text) => {
                self.stats.rendered.fetch_add(1, Ordering::Relaxed);
                Ok((Bytes::from(text), attribution))
            }
            Err(error) => {
                tracing::error!(%error, template, "provisioning: template failed");
                Err(self.deny(
                    protocol,
                    peer,
                    path,
                    attribution,
                    not_found("render_failed"),
                    false,
                ))
            }
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<(SocketAddr, String), Attribution>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The TFTP end-of-request callback: logs how a transfer that got a file ended, and
    /// refused uploads.
    fn transfer_ended(&self, event: &TransferEvent) {
        let attribution = self.pending().remove(&(event.peer, event.path.clone()));
        let result = match &event.result {
            // Refusals were logged with their precise reason when decided.
            TransferResult::Refused(_) => return,
            TransferResult::Completed => "served",
            TransferResult::WriteRefused => "upload_refused",
            TransferResult::OpenTimedOut => "open_timed_out",
            TransferResult::TooLarge => "too_large",
            TransferResult::SocketUnavailable => "no_socket",
            _ => "transfer_failed",
        };
        let attribution = attribution.unwrap_or_else(|| {
            match resolve(&self.directory.snapshot(), event.peer.ip(), &event.path) {
                Ok(resolved) => (Some(resolved.tenant.id), resolved.device.map(|d| d.id)),
                Err(refusal) => (refusal.tenant(), None),
            }
        });
        self.log_fetch(
            Protocol::Tftp,
            event.peer,
            &event.path,
            attribution,
            result,
            event.bytes,
        );
    }
}

/// The TFTP file source: [`ProvisioningService::fetch`] per read request.
#[derive(Debug, Clone)]
pub struct TftpFiles(pub Arc<ProvisioningService>);

impl FileSource for TftpFiles {
    async fn open(&self, peer: SocketAddr, path: &str, _mode: Mode) -> Result<Bytes, TftpRefusal> {
        match self.0.fetch(Protocol::Tftp, peer, path, None).await {
            Ok((content, attribution)) => {
                self.0
                    .pending()
                    .insert((peer, path.to_owned()), attribution);
                Ok(content)
            }
            Err(denied) if denied.forbidden => Err(TftpRefusal::access_violation()),
            Err(_) => Err(TftpRefusal::not_found()),
        }
    }
}

/// Writes fetch-log entries and security events in batches; prunes the log daily.
async fn log_writer(store: Store, mut rx: mpsc::Receiver<LogEntry>, retention: Duration) {
    let mut batch = Vec::with_capacity(256);
    let mut prune = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        tokio::select! {
            received = rx.recv() => {
                let Some(first) = received else { break };
                let mut entries = vec![first];
                while entries.len() < 512 {
                    match rx.try_recv() {
                        Ok(entry) => entries.push(entry),
                        Err(_) => break,
                    }
                }
                for entry in entries {
                    match entry {
                        LogEntry::Fetch(fetch) => batch.push(fetch),
                        LogEntry::Security { at_ms, tenant, payload } => {
                            if let Err(error) = store
                                .events()
                                .append(at_ms, tenant, "provisioning.refused", &payload)
                                .await
                            {
                                tracing::warn!(%error, "provisioning security event not stored");
                            }
                        }
                        LogEntry::Event { at_ms, kind, payload } => {
                            if let Err(error) =
                                store.events().append(at_ms, None, kind, &payload).await
                            {
                                tracing::warn!(%error, kind, "provisioning event not stored");
                            }
                        }
                    }
                }
                if let Err(error) = store.provisioning().record_fetches(&batch).await {
                    tracing::warn!(%error, lost = batch.len(), "provisioning fetch log not stored");
                }
                batch.clear();
            }
            _ = prune.tick() => {
                let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
                if let Err(error) = store.provisioning().prune_fetches(cutoff).await {
                    tracing::warn!(%error, "provisioning fetch log not pruned");
                }
            }
        }
    }
}

/// Where and how provisioning listens.
#[derive(Debug, Clone)]
pub struct ProvisioningStart {
    /// TFTP listen address (port 69 by default).
    pub tftp_listen: SocketAddr,
    /// Port used when `tftp_listen` cannot be bound for lack of privileges (0: none).
    pub tftp_fallback_port: u16,
    /// HTTPS listen address (`None`: no HTTPS provisioning).
    pub https_listen: Option<SocketAddr>,
    /// TLS certificate and key (PEM) for HTTPS.
    pub tls: (PathBuf, PathBuf),
    /// The provisioning key file (created on first start, mode 0600).
    pub key_path: PathBuf,
    /// Operator template overrides.
    pub templates_dir: PathBuf,
    /// How often a fetch may re-check the override files (zero: only on `SIGHUP`).
    pub template_check: Duration,
    /// Platform values; `tftp_port` and `https_base` are filled in once bound.
    pub platform: pbx_provision::Platform,
    /// Concurrent TFTP transfers.
    pub max_transfers: usize,
    /// How long fetch-log entries are kept.
    pub log_retention: Duration,
}

/// Why provisioning could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// A template (shipped or override) does not compile, or an override is unreadable.
    #[error("provisioning templates: {0}")]
    Templates(#[from] pbx_provision::RenderError),
    /// The provisioning key could not be created or read.
    #[error("provisioning key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A listener could not be bound.
    #[error("provisioning listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS identity could not be loaded.
    #[error("provisioning TLS: {0}")]
    Tls(String),
}

/// Provisioning as running.
#[derive(Debug)]
pub struct RunningProvisioning {
    /// The TFTP request socket as bound.
    pub tftp_addr: SocketAddr,
    /// Set when the configured TFTP address could not be bound and the fallback was used.
    pub tftp_fallback_from: Option<SocketAddr>,
    /// The HTTPS listener as bound.
    pub https_addr: Option<SocketAddr>,
    /// The shared provisioner (the API's manual view and enablement use it).
    pub provisioner: Arc<Provisioner>,
    /// The decision service.
    pub service: Arc<ProvisioningService>,
    /// TFTP server counters.
    pub tftp_stats: Arc<pbx_tftp::server::ServerStats>,
    https_stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningProvisioning {
    /// Stops the listeners; the log writer drains what is queued.
    pub async fn shutdown(self) {
        self.https_stop.cancel();
        let mut writer = None;
        for (index, task) in self.tasks.into_iter().enumerate() {
            if index == 0 {
                writer = Some(task);
            } else {
                task.abort();
            }
        }
        drop(self.service);
        if let Some(writer) = writer
            && tokio::time::timeout(Duration::from_secs(5), writer)
                .await
                .is_err()
        {
            tracing::warn!("provisioning log writer did not drain within 5 s");
        }
    }
}

fn load_key(path: &std::path::Path) -> Result<Vec<u8>, ProvisioningError> {
    let err = |reason: String| ProvisioningError::Key {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => return Err(err("shorter than 32 bytes; remove it to generate a new one (sealed passwords then need provisioning enabled again)".into())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(err(error.to_string())),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    let key: [u8; 32] = rand::random();
    std::fs::write(path, key).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(key.to_vec())
}

/// Starts TFTP, HTTPS and the log writer.
///
/// # Errors
/// [`ProvisioningError`].
pub async fn start(
    config: ProvisioningStart,
    store: Store,
    directory: Arc<Directory>,
    guard: Option<Arc<dyn ProvisioningGuard>>,
) -> Result<RunningProvisioning, ProvisioningError> {
    let key = load_key(&config.key_path)?;
    let sealer = Sealer::new(&key).map_err(|e| ProvisioningError::Key {
        path: config.key_path.clone(),
        reason: e.to_string(),
    })?;
    // Stamp the files before reading them: an edit in between is picked up at the first check.
    let templates =
        pbx_provision::render::TemplateDir::new(&config.templates_dir, config.template_check);
    let overrides = pbx_provision::render::load_overrides(&config.templates_dir)?;
    let renderer = pbx_provision::Renderer::checked(&overrides)?;

    let tftp_config = ServerConfig {
        max_transfers: config.max_transfers.max(1),
        max_file_size: 1024 * 1024,
        ..ServerConfig::default()
    };
    // TFTP first: the port phones reach goes into the rendered files.
    let (tftp_socket_addr, fallback_from) = bind_tftp_addr(&config)?;
    let mut platform = config.platform.clone();
    platform.tftp_port = tftp_socket_addr.port();

    let https_listener = match config.https_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ProvisioningError::Bind { addr, source })?,
        ),
        None => None,
    };
    let https_addr = https_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok());
    if let Some(addr) = https_addr {
        platform.https_base = Some(if addr.port() == 443 {
            format!("https://{}", platform.host)
        } else {
            format!("https://{}:{}", platform.host, addr.port())
        });
    }
    let provisioner = Arc::new(Provisioner {
        sealer,
        renderer,
        platform,
    });

    let (log_tx, log_rx) = mpsc::channel(65_536);
    let writer = tokio::spawn(log_writer(store.clone(), log_rx, config.log_retention));
    let service = Arc::new(ProvisioningService {
        store,
        directory,
        provisioner: Arc::clone(&provisioner),
        log: log_tx,
        guard,
        templates,
        pending: Mutex::new(HashMap::new()),
        stats: Arc::default(),
    });

    let tftp = TftpServer::bind(
        tftp_socket_addr,
        tftp_config,
        TftpFiles(Arc::clone(&service)),
    )
    .await
    .map_err(|source| ProvisioningError::Bind {
        addr: tftp_socket_addr,
        source,
    })?;
    let admission = Arc::clone(&service);
    let events = Arc::clone(&service);
    let tftp = tftp
        .with_admission(move |peer| !admission.is_banned(peer.ip()))
        .with_events(move |event| events.transfer_ended(&event));
    let tftp_addr = tftp.local_addr();
    let tftp_stats = tftp.stats();
    let tftp_task = tokio::spawn(async move {
        if let Err(error) = tftp.run().await {
            tracing::error!(%error, "TFTP server stopped");
        }
    });

    let https_stop = CancellationToken::new();
    let mut tasks = vec![writer, tftp_task];
    tasks.extend(reload_on_hangup(Arc::clone(&service)));
    if let Some(listener) = https_listener {
        let identity = pbx_sip_net::tls::TlsIdentity::load(&config.tls.0, &config.tls.1)
            .map_err(|e| ProvisioningError::Tls(e.to_string()))?;
        let tls = pbx_sip_net::tls::server_config(&identity)
            .map_err(|e| ProvisioningError::Tls(e.to_string()))?;
        tasks.extend(https::serve(
            listener,
            tls,
            Arc::clone(&service),
            https_stop.clone(),
        ));
    }
    tracing::info!(%tftp_addr, ?https_addr, "provisioning listening");
    Ok(RunningProvisioning {
        tftp_addr,
        tftp_fallback_from: fallback_from,
        https_addr,
        provisioner,
        service,
        tftp_stats,
        https_stop,
        tasks,
    })
}

/// `SIGHUP` re-reads the template overrides at once (`systemctl reload cloudpbx`).
fn reload_on_hangup(service: Arc<ProvisioningService>) -> Option<JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangup) => Some(tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    let _ = service.reload_templates();
                }
            })),
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler: template overrides reload on fetch only");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = service;
        None
    }
}

/// The TFTP address to bind: the configured one, or the fallback port when the configured one
/// needs privileges this process lacks.
fn bind_tftp_addr(
    config: &ProvisioningStart,
) -> Result<(SocketAddr, Option<SocketAddr>), ProvisioningError> {
    let addr = config.tftp_listen;
    match std::net::UdpSocket::bind(addr) {
        Ok(probe) => {
            // Port 0 asks for any port: keep the probe's so the banner can print it.
            let bound = if addr.port() == 0 {
                probe.local_addr().unwrap_or(addr)
            } else {
                addr
            };
            drop(probe);
            Ok((bound, None))
        }
        Err(error)
            if error.kind() == std::io::ErrorKind::PermissionDenied
                && config.tftp_fallback_port != 0 =>
        {
            let fallback = SocketAddr::new(addr.ip(), config.tftp_fallback_port);
            tracing::warn!(%addr, %fallback, "no privilege for the TFTP port; using the fallback");
            Ok((fallback, Some(addr)))
        }
        Err(source) => Err(ProvisioningError::Bind { addr, source }),
    }
}

mod https {
    //! The HTTPS provisioning listener: axum over tokio-rustls.

    use super::*;
    use axum::extract::connect_info::Connected;
    use axum::serve::{IncomingStream, Listener};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::server::TlsStream;

    /// Accepted, handshaken connections.
    pub(super) struct TlsListener {
        incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        local: SocketAddr,
    }

    impl Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            match self.incoming.recv().await {
                Some(connection) => connection,
                // The acceptor stopped: park until the server's graceful shutdown ends us.
                None => std::future::pending().await,
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            Ok(self.local)
        }
    }

    /// The peer address, for `ConnectInfo`.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Peer(pub SocketAddr);

    impl Connected<IncomingStream<'_, TlsListener>> for Peer {
        fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
            Self(*stream.remote_addr())
        }
    }

    pub(super) fn serve(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        service: Arc<ProvisioningService>,
        stop: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(256);
        let acceptor = TlsAcceptor::from(tls);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(512));
        let guard = Arc::clone(&service);
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if guard.is_banned(peer.ip()) {
                    continue;
                }
                let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await;
                    drop(permit);
                    if let Ok(Ok(tls)) = handshake {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        let app = Router::new()
            .route("/p/{token}/{file}", get(fetch))
            .with_state(service);
        let server_task = tokio::spawn(async move {
            let served = axum::serve(
                TlsListener {
                    incoming: rx,
                    local,
                },
                app.into_make_service_with_connect_info::<Peer>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
            if let Err(error) = served {
                tracing::error!(%error, "HTTPS provisioning stopped");
            }
        });
        vec![accept_task, server_task]
    }

    async fn fetch(
        State(service): State<Arc<ProvisioningService>>,
        ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
        Path((token, file)): Path<(String, String)>,
    ) -> Response {
        let shown = format!("p/{}…/{file}", token.get(..8).unwrap_or_default());
        let denied = |service: &ProvisioningService, tenant: Option<TenantId>| {
            let denied = Denied {
                forbidden: false,
                reason: "bad_token",
            };
            service.deny(Protocol::Https, peer, &shown, (tenant, None), denied, true);
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        };
        let snapshot = service.directory.snapshot();
        let Some(device) = Sealer::token_device(&token).and_then(|id| snapshot.device(id)) else {
            return denied(&service, None);
        };
        let scope = Store::system_scope(device.tenant_id);
        let row = service.store.provisioning().device(&scope, device.id).await;
        let valid = matches!(&row, Ok(Some(row))
            if service.provisioner.sealer.verify_url_token(device.id, row.url_epoch, &token));
        if !valid {
            return denied(&service, Some(device.tenant_id));
        }
        let Some(tenant) = snapshot.tenant(device.tenant_id) else {
            return denied(&service, None);
        };
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        }
        let path = format!("{}/{file}", tenant.slug);
        match service
            .fetch(Protocol::Https, peer, &path, Some(device.id))
            .await
        {
            Ok((body, attribution)) => {
                service.log_fetch(
                    Protocol::Https,
                    peer,
                    &path,
                    attribution,
                    "served",
                    u64::try_from(body.len()).unwrap_or(u64::MAX),
                );
                let content_type = if body.starts_with(b"<?xml") {
                    "application/xml"
                } else {
                    "text/plain; charset=utf-8"
                };
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    ],
                    body,
                )
                    .into_response()
            }
            Err(denied) if denied.forbidden => {
                (StatusCode::FORBIDDEN, "forbidden\n").into_response()
            }
            Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/provisioning.key");
        let first = load_key(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_key(&path).unwrap(), first);
        std::fs::write(&path, b"short").unwrap();
        assert!(load_key(&path).is_err());
    }

    #[test]
    fn an_unprivileged_tftp_port_falls_back() {
        let config = |addr: &str, fallback| ProvisioningStart {
            tftp_listen: addr.parse().unwrap(),
            tftp_fallback_port: fallback,
            https_listen: None,
            tls: (PathBuf::new(), PathBuf::new()),
            key_path: PathBuf::new(),
            templates_dir: PathBuf::new(),
            template_check: Duration::ZERO,
            platform: pbx_provision::Platform {
                host: "h".into(),
                sip_port: 5060,
                sip_tls_port: 5061,
                transport: "udp".into(),
                register_expiry_secs: 600,
                nat_keepalive_secs: 25,
                codecs: vec![],
                recheck_secs: 86_400,
                default_time_zone: "Europe/Amsterdam".into(),
                default_language: "nl".into(),
                tftp_port: 69,
                https_base: None,
            },
            max_transfers: 1,
            log_retention: Duration::from_secs(1),
        };
        let (addr, fallback) = bind_tftp_addr(&config("127.0.0.1:0", 6969)).unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(fallback, None);
        // Port 69 needs CAP_NET_BIND_SERVICE: as root it binds (unless a running server holds
        // it), otherwise the fallback is used.
        match bind_tftp_addr(&config("127.0.0.1:69", 16969)) {
            Ok((addr, Some(_))) => assert_eq!(addr.port(), 16969),
            Ok((addr, None)) => assert_eq!(addr.port(), 69),
            Err(ProvisioningError::Bind { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// `[provisioning]` in `cloudpbx.toml` (the TFTP listener itself is `[tftp]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningSection {
    /// Serve provisioning at all (TFTP and HTTPS).
    pub enabled: bool,
    /// HTTPS provisioning listener. Empty: the HTTP API's address with port 8443 (port 0 when
    /// the API's port is 0, as in tests); `"off"` disables HTTPS provisioning.
    pub https_listen: String,
    /// Host name phones register with and fetch from, written into every file. Empty:
    /// `sip.public_host`, else 127.0.0.1 (a warning is printed: set it in production).
    pub public_host: String,
    /// SIP transport written into the files: `udp`, `tcp` or `tls`.
    pub sip_transport: String,
    /// Directory with operator template overrides (same relative names as the shipped
    /// templates, e.g. `yealink/mac.cfg`). Empty: `<data_dir>/provisioning/templates`.
    pub templates_dir: String,
    /// Time zone of tenants that set none (IANA name).
    pub default_time_zone: String,
    /// Language of tenants that set none (`en`, `nl`, `de`, `fr`, `es`, `it`).
    pub default_language: String,
    /// Codecs in preference order (`G722`, `PCMA`, `PCMU`, `G729`, `opus`).
    pub codecs: Vec<String>,
    /// How often phones re-check their configuration.
    pub recheck_interval_secs: u32,
    /// Concurrent TFTP transfers (more wait for the phone's retransmission).
    pub max_transfers: u32,
    /// Days the fetch log is kept.
    pub fetch_log_retention_days: u32,
    /// Template overrides are re-checked on a fetch at most this often (seconds; 0: only on
    /// `SIGHUP`). A check is one `stat` per shipped template name.
    pub template_check_secs: u32,
}

impl Default for ProvisioningSection {
    fn default() -> Self {
        Self {
            enabled: true,
            https_listen: String::new(),
            public_host: String::new(),
            sip_transport: "udp".into(),
            templates_dir: String::new(),
            default_time_zone: "Europe/Amsterdam".into(),
            default_language: "nl".into(),
            codecs: vec!["G722".into(), "PCMA".into(), "PCMU".into()],
            recheck_interval_secs: 86_400,
            max_transfers: 4096,
            fetch_log_retention_days: 90,
            template_check_secs: 2,
        }
    }
}

/// `[provisioning]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningSettings {
    /// Serve provisioning.
    pub enabled: bool,
    /// HTTPS listener (`None`: off).
    pub https_listen: Option<SocketAddr>,
    /// Host written into the files (empty: decided at start).
    pub public_host: String,
    /// `udp`, `tcp` or `tls`.
    pub sip_transport: String,
    /// Template override directory.
    pub templates_dir: PathBuf,
    /// Default time zone.
    pub default_time_zone: String,
    /// Default language.
    pub default_language: String,
    /// Codecs in order.
    pub codecs: Vec<String>,
    /// Re-check interval.
    pub recheck_interval_secs: u32,
    /// Concurrent TFTP transfers.
    pub max_transfers: usize,
    /// Fetch log retention.
    pub fetch_log_retention: Duration,
    /// Template override check interval (zero: only on `SIGHUP`).
    pub template_check: Duration,
}

impl ProvisioningSection {
    /// Validates the section; `data_dir` and `http` give the defaults that depend on them.
    ///
    /// # Errors
    /// [`crate::config::ConfigError`] naming the key.
    pub fn validate(
        &self,
        data_dir: &std::path::Path,
        http: SocketAddr,
    ) -> Result<ProvisioningSettings, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let https_listen = match self.https_listen.trim() {
            "off" => None,
            "" => Some(SocketAddr::new(
                http.ip(),
                if http.port() == 0 { 0 } else { 8443 },
            )),
            text => Some(text.parse().map_err(|_| {
                ConfigError::invalid(
                    "provisioning.https_listen",
                    format!("`{text}` is not an ip:port address (or \"off\")"),
                )
            })?),
        };
        if !matches!(self.sip_transport.as_str(), "udp" | "tcp" | "tls") {
            return Err(ConfigError::invalid(
                "provisioning.sip_transport",
                "must be udp, tcp or tls",
            ));
        }
        if pbx_provision::ZoneSpellings::of(&self.default_time_zone).is_none() {
            return Err(ConfigError::invalid(
                "provisioning.default_time_zone",
                format!("`{}` is not an IANA time zone", self.default_time_zone),
            ));
        }
        if pbx_provision::LanguageSpellings::of(&self.default_language).is_none() {
            let known: Vec<&str> = pbx_provision::locale::supported_languages().collect();
            return Err(ConfigError::invalid(
                "provisioning.default_language",
                format!("use one of {}", known.join(", ")),
            ));
        }
        if let Some(unknown) = self
            .codecs
            .iter()
            .find(|codec| pbx_provision::render::CodecSpelling::of(codec).is_none())
        {
            return Err(ConfigError::invalid(
                "provisioning.codecs",
                format!("`{unknown}`: use G722, PCMA, PCMU, G729 or opus"),
            ));
        }
        if self.recheck_interval_secs < 60 {
            return Err(ConfigError::invalid(
                "provisioning.recheck_interval_secs",
                "must be at least 60",
            ));
        }
        let templates_dir = if self.templates_dir.trim().is_empty() {
            data_dir.join("provisioning").join("templates")
        } else {
            PathBuf::from(&self.templates_dir)
        };
        Ok(ProvisioningSettings {
            enabled: self.enabled,
            https_listen,
            public_host: self.public_host.trim().to_owned(),
            sip_transport: self.sip_transport.clone(),
            templates_dir,
            default_time_zone: self.default_time_zone.clone(),
            default_language: self.default_language.to_ascii_lowercase(),
            codecs: self.codecs.clone(),
            recheck_interval_secs: self.recheck_interval_secs,
            max_transfers: usize::try_from(self.max_transfers.max(1)).unwrap_or(4096),
            fetch_log_retention: Duration::from_secs(
                u64::from(self.fetch_log_retention_days.max(1)) * 86_400,
            ),
            template_check: Duration::from_secs(u64::from(self.template_check_secs)),
        })
    }
}

/// Starts provisioning for `serve` (after the SIP listeners are bound: their ports go into
/// the files). `None` when `[provisioning] enabled = false`.
///
/// # Errors
/// [`ProvisioningError`].
pub async fn start_for(
    settings: &crate::config::Settings,
    sip_listeners: &[pbx_sip_net::ListenerConfig],
    store: Store,
    directory: Arc<Directory>,
    guard: Option<Arc<dyn ProvisioningGuard>>,
) -> Result<Option<RunningProvisioning>, ProvisioningError> {
    use pbx_sip_net::Transport;
    let config = &settings.provisioning;
    if !config.enabled {
        return Ok(None);
    }
    let port_of = |transport: Transport, default: u16| {
        sip_listeners
            .iter()
            .filter(|l| l.transport == transport)
            .min_by_key(|l| l.addr.is_ipv6())
            .map_or(default, |l| l.addr.port())
    };
    let sip_transport = match config.sip_transport.as_str() {
        "tcp" => Transport::Tcp,
        _ => Transport::Udp,
    };
    let host = if !config.public_host.is_empty() {
        config.public_host.clone()
    } else if !settings.public_host.is_empty() {
        settings.public_host.clone()
    } else {
        tracing::warn!(
            "provisioning.public_host and sip.public_host are empty: phones are told 127.0.0.1"
        );
        "127.0.0.1".to_owned()
    };
    let (min_expiry, default_expiry, _) = settings.register_expiry;
    let platform = pbx_provision::Platform {
        host,
        sip_port: port_of(sip_transport, 5060),
        sip_tls_port: port_of(Transport::Tls, 5061),
        transport: config.sip_transport.clone(),
        register_expiry_secs: u32::try_from(default_expiry.max(min_expiry).as_secs())
            .unwrap_or(600),
        nat_keepalive_secs: u32::try_from(settings.nat_keepalive_interval.as_secs()).unwrap_or(25),
        codecs: config.codecs.clone(),
        recheck_secs: config.recheck_interval_secs,
        default_time_zone: config.default_time_zone.clone(),
        default_language: config.default_language.clone(),
        tftp_port: 69,
        https_base: None,
    };
    let tls = settings.tls_identity.clone().unwrap_or_else(|| {
        let dir = settings.data_dir.join("tls");
        (dir.join("cert.pem"), dir.join("key.pem"))
    });
    let launch = ProvisioningStart {
        tftp_listen: settings.tftp.0,
        tftp_fallback_port: settings.tftp.1,
        https_listen: config.https_listen,
        tls,
        key_path: settings.data_dir.join("secrets").join("provisioning.key"),
        templates_dir: config.templates_dir.clone(),
        template_check: config.template_check,
        platform,
        max_transfers: config.max_transfers,
        log_retention: config.fetch_log_retention,
    };
    start(launch, store, directory, guard).await.map(Some)
}

/// Gives the management API the provisioner (device enablement, manual view, fetch log).
pub fn with_api(api: Router, provisioning: Option<&RunningProvisioning>) -> Router {
    match provisioning {
        Some(running) => api.layer(axum::Extension(Arc::clone(&running.provisioner))),
        None => api,
    }
}

/// The banner lines of `cloudpbx serve`.
pub fn print_banner(provisioning: Option<&RunningProvisioning>) {
    let Some(running) = provisioning else {
        println!("  provisioning    off ([provisioning] enabled = false)");
        return;
    };
    let host = &running.provisioner.platform.host;
    match running.tftp_fallback_from {
        Some(wanted) => println!(
            "  TFTP            {} (no privilege for {wanted}; phones need tftp://{host}:{}/<company>)",
            running.tftp_addr,
            running.tftp_addr.port()
        ),
        None => println!(
            "  TFTP            {}  (phones: tftp://{host}{}/<company>)",
            running.tftp_addr,
            if running.tftp_addr.port() == 69 {
                String::new()
            } else {
                format!(":{}", running.tftp_addr.port())
            }
        ),
    }
    match (running.https_addr, &running.provisioner.platform.https_base) {
        (Some(addr), Some(base)) => {
            println!("  HTTPS provision {addr}  ({base}/p/<device token>/)");
        }
        _ => println!("  HTTPS provision off"),
    }
}
