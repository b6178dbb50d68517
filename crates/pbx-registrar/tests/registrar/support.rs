//! Fixtures: a directory with two tenants, a verifier, a registrar on a virtual clock and a
//! REGISTER builder that answers the 401 with `DigestClient`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pbx_domain::credentials::AuthUserName;
use pbx_domain::whitelist::parse_network;
use pbx_domain::{
    ClassOfService, CredentialId, DeviceId, DigestAlgorithm, DirectoryParts, DirectorySnapshot,
    DisplayName, Extension, Ha1, Realm, SipCredential, SipDomain, SipPassword, Slug, Tenant,
    TenantId, TenantStatus, Transport, User, UserId, WhitelistEntry, WhitelistEntryId,
};
use pbx_registrar::{Effect, FlowInfo, Now, RegisterOutcome, Registrar, RegistrarConfig};
use pbx_sip::{HeaderName, Message, Request, Response};
use pbx_sip_auth::{AuthRole, DigestClient, NonceCountTracker, Verifier, VerifierConfig};
use pbx_test_support::clock::VirtualClock;

pub const REALM: &str = "cloudpbx";
pub const START_UNIX_MS: i64 = 1_800_000_000_000;
pub const LOCAL: &str = "198.51.100.1:5060";

/// One SIP account (a device credential of a user).
#[derive(Debug, Clone)]
pub struct Account {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub username: String,
    pub password: String,
    pub extension: String,
    pub domain: String,
}

impl Account {
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.extension, self.domain)
    }
}

/// The accounts of the fixture directory.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// acme, user 201, desk phone.
    pub ann_desk: Account,
    /// acme, user 201, mobile (second credential of the same user).
    pub ann_mobile: Account,
    /// acme, user 202.
    pub bob: Account,
    /// globex (whitelisted tenant), user 301.
    pub carol: Account,
}

/// Ten id bytes from a seed: `[seed; 10]` below 256 (the fixtures' ids), distinct beyond.
pub fn seed_bytes(seed: u32) -> [u8; 10] {
    match u8::try_from(seed) {
        Ok(small) => [small; 10],
        Err(_) => {
            let b = seed.to_be_bytes();
            [0xA5, b[0], b[1], b[2], b[3], 0x5A, b[0], b[1], b[2], b[3]]
        }
    }
}

pub fn tenant(seed: u32, slug: &str) -> Tenant {
    Tenant {
        id: TenantId::from_parts(1, &seed_bytes(seed)),
        reseller_id: None,
        name: DisplayName::parse(slug).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        sip_domain: SipDomain::parse(&format!("{slug}.example.com")).unwrap(),
        status: TenantStatus::Active,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

pub fn user(seed: u32, tenant: &Tenant, extension: &str) -> User {
    User {
        id: UserId::from_parts(1, &seed_bytes(seed)),
        tenant_id: tenant.id,
        extension: Extension::parse(extension).unwrap(),
        display_name: DisplayName::parse("Someone").unwrap(),
        class_of_service: ClassOfService::National,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

pub fn credential(seed: u32, tenant: &Tenant, user: &User) -> (SipCredential, Account) {
    let bytes = seed_bytes(seed);
    let name = AuthUserName::generate(&bytes);
    let realm = Realm::parse(REALM).unwrap();
    let mut password_seed = [0u8; 16];
    password_seed[..10].copy_from_slice(&bytes);
    if seed < 256 {
        password_seed = [bytes[0]; 16];
    }
    let password = SipPassword::generate(&password_seed);
    let device_id = DeviceId::from_parts(1, &seed_bytes(seed.wrapping_add(100)));
    let credential = SipCredential {
        id: CredentialId::from_parts(1, &bytes),
        tenant_id: tenant.id,
        user_id: user.id,
        device_id,
        ha1_md5: Ha1::compute(DigestAlgorithm::Md5, &name, &realm, &password),
        ha1_sha256: Ha1::compute(DigestAlgorithm::Sha256, &name, &realm, &password),
        auth_username: name.clone(),
        realm,
        enabled: true,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let account = Account {
        tenant_id: tenant.id,
        user_id: user.id,
        device_id,
        username: name.as_str().to_owned(),
        password: password.expose().to_owned(),
        extension: user.extension.to_string(),
        domain: tenant.sip_domain.to_string(),
    };
    (credential, account)
}

pub fn directory() -> (DirectorySnapshot, Accounts) {
    let acme = tenant(1, "acme");
    let globex = tenant(2, "globex");
    let ann = user(11, &acme, "201");
    let bob = user(12, &acme, "202");
    let carol = user(13, &globex, "301");
    let (c1, ann_desk) = credential(21, &acme, &ann);
    let (c2, ann_mobile) = credential(22, &acme, &ann);
    let (c3, bob_account) = credential(23, &acme, &bob);
    let (c4, carol_account) = credential(24, &globex, &carol);
    let whitelist = ["198.51.100.0/24", "2001:db8:1::/48"]
        .iter()
        .enumerate()
        .map(|(i, net)| WhitelistEntry {
            id: WhitelistEntryId::from_parts(1, &[40 + i as u8; 10]),
            tenant_id: globex.id,
            user_id: None,
            network: parse_network(net).unwrap(),
            description: String::new(),
            created_at_ms: 0,
        })
        .collect();
    let parts = DirectoryParts {
        tenants: vec![acme, globex],
        users: vec![ann, bob, carol],
        devices: vec![],
        credentials: vec![c1, c2, c3, c4],
        whitelist,
        numbers: vec![],
    };
    let accounts = Accounts {
        ann_desk,
        ann_mobile,
        bob: bob_account,
        carol: carol_account,
    };
    (DirectorySnapshot::build(1, parts), accounts)
}

pub fn udp(source: &str) -> FlowInfo {
    FlowInfo {
        transport: Transport::Udp,
        source: source.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        connection: None,
    }
}

pub fn tcp(source: &str, connection: u64) -> FlowInfo {
    FlowInfo {
        transport: Transport::Tcp,
        source: source.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        connection: Some(connection),
    }
}

/// A REGISTER to build.
#[derive(Debug, Clone)]
pub struct Reg {
    pub request_uri: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    pub vias: Vec<String>,
    pub contacts: Vec<String>,
    pub expires: Option<u32>,
    pub extra: Vec<String>,
}

impl Reg {
    /// A REGISTER for `account` from a device at `device` (host:port in Via) with one
    /// Contact.
    pub fn new(account: &Account, device: &str, contact: &str) -> Reg {
        Reg {
            request_uri: format!("sip:{}", account.domain),
            to: format!("<sip:{}@{}>", account.extension, account.domain),
            call_id: format!("call-{}-{device}", account.username),
            cseq: 1,
            vias: vec![format!("SIP/2.0/UDP {device};branch=z9hG4bKtest;rport")],
            contacts: vec![contact.to_owned()],
            expires: None,
            extra: vec![],
        }
    }

    pub fn text(&self, authorization: Option<&str>) -> String {
        let mut text = format!("REGISTER {} SIP/2.0\r\n", self.request_uri);
        for via in &self.vias {
            text.push_str(&format!("Via: {via}\r\n"));
        }
        text.push_str("Max-Forwards: 70\r\n");
        text.push_str(&format!("From: {};tag=from1\r\n", self.to));
        text.push_str(&format!("To: {}\r\n", self.to));
        text.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        text.push_str(&format!("CSeq: {} REGISTER\r\n", self.cseq));
        for contact in &self.contacts {
            text.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(expires) = self.expires {
            text.push_str(&format!("Expires: {expires}\r\n"));
        }
        for line in &self.extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        if let Some(value) = authorization {
            text.push_str(&format!("Authorization: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    pub fn request(&self, authorization: Option<&str>) -> Request {
        parse_request(self.text(authorization).into_bytes())
    }
}

pub fn parse_request(bytes: Vec<u8>) -> Request {
    Message::parse(Bytes::from(bytes))
        .unwrap()
        .into_request()
        .unwrap()
}

/// Registrar, directory, verifier and clock.
pub struct Harness {
    pub registrar: Registrar,
    pub directory: DirectorySnapshot,
    pub accounts: Accounts,
    pub verifier: Verifier,
    pub tracker: NonceCountTracker,
    pub clock: VirtualClock,
    cnonce: u8,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(RegistrarConfig::new("node-1"))
    }

    pub fn with_config(config: RegistrarConfig) -> Harness {
        let (directory, accounts) = directory();
        Harness::with_directory(config, directory, accounts)
    }

    /// A harness over another directory (`accounts` is kept for the fixtures' helpers).
    pub fn with_directory(
        config: RegistrarConfig,
        directory: DirectorySnapshot,
        accounts: Accounts,
    ) -> Harness {
        Harness {
            registrar: Registrar::new(config, REALM, 99).unwrap(),
            directory,
            accounts,
            verifier: Verifier::new(&[7u8; 32], VerifierConfig::new(REALM)).unwrap(),
            tracker: NonceCountTracker::new(1024),
            clock: VirtualClock::start(),
            cnonce: 0,
        }
    }

    pub fn now(&self) -> Now {
        let elapsed = i64::try_from(self.clock.elapsed().as_millis()).unwrap();
        Now::new(self.clock.now(), START_UNIX_MS + elapsed)
    }

    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
    }

    /// Sends `request` as it is.
    pub fn send(&mut self, request: &Request, flow: FlowInfo) -> RegisterOutcome {
        let now = self.now();
        self.registrar.handle_register(
            now,
            request,
            flow,
            &self.directory,
            &self.verifier,
            &mut self.tracker,
        )
    }

    /// Credentials for `request_uri` answering `challenge` (a 401).
    pub fn authorization(
        &mut self,
        challenge: &Response,
        username: &str,
        password: &str,
        request_uri: &str,
    ) -> String {
        let values: Vec<&[u8]> = challenge
            .headers()
            .get_all(&HeaderName::WwwAuthenticate)
            .collect();
        let mut client = DigestClient::new(username, password).unwrap();
        client.handle_challenge(AuthRole::Www, &values).unwrap();
        self.cnonce = self.cnonce.wrapping_add(1);
        client
            .authorization("REGISTER", request_uri, [self.cnonce; 16])
            .unwrap()
            .to_string()
    }

    /// Sends `reg` without credentials (expects 401), then with credentials made with
    /// `password` at `reg.cseq + 1`. Returns the second outcome; `reg.cseq` ends at the
    /// CSeq used.
    pub fn register_with(
        &mut self,
        username: &str,
        password: &str,
        reg: &mut Reg,
        flow: FlowInfo,
    ) -> RegisterOutcome {
        let first = self.send(&reg.request(None), flow);
        assert_eq!(first.response.status().0, 401, "{first:?}");
        let authorization =
            self.authorization(&first.response, username, password, &reg.request_uri);
        reg.cseq += 1;
        let outcome = self.send(&reg.request(Some(&authorization)), flow);
        reg.cseq += 1;
        outcome
    }

    /// [`Harness::register_with`] with the account's own password.
    pub fn register(
        &mut self,
        account: &Account,
        reg: &mut Reg,
        flow: FlowInfo,
    ) -> RegisterOutcome {
        let (username, password) = (account.username.clone(), account.password.clone());
        self.register_with(&username, &password, reg, flow)
    }
}

/// Contact header values of a response.
pub fn contacts(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(&HeaderName::Contact)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

pub fn header(response: &Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(&HeaderName::from_bytes(name.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

pub fn persisted(effects: &[Effect]) -> Vec<pbx_domain::BindingRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistBinding(record) | Effect::RefreshBinding(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

pub fn deleted(effects: &[Effect]) -> Vec<pbx_registrar::BindingKey> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::DeleteBinding(key) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

pub fn events(effects: &[Effect]) -> Vec<pbx_registrar::RegistrationEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}
