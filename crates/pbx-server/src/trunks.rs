//! Trunks at run time: the live routing snapshot the call engine reads, and the outbound
//! registration client that keeps our account registered at each carrier.
//!
//! - [`LiveRouting`] holds the current [`RoutingSnapshot`] (trunks with their decrypted
//!   credentials, routes, tenant settings, numbers) and reloads it after every configuration
//!   change ([`LiveRouting::follow`]). The call engine calls
//!   [`LiveRouting::snapshot`] from its synchronous callbacks; no database access. The
//!   carrier hosts the snapshot names are resolved (RFC 3263, [`crate::dns`]) when it loads
//!   and kept fresh in the background; [`LiveRouting::trunk_targets`] reads them without
//!   waiting.
//! - [`ClientRequests`] lets an async task send a non-INVITE request through the running
//!   endpoint and await its final response: the platform TU owns one and routes client
//!   transaction events to it ([`ClientRequests::route`]).
//! - [`TrunkRegistrar`] runs one task per registering trunk: REGISTER with digest
//!   authentication (401 or 407, via `pbx_sip_auth::DigestClient`), refresh before expiry,
//!   retry with exponential backoff after failures, and a status the API shows
//!   ([`TrunkRegistrar::status`]). It registers at the carrier's first resolved target and
//!   stays there while it answers; a timeout, transport error or 5xx moves on to the next
//!   target within the same attempt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use pbx_api::model::{TrunkRegistrationView, TrunkResolutionView, TrunkStatusSource};
use pbx_domain::{Transport as DomainTransport, Trunk, TrunkAuth, TrunkId};
use pbx_routing::{RoutingParts, RoutingSnapshot};
use pbx_sip::{HeaderName, Message, Request, Response};
use pbx_sip_auth::{AuthRole, DigestClient};
use pbx_sip_engine::{Event, Target, TransactionId};
use pbx_sip_net::{Context, EndpointHandle, TransactionUser, Transport};
use pbx_store::{ConfigChange, SecretKey, Store, StoreResult};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::dns::{CarrierKey, CarrierTargets, DnsSettings, ResolvedTarget};

/// The live routing snapshot.
#[derive(Debug)]
pub struct LiveRouting {
    current: RwLock<Arc<RoutingSnapshot>>,
    loaded: watch::Sender<u64>,
    key: SecretKey,
    /// The carrier hosts' resolved targets (RFC 3263), refreshed in the background: the call
    /// path is synchronous and never waits for DNS.
    carriers: Arc<CarrierTargets>,
}

impl LiveRouting {
    /// Loads the first snapshot (trunk passwords decrypted with `key`) and resolves its
    /// carrier hosts through `carriers` (bounded).
    pub async fn load(
        store: &Store,
        key: SecretKey,
        carriers: Arc<CarrierTargets>,
    ) -> StoreResult<Arc<Self>> {
        let generation = store.generation();
        let snapshot = read(store, &key).await?;
        carriers.track(carrier_keys(&snapshot)).await;
        let (loaded, _) = watch::channel(generation);
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(snapshot)),
            loaded,
            key,
            carriers,
        }))
    }

    /// Where to send to a trunk, in the order to try: its host when that is an IP literal,
    /// else the targets its name last resolved to (empty: never resolved, skip the trunk).
    pub fn trunk_targets(
        &self,
        host: &str,
        port: u16,
        transport: DomainTransport,
    ) -> Arc<[ResolvedTarget]> {
        self.carriers
            .targets(&CarrierKey::of_trunk(host, port, transport))
    }

    /// The carrier host table (for the API view and tests).
    pub fn carriers(&self) -> &Arc<CarrierTargets> {
        &self.carriers
    }

    /// The current snapshot (hold it as long as needed; a reload swaps in a new one).
    pub fn snapshot(&self) -> Arc<RoutingSnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A receiver that changes after every reload (value: the store generation loaded).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.loaded.subscribe()
    }

    /// Reloads now.
    pub async fn refresh(&self, store: &Store) -> StoreResult<()> {
        let generation = store.generation();
        let snapshot = read(store, &self.key).await?;
        self.carriers.track(carrier_keys(&snapshot)).await;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        self.loaded.send_replace(generation);
        Ok(())
    }

    /// Waits until the snapshot reflects store generation `generation`.
    pub async fn caught_up(&self, generation: u64) {
        let mut loaded = self.loaded.subscribe();
        let _ = loaded.wait_for(|loaded| *loaded >= generation).await;
    }

    /// Reloads after every store change that can affect routing until aborted (failures
    /// retried after 1 s). Changes to users, devices and credentials only move the
    /// generation (bulk provisioning must not reload the trunks per device).
    pub fn follow(self: &Arc<Self>, store: Store) -> JoinHandle<()> {
        let live = Arc::clone(self);
        let mut changes = store.subscribe();
        tokio::spawn(async move {
            loop {
                let wanted = *changes.borrow_and_update();
                let loaded = *live.loaded.borrow();
                if loaded < wanted && !affects_routing(&store, loaded, wanted) {
                    // Monotonic: a concurrent refresh may have loaded a newer generation.
                    live.loaded.send_if_modified(|loaded| {
                        let newer = wanted > *loaded;
                        if newer {
                            *loaded = wanted;
                        }
                        newer
                    });
                } else if loaded < wanted
                    && let Err(error) = live.refresh(&store).await
                {
                    tracing::warn!(%error, "routing reload failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

/// Whether the changes between two generations can change the routing snapshot (trunks,
/// routes, tenant call settings, numbers; unknown changes may).
fn affects_routing(store: &Store, from: u64, to: u64) -> bool {
    store.changes_since(from, to).is_none_or(|changes| {
        changes
            .iter()
            .any(|change| !matches!(change, ConfigChange::User(..)))
    })
}

/// The carrier hosts of every enabled trunk.
fn carrier_keys(snapshot: &RoutingSnapshot) -> Vec<CarrierKey> {
    snapshot
        .trunks()
        .filter(|trunk| trunk.enabled)
        .map(|trunk| CarrierKey::of_trunk(&trunk.host, trunk.port, trunk.transport))
        .collect()
}

async fn read(store: &Store, key: &SecretKey) -> StoreResult<RoutingSnapshot> {
    Ok(RoutingSnapshot::build(RoutingParts {
        trunks: store.trunks().load_all_with_auth(key).await?,
        routes: store.routes().load_all().await?,
        settings: store.trunks().load_all_settings().await?,
        numbers: store.trunks().assigned_numbers().await?,
    }))
}

/// How a client request ended.
#[derive(Debug, Clone)]
pub enum ClientOutcome {
    /// A final response.
    Final(Response),
    /// No final response (Timer F) or a transport error.
    Failed(&'static str),
}

/// Non-INVITE client transactions started for async tasks, by transaction id.
#[derive(Debug, Default)]
pub struct ClientRequests {
    pending: HashMap<TransactionId, oneshot::Sender<ClientOutcome>>,
}

impl ClientRequests {
    /// Sends `request` to `target` in a new client transaction; `reply` gets the outcome.
    pub fn send(
        &mut self,
        ctx: &mut Context<'_>,
        request: Request,
        target: Target,
        reply: oneshot::Sender<ClientOutcome>,
    ) {
        let now = ctx.now();
        match ctx.engine().send_request(now, request, target) {
            Ok(transaction) => {
                self.pending.insert(transaction.id(), reply);
            }
            Err(error) => {
                tracing::debug!(%error, "client request not sent");
                let _ = reply.send(ClientOutcome::Failed("not sent"));
            }
        }
    }

    /// Takes the events of our transactions; gives every other event back.
    pub fn route(&mut self, event: Event) -> Option<Event> {
        let (transaction, outcome) = match &event {
            Event::Response {
                transaction,
                response,
            } => {
                if !response.status().is_final() {
                    return if self.pending.contains_key(transaction) {
                        None
                    } else {
                        Some(event)
                    };
                }
                (*transaction, ClientOutcome::Final(response.clone()))
            }
            Event::TimedOut { transaction, .. } => (*transaction, ClientOutcome::Failed("timeout")),
            Event::TransportError { transaction } => {
                (*transaction, ClientOutcome::Failed("transport error"))
            }
            Event::Terminated { transaction } => (
                *transaction,
                ClientOutcome::Failed("terminated without a response"),
            ),
            _ => return Some(event),
        };
        match self.pending.remove(&transaction) {
            Some(reply) => {
                let _ = reply.send(outcome);
                None
            }
            None => Some(event),
        }
    }

    /// Transactions in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A TU that can send client requests for async tasks (the platform TU).
pub trait SendsClientRequests: TransactionUser {
    /// The TU's client request table.
    fn client_requests(&mut self) -> &mut ClientRequests;
}

/// Registration client settings.
#[derive(Debug, Clone)]
pub struct RegistrationOptions {
    /// First retry delay after a failure (doubles up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Re-register this long before expiry (at most half the granted lifetime).
    pub refresh_margin: Duration,
    /// How long to wait for a final response (on top of the transaction's own Timer F).
    pub response_timeout: Duration,
}

impl Default for RegistrationOptions {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            refresh_margin: Duration::from_secs(30),
            response_timeout: Duration::from_secs(40),
        }
    }
}

/// The live registration states, shared with the API.
#[derive(Debug, Default)]
pub struct RegistrationStatus {
    states: Mutex<HashMap<TrunkId, TrunkRegistrationView>>,
}

impl RegistrationStatus {
    fn update(&self, trunk: TrunkId, change: impl FnOnce(&mut TrunkRegistrationView)) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let state = states
            .entry(trunk)
            .or_insert_with(|| TrunkRegistrationView {
                state: "registering".to_owned(),
                expires_at_ms: None,
                last_status: None,
                last_error: None,
                last_attempt_ms: None,
                registrations: 0,
            });
        change(state);
    }

    fn remove(&self, trunk: TrunkId) {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&trunk);
    }
}

impl TrunkStatusSource for RegistrationStatus {
    fn registration(&self, trunk: TrunkId) -> Option<TrunkRegistrationView> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&trunk)
            .cloned()
    }
}

/// What a registration task was started with (a change restarts it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    host: String,
    port: u16,
    transport: DomainTransport,
    user: String,
    auth: TrunkAuth,
    realm: Option<String>,
    expires: u32,
}

impl Account {
    fn of(trunk: &Trunk, auth: Option<&TrunkAuth>) -> Option<Self> {
        let auth = auth?.clone();
        Some(Self {
            host: trunk.host.clone(),
            port: trunk.port,
            transport: trunk.transport,
            user: trunk
                .register_user
                .clone()
                .unwrap_or_else(|| auth.username.clone()),
            auth,
            realm: trunk.auth_realm.clone(),
            expires: trunk.register_expires_secs.max(60),
        })
    }
}

/// Keeps every registering trunk registered.
#[derive(Debug)]
pub struct TrunkRegistrar {
    status: Arc<RegistrationStatus>,
    manager: JoinHandle<()>,
}

impl TrunkRegistrar {
    /// Starts the manager: it follows `routing` and runs one registration task per enabled
    /// registering trunk, through `endpoint`. `local` is the SIP listener to register from
    /// (its port goes into Via and Contact).
    pub fn start<T: SendsClientRequests>(
        routing: Arc<LiveRouting>,
        endpoint: EndpointHandle<T>,
        local: SocketAddr,
        options: RegistrationOptions,
    ) -> Self {
        let status = Arc::new(RegistrationStatus::default());
        let manager = tokio::spawn(manage(
            routing,
            endpoint,
            local,
            options,
            Arc::clone(&status),
        ));
        Self { status, manager }
    }

    /// The live states (plug into the API with `pbx_api::model::CallsApi`).
    pub fn status(&self) -> Arc<RegistrationStatus> {
        Arc::clone(&self.status)
    }

    /// Stops every registration task (no un-REGISTER is sent: the carrier's binding expires).
    pub fn stop(&self) {
        self.manager.abort();
    }
}

impl Drop for TrunkRegistrar {
    fn drop(&mut self) {
        self.manager.abort();
    }
}

struct Running {
    account: Account,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn manage<T: SendsClientRequests>(
    routing: Arc<LiveRouting>,
    endpoint: EndpointHandle<T>,
    local: SocketAddr,
    options: RegistrationOptions,
    status: Arc<RegistrationStatus>,
) {
    let mut running: HashMap<TrunkId, Running> = HashMap::new();
    let mut changes = routing.subscribe();
    loop {
        let snapshot = routing.snapshot();
        let wanted: HashMap<TrunkId, Account> = snapshot
            .registering_trunks()
            .filter_map(|(trunk, auth)| Some((trunk.id, Account::of(trunk, auth)?)))
            .collect();
        running.retain(|id, current| {
            let keep = wanted.get(id) == Some(&current.account);
            if !keep {
                status.remove(*id);
            }
            keep
        });
        for (id, account) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let registration = Registration {
                routing: Arc::clone(&routing),
                id,
                account: account.clone(),
                endpoint: endpoint.clone(),
                local,
                options: options.clone(),
                status: Arc::clone(&status),
            };
            let task = tokio::spawn(registration.run());
            running.insert(id, Running { account, task });
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn now_ms() -> i64 {
    pbx_api::now_ms()
}

/// The local address to put in Via/Contact: the listener's, or (for a wildcard listener)
/// the address the OS would use towards the carrier.
pub(crate) fn contact_addr(local: SocketAddr, carrier: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let bind: SocketAddr = if carrier.is_ipv6() {
        "[::]:0".parse().unwrap_or(local)
    } else {
        "0.0.0.0:0".parse().unwrap_or(local)
    };
    std::net::UdpSocket::bind(bind)
        .and_then(|socket| {
            socket.connect(carrier)?;
            socket.local_addr()
        })
        .map_or(local, |found| SocketAddr::new(found.ip(), local.port()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn host_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

struct Session {
    call_id: String,
    from_tag: String,
    cseq: u32,
    digest: Option<(AuthRole, DigestClient)>,
    /// The target registered at (or tried) last: tried first next time.
    carrier: Option<SocketAddr>,
}

fn register_request(
    account: &Account,
    session: &mut Session,
    local: SocketAddr,
    expires: u32,
) -> Option<Request> {
    session.cseq = session.cseq.wrapping_add(1);
    let transport = match account.transport {
        DomainTransport::Tcp => "TCP",
        DomainTransport::Tls => "TLS",
        _ => "UDP",
    };
    let scheme = if account.transport == DomainTransport::Tls {
        "sips"
    } else {
        "sip"
    };
    let host = if account.host.contains(':') && !account.host.starts_with('[') {
        format!("[{}]", account.host)
    } else {
        account.host.clone()
    };
    let uri = match pbx_routing::explicit_port(&account.host, account.port, account.transport) {
        Some(port) => format!("{scheme}:{host}:{port}"),
        None => format!("{scheme}:{host}"),
    };
    let aor = format!("{scheme}:{}@{host}", account.user);
    let branch = format!("z9hG4bK{}", hex(&rand::random::<[u8; 10]>()));
    let contact_transport = match account.transport {
        DomainTransport::Tcp => ";transport=tcp",
        _ => "",
    };
    let mut text = format!(
        "REGISTER {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {via};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{aor}>;tag={tag}\r\n\
         To: <{aor}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <{scheme}:{user}@{via}{contact_transport}>\r\n\
         Expires: {expires}\r\n\
         User-Agent: CloudPBX/{version}\r\n",
        via = host_text(local),
        tag = session.from_tag,
        call_id = session.call_id,
        cseq = session.cseq,
        user = account.user,
        version = env!("CARGO_PKG_VERSION"),
    );
    if let Some((role, client)) = session.digest.as_mut() {
        match client.authorization("REGISTER", &uri, rand::random()) {
            Ok(credentials) => {
                text.push_str(role.credentials_header());
                text.push_str(": ");
                text.push_str(&credentials.to_string());
                text.push_str("\r\n");
            }
            Err(error) => {
                tracing::warn!(%error, "trunk digest answer failed");
                return None;
            }
        }
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match Message::parse(Bytes::from(text)) {
        Ok(Message::Request(request)) => Some(request),
        _ => None,
    }
}

/// The lifetime the registrar granted: the Contact `expires`, else the Expires header.
fn granted_expires(response: &Response, requested: u32) -> u32 {
    // Several bindings of the account may come back: the earliest expiry is safe.
    let from_contact = response.contacts().ok().and_then(|contacts| {
        contacts
            .iter()
            .filter_map(|contact| contact.address().and_then(|address| address.expires))
            .min()
    });
    from_contact
        .or_else(|| response.expires().ok().flatten())
        .unwrap_or(requested)
}

enum Attempt {
    Registered(u32),
    Failed(Option<u16>, String),
}

async fn send<T: SendsClientRequests>(
    endpoint: &EndpointHandle<T>,
    request: Request,
    target: Target,
    timeout: Duration,
) -> ClientOutcome {
    let (reply, outcome) = oneshot::channel();
    let queued = endpoint
        .execute(move |tu, ctx| tu.client_requests().send(ctx, request, target, reply))
        .await;
    if queued.is_err() {
        return ClientOutcome::Failed("endpoint stopped");
    }
    match tokio::time::timeout(timeout, outcome).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => ClientOutcome::Failed("endpoint dropped the request"),
        Err(_) => ClientOutcome::Failed("timeout"),
    }
}

/// One trunk's registration task: what every attempt uses.
struct Registration<T: SendsClientRequests> {
    routing: Arc<LiveRouting>,
    id: TrunkId,
    account: Account,
    endpoint: EndpointHandle<T>,
    local: SocketAddr,
    options: RegistrationOptions,
    status: Arc<RegistrationStatus>,
}

impl<T: SendsClientRequests> Registration<T> {
    /// One registration attempt: at the target registered at last (if still resolved), then at
    /// the carrier's other targets in order while each fails with a timeout, transport error,
    /// 408 or 5xx.
    async fn attempt(&self, session: &mut Session) -> Attempt {
        let account = &self.account;
        let targets = self
            .routing
            .trunk_targets(&account.host, account.port, account.transport);
        let mut order: Vec<SocketAddr> = targets.iter().map(|target| target.address).collect();
        if let Some(position) = session
            .carrier
            .and_then(|last| order.iter().position(|address| *address == last))
        {
            let last = order.remove(position);
            order.insert(0, last);
        }
        let mut outcome = Attempt::Failed(None, format!("cannot resolve {}", account.host));
        for carrier in order {
            if session.carrier != Some(carrier) {
                // A challenge from another server does not carry over.
                session.digest = None;
                session.carrier = Some(carrier);
            }
            outcome = self.attempt_at(session, carrier).await;
            match &outcome {
                Attempt::Failed(code, error)
                    if code.is_none_or(|code| code == 408 || code >= 500) =>
                {
                    tracing::info!(trunk = %self.id, %carrier, ?code, %error, "carrier target failed; trying the next");
                }
                _ => return outcome,
            }
        }
        outcome
    }

    /// One registration attempt at `carrier` (digest challenges and 423 answered).
    async fn attempt_at(&self, session: &mut Session, carrier: SocketAddr) -> Attempt {
        let (account, status, id) = (&self.account, &self.status, self.id);
        let local = contact_addr(self.local, carrier);
        let target = match account.transport {
            DomainTransport::Tcp => Target::stream(pbx_sip::Transport::Tcp, carrier, None),
            DomainTransport::Tls => Target::stream(pbx_sip::Transport::Tls, carrier, None),
            _ => Target::udp(carrier),
        };
        let mut expires = account.expires;
        // A 401/407, a 423 and one stale re-challenge may each need a retry.
        for _ in 0..4 {
            let Some(request) = register_request(account, session, local, expires) else {
                return Attempt::Failed(None, "could not build the REGISTER".to_owned());
            };
            status.update(id, |state| state.last_attempt_ms = Some(now_ms()));
            let response = match send(
                &self.endpoint,
                request,
                target.clone(),
                self.options.response_timeout,
            )
            .await
            {
                ClientOutcome::Final(response) => response,
                ClientOutcome::Failed(why) => return Attempt::Failed(None, why.to_owned()),
            };
            let code = response.status().0;
            status.update(id, |state| state.last_status = Some(code));
            match code {
                200..=299 => return Attempt::Registered(granted_expires(&response, expires)),
                401 | 407 => {
                    let role = if code == 401 {
                        AuthRole::Www
                    } else {
                        AuthRole::Proxy
                    };
                    let header = if code == 401 {
                        HeaderName::WwwAuthenticate
                    } else {
                        HeaderName::ProxyAuthenticate
                    };
                    let values: Vec<&[u8]> = response.headers().get_all(&header).collect();
                    let mut client = match session.digest.take() {
                        Some((_, client)) => client,
                        None => {
                            match DigestClient::new(&account.auth.username, &account.auth.password)
                            {
                                Ok(client) => client,
                                Err(error) => {
                                    return Attempt::Failed(Some(code), error.to_string());
                                }
                            }
                        }
                    };
                    if let Err(error) = client.handle_challenge(role, &values) {
                        return Attempt::Failed(Some(code), format!("digest: {error}"));
                    }
                    session.digest = Some((role, client));
                }
                423 => {
                    let minimum = response
                        .min_expires()
                        .ok()
                        .flatten()
                        .unwrap_or(expires.saturating_mul(2));
                    if minimum <= expires {
                        return Attempt::Failed(
                            Some(code),
                            "423 without a usable Min-Expires".to_owned(),
                        );
                    }
                    expires = minimum;
                }
                _ => {
                    return Attempt::Failed(Some(code), format!("carrier answered {code}"));
                }
            }
        }
        Attempt::Failed(None, "too many challenges".to_owned())
    }

    /// Registers, refreshes and retries until aborted.
    async fn run(self) {
        let (options, status, id) = (&self.options, &self.status, self.id);
        let mut session = Session {
            call_id: format!("{}@cloudpbx", hex(&rand::random::<[u8; 12]>())),
            from_tag: hex(&rand::random::<[u8; 6]>()),
            cseq: 0,
            digest: None,
            carrier: None,
        };
        let mut backoff = options.min_backoff;
        loop {
            let outcome = self.attempt(&mut session).await;
            let wait = match outcome {
                Attempt::Registered(granted) => {
                    backoff = options.min_backoff;
                    let granted = Duration::from_secs(u64::from(granted.max(1)));
                    let lead = options.refresh_margin.min(granted / 2);
                    let expires_at =
                        now_ms() + i64::try_from(granted.as_millis()).unwrap_or(i64::MAX);
                    status.update(id, |state| {
                        state.state = "registered".to_owned();
                        state.expires_at_ms = Some(expires_at);
                        state.last_error = None;
                        state.registrations += 1;
                    });
                    tracing::info!(trunk = %id, secs = granted.as_secs(), "trunk registered");
                    granted - lead
                }
                Attempt::Failed(code, error) => {
                    tracing::warn!(trunk = %id, ?code, %error, retry_secs = backoff.as_secs(), "trunk registration failed");
                    status.update(id, |state| {
                        state.state = "failed".to_owned();
                        state.expires_at_ms = None;
                        state.last_error = Some(error);
                    });
                    // A fresh challenge next time (the nonce may be the problem).
                    session.digest = None;
                    let wait = backoff;
                    backoff = (backoff * 2).min(options.max_backoff);
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The listener trunk registrations are sent from: the first IPv4 UDP listener, else the
/// first UDP one, else the first listener.
pub fn registration_source(listeners: &[pbx_sip_net::ListenerConfig]) -> SocketAddr {
    listeners
        .iter()
        .find(|l| l.transport == Transport::Udp && l.addr.is_ipv4())
        .or_else(|| listeners.iter().find(|l| l.transport == Transport::Udp))
        .or_else(|| listeners.first())
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5060)), |l| l.addr)
}

/// The server's call data services: the trunk password key, the live routing snapshot, the
/// CDR sink (recovered at start) and, once the endpoint runs, the trunk registrations.
#[derive(Debug)]
pub struct CallData {
    /// Encrypts trunk passwords at rest (`secrets/trunk.key` in the data directory).
    pub trunk_key: SecretKey,
    /// The live routing snapshot.
    pub routing: Arc<LiveRouting>,
    /// The CDR sink.
    pub cdrs: crate::cdr::CdrSink,
    cdr_writer: JoinHandle<()>,
    follower: JoinHandle<()>,
    dns_refresher: JoinHandle<()>,
    registrar: Option<TrunkRegistrar>,
}

/// Why the call data services could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallDataError {
    /// The key file or the CDR journal could not be read or created.
    #[error("{path}: {source}")]
    File {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] pbx_store::StoreError),
}

impl CallData {
    /// Loads the key (creating it on first start), the routing snapshot (following store
    /// changes; carrier hosts resolved through `dns` and refreshed in the background), and
    /// starts the CDR sink (journal replay, interrupted calls closed).
    pub async fn start(
        store: &Store,
        data_dir: &std::path::Path,
        node_id: &str,
        dns: &DnsSettings,
    ) -> Result<Self, CallDataError> {
        let key_path = data_dir.join("secrets").join("trunk.key");
        let trunk_key =
            SecretKey::load_or_create(&key_path).map_err(|source| CallDataError::File {
                path: key_path.clone(),
                source,
            })?;
        let carriers = CarrierTargets::new(dns.clone());
        let routing = LiveRouting::load(store, trunk_key.clone(), Arc::clone(&carriers)).await?;
        let dns_refresher = carriers.spawn_refresher();
        let follower = routing.follow(store.clone());
        let (cdrs, cdr_writer) = crate::cdr::CdrSink::start(
            store.clone(),
            data_dir,
            crate::cdr::CdrOptions::new(node_id),
        )
        .await
        .map_err(|source| CallDataError::File {
            path: data_dir.join(crate::cdr::JOURNAL_FILE),
            source,
        })?;
        Ok(Self {
            trunk_key,
            routing,
            cdrs,
            cdr_writer,
            follower,
            dns_refresher,
            registrar: None,
        })
    }

    /// Starts the trunk registrations through the running endpoint.
    pub fn start_registrations<T: SendsClientRequests>(
        &mut self,
        endpoint: EndpointHandle<T>,
        listeners: &[pbx_sip_net::ListenerConfig],
    ) {
        self.registrar = Some(TrunkRegistrar::start(
            Arc::clone(&self.routing),
            endpoint,
            registration_source(listeners),
            RegistrationOptions::default(),
        ));
    }

    /// What the API needs: the key, the live registration states and where carrier hosts
    /// resolved to.
    pub fn api(&self) -> pbx_api::model::CallsApi {
        pbx_api::model::CallsApi {
            trunk_key: Some(self.trunk_key.clone()),
            trunk_status: Some(Arc::new(TrunkStatus {
                registrations: self.registrar.as_ref().map(TrunkRegistrar::status),
                carriers: Arc::clone(self.routing.carriers()),
            })),
        }
    }

    /// The live registration states, once registrations run.
    pub fn registrations(&self) -> Option<Arc<RegistrationStatus>> {
        self.registrar.as_ref().map(TrunkRegistrar::status)
    }

    /// Stops registrations and the routing follower, and waits (bounded) until every CDR
    /// submitted so far is in the store or the journal. Call after the endpoint (and with it
    /// the call engine's sink clones) has stopped, before the store closes.
    pub async fn shutdown(self) {
        if let Some(registrar) = &self.registrar {
            registrar.stop();
        }
        self.follower.abort();
        self.dns_refresher.abort();
        drop(self.cdrs);
        if tokio::time::timeout(Duration::from_secs(10), self.cdr_writer)
            .await
            .is_err()
        {
            tracing::warn!("CDR writer did not finish within 10 s (records stay in the journal)");
        }
    }
}

/// The live trunk states the API shows: registrations (once they run) and resolved hosts.
#[derive(Debug)]
struct TrunkStatus {
    registrations: Option<Arc<RegistrationStatus>>,
    carriers: Arc<CarrierTargets>,
}

impl TrunkStatusSource for TrunkStatus {
    fn registration(&self, trunk: TrunkId) -> Option<TrunkRegistrationView> {
        self.registrations.as_ref()?.registration(trunk)
    }

    fn resolution(&self, trunk: &Trunk) -> Option<TrunkResolutionView> {
        let key = CarrierKey::of_trunk(&trunk.host, trunk.port, trunk.transport);
        let view = self.carriers.view(&key)?;
        Some(TrunkResolutionView {
            targets: view
                .targets
                .iter()
                .map(|target| host_text(target.address))
                .collect(),
            last_error: view.last_error,
        })
    }
}

impl SendsClientRequests for crate::sip::PlatformTu {
    fn client_requests(&mut self) -> &mut ClientRequests {
        &mut self.client_requests
    }
}
