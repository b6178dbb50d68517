//! Incremental patches against full builds: a scripted random history of writes (tenants,
//! users, devices, credentials, whitelists, numbers, with the store's cascades), where after
//! every write the patched snapshot must equal a snapshot built from scratch.

use super::*;
use crate::credentials::{AuthUserName, DigestAlgorithm, Ha1, SipPassword};
use crate::ids::{CredentialId, WhitelistEntryId};
use crate::kinds::{ClassOfService, DeviceKind, PhoneVendor};
use crate::mac::MacAddress;
use crate::values::{DisplayName, E164, Extension, Realm, SipDomain, Slug};
use crate::whitelist::parse_network;

/// Every map of a snapshot as sorted text, for comparing two snapshots.
fn dump(snapshot: &DirectorySnapshot) -> Vec<String> {
    fn sorted<K, V>(name: &str, map: &CowMap<K, V>) -> Vec<String>
    where
        K: std::fmt::Debug + std::hash::Hash + Eq + Clone,
        V: std::fmt::Debug + Clone,
    {
        let mut lines: Vec<String> = map
            .iter()
            .map(|(key, value)| format!("{name} {key:?} => {value:?}"))
            .collect();
        lines.sort();
        lines
    }
    let mut lines = Vec::new();
    lines.extend(sorted("tenant", &snapshot.tenants));
    lines.extend(sorted("slug", &snapshot.tenant_by_slug));
    lines.extend(sorted("domain", &snapshot.tenant_by_domain));
    lines.extend(sorted("user", &snapshot.users));
    for (tenant, extensions) in snapshot.user_by_extension.iter() {
        for (extension, user) in extensions.iter() {
            lines.push(format!("extension {tenant:?} {extension} => {user:?}"));
        }
    }
    lines.extend(sorted("device", &snapshot.devices));
    lines.extend(sorted("mac", &snapshot.device_by_mac));
    lines.extend(sorted("credential", &snapshot.credentials));
    lines.extend(sorted("tenant whitelist", &snapshot.tenant_whitelist));
    lines.extend(sorted("user whitelist", &snapshot.user_whitelist));
    lines.extend(sorted("number", &snapshot.numbers));
    lines.sort();
    lines
}

/// A tiny deterministic generator (no dependency, same history every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % bound as u64).unwrap()
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| u8::try_from(self.below(256)).unwrap())
    }
}

/// The "database": rows as the store would hold them after each write.
#[derive(Default)]
struct World {
    parts: DirectoryParts,
}

impl World {
    fn user_rows(&self, id: UserId) -> Option<UserRows> {
        let user = self.parts.users.iter().find(|user| user.id == id)?.clone();
        Some(UserRows {
            user,
            devices: (self.parts.devices.iter())
                .filter(|device| device.user_id == id)
                .cloned()
                .collect(),
            credentials: (self.parts.credentials.iter())
                .filter(|credential| credential.user_id == id)
                .cloned()
                .collect(),
            whitelist: (self.parts.whitelist.iter())
                .filter(|entry| entry.user_id == Some(id))
                .cloned()
                .collect(),
        })
    }

    fn tenant_rows(&self, id: TenantId) -> Option<(Tenant, Vec<WhitelistEntry>)> {
        let tenant = self.parts.tenants.iter().find(|t| t.id == id)?.clone();
        let whitelist = (self.parts.whitelist.iter())
            .filter(|entry| entry.tenant_id == id && entry.user_id.is_none())
            .cloned()
            .collect();
        Some((tenant, whitelist))
    }

    fn number(&self, id: NumberId) -> Option<&PhoneNumber> {
        self.parts.numbers.iter().find(|number| number.id == id)
    }
}

/// What a write touched, as the store reports it.
enum Touched {
    Tenant(TenantId),
    User(UserId),
    Number(NumberId),
}

#[allow(clippy::too_many_lines)] // Reason: one scripted history, easier to read whole.
fn write(world: &mut World, random: &mut Lcg, step: usize) -> Vec<Touched> {
    let parts = &mut world.parts;
    let pick = |random: &mut Lcg, len: usize| (len > 0).then(|| random.below(len));
    match random.below(12) {
        0 | 1 => {
            let id = TenantId::from_parts(1, &random.bytes());
            let slug = format!("t{step}");
            parts.tenants.push(Tenant {
                id,
                reseller_id: None,
                name: DisplayName::parse(&slug).unwrap(),
                slug: Slug::parse(&slug).unwrap(),
                sip_domain: SipDomain::parse(&format!("{slug}.example.com")).unwrap(),
                status: TenantStatus::Active,
                created_at_ms: 0,
                updated_at_ms: 0,
            });
            vec![Touched::Tenant(id)]
        }
        2 => {
            // Rename a tenant (new slug and domain) and flip its status.
            let Some(index) = pick(random, parts.tenants.len()) else {
                return vec![];
            };
            let tenant = &mut parts.tenants[index];
            tenant.slug = Slug::parse(&format!("r{step}")).unwrap();
            tenant.sip_domain = SipDomain::parse(&format!("r{step}.example.com")).unwrap();
            tenant.status = match tenant.status {
                TenantStatus::Active => TenantStatus::Suspended,
                _ => TenantStatus::Active,
            };
            vec![Touched::Tenant(tenant.id)]
        }
        3 => {
            // Delete a tenant: users, devices, credentials and whitelists cascade;
            // its numbers go back to the free inventory. Rarer than the other writes, so
            // the platform grows.
            let Some(index) = pick(random, parts.tenants.len()).filter(|_| random.below(3) == 0)
            else {
                return vec![];
            };
            let id = parts.tenants.remove(index).id;
            parts.users.retain(|user| user.tenant_id != id);
            parts.devices.retain(|device| device.tenant_id != id);
            parts.credentials.retain(|c| c.tenant_id != id);
            parts.whitelist.retain(|entry| entry.tenant_id != id);
            for number in &mut parts.numbers {
                if number.tenant_id == Some(id) {
                    number.tenant_id = None;
                    number.user_id = None;
                }
            }
            vec![Touched::Tenant(id)]
        }
        4 | 5 => {
            let Some(index) = pick(random, parts.tenants.len()) else {
                return vec![];
            };
            let tenant_id = parts.tenants[index].id;
            let extension = format!("{}", 100 + step);
            let id = UserId::from_parts(1, &random.bytes());
            parts.users.push(User {
                id,
                tenant_id,
                extension: Extension::parse(&extension).unwrap(),
                display_name: DisplayName::parse("Ann").unwrap(),
                class_of_service: ClassOfService::National,
                created_at_ms: 0,
                updated_at_ms: 0,
            });
            vec![Touched::User(id)]
        }
        6 => {
            // Change a user's extension, or delete the user (numbers stay, unassigned
            // from the user).
            let Some(index) = pick(random, parts.users.len()) else {
                return vec![];
            };
            let id = parts.users[index].id;
            if random.below(2) == 0 {
                parts.users[index].extension =
                    Extension::parse(&format!("{}", 5_000 + step)).unwrap();
                return vec![Touched::User(id)];
            }
            parts.users.remove(index);
            parts.devices.retain(|device| device.user_id != id);
            parts.credentials.retain(|c| c.user_id != id);
            parts.whitelist.retain(|entry| entry.user_id != Some(id));
            let mut touched = vec![Touched::User(id)];
            for number in &mut parts.numbers {
                if number.user_id == Some(id) {
                    number.user_id = None;
                    touched.push(Touched::Number(number.id));
                }
            }
            touched
        }
        7 => {
            // A device (desk phone or softphone) with a credential, or delete one.
            let Some(index) = pick(random, parts.users.len()) else {
                return vec![];
            };
            let owner = parts.users[index].clone();
            if random.below(3) == 0
                && let Some(device) = parts.devices.iter().position(|d| d.user_id == owner.id)
            {
                let id = parts.devices.remove(device).id;
                parts.credentials.retain(|c| c.device_id != id);
                return vec![Touched::User(owner.id)];
            }
            let id = DeviceId::from_parts(1, &random.bytes());
            let kind = if random.below(2) == 0 {
                DeviceKind::DeskPhone {
                    vendor: PhoneVendor::Yealink,
                    model: "T54W".into(),
                    mac: MacAddress::parse(&hex_mac(&random.bytes())).unwrap(),
                }
            } else {
                DeviceKind::Softphone
            };
            parts.devices.push(Device {
                id,
                tenant_id: owner.tenant_id,
                user_id: owner.id,
                kind,
                label: String::new(),
                whitelist_exempt: random.below(2) == 0,
                created_at_ms: 0,
                updated_at_ms: 0,
            });
            let name = AuthUserName::generate(&random.bytes());
            let realm = Realm::parse("cloudpbx").unwrap();
            let password = SipPassword::generate(&random.bytes());
            parts.credentials.push(SipCredential {
                id: CredentialId::from_parts(1, &random.bytes()),
                tenant_id: owner.tenant_id,
                user_id: owner.id,
                device_id: id,
                ha1_md5: Ha1::compute(DigestAlgorithm::Md5, &name, &realm, &password),
                ha1_sha256: Ha1::compute(DigestAlgorithm::Sha256, &name, &realm, &password),
                auth_username: name,
                realm,
                enabled: true,
                created_at_ms: 0,
                updated_at_ms: 0,
            });
            vec![Touched::User(owner.id)]
        }
        8 => {
            // Disable or re-enable a credential.
            let Some(index) = pick(random, parts.credentials.len()) else {
                return vec![];
            };
            let credential = &mut parts.credentials[index];
            credential.enabled = !credential.enabled;
            vec![Touched::User(credential.user_id)]
        }
        9 => {
            // A whitelist entry for a tenant or one of its users, or delete one.
            if random.below(3) == 0
                && let Some(index) = pick(random, parts.whitelist.len())
            {
                let entry = parts.whitelist.remove(index);
                return vec![match entry.user_id {
                    Some(user) => Touched::User(user),
                    None => Touched::Tenant(entry.tenant_id),
                }];
            }
            let Some(index) = pick(random, parts.users.len()) else {
                return vec![];
            };
            let user = parts.users[index].clone();
            let for_user = random.below(2) == 0;
            parts.whitelist.push(WhitelistEntry {
                id: WhitelistEntryId::from_parts(1, &random.bytes()),
                tenant_id: user.tenant_id,
                user_id: for_user.then_some(user.id),
                network: parse_network(&format!("192.0.{}.0/24", random.below(256))).unwrap(),
                description: String::new(),
                created_at_ms: 0,
            });
            vec![if for_user {
                Touched::User(user.id)
            } else {
                Touched::Tenant(user.tenant_id)
            }]
        }
        _ => {
            // Add a number, assign one to a tenant (and maybe a user), or release one.
            if parts.numbers.len() < 3 || random.below(4) == 0 {
                let id = NumberId::from_parts(1, &random.bytes());
                parts.numbers.push(PhoneNumber {
                    id,
                    e164: E164::parse(&format!("+3120{:07}", step)).unwrap(),
                    tenant_id: None,
                    user_id: None,
                    created_at_ms: 0,
                    updated_at_ms: 0,
                });
                return vec![Touched::Number(id)];
            }
            let index = random.below(parts.numbers.len());
            let user = pick(random, parts.users.len()).map(|user| parts.users[user].clone());
            let number = &mut parts.numbers[index];
            match (number.tenant_id, user) {
                (Some(_), _) if random.below(2) == 0 => {
                    number.tenant_id = None;
                    number.user_id = None;
                }
                (_, Some(user)) => {
                    number.tenant_id = Some(user.tenant_id);
                    number.user_id = (random.below(2) == 0).then_some(user.id);
                }
                _ => {}
            }
            vec![Touched::Number(number.id)]
        }
    }
}

fn hex_mac(bytes: &[u8; 6]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn patched_snapshots_equal_full_builds_through_a_random_history() {
    let mut random = Lcg(7);
    let mut world = World::default();
    let mut patched = DirectorySnapshot::build(0, world.parts.clone());
    let mut held = Vec::new();
    for step in 0..600 {
        let touched = write(&mut world, &mut random, step);
        let before = patched.clone();
        for touched in touched {
            match touched {
                Touched::Tenant(id) => patched.replace_tenant(id, world.tenant_rows(id)),
                Touched::User(id) => patched.replace_user(id, world.user_rows(id)),
                Touched::Number(id) => patched.replace_number(id, world.number(id)),
            }
        }
        let generation = u64::try_from(step).unwrap() + 1;
        patched.set_generation(generation);
        let built = DirectorySnapshot::build(generation, world.parts.clone());
        assert_eq!(dump(&patched), dump(&built), "after step {step}");
        assert!(patched.same_entries(&built) && built.same_entries(&patched));
        assert_eq!(patched.counts(), built.counts());
        if step % 50 == 0 {
            held.push((dump(&before), before));
        }
    }
    // Snapshots that readers held while later patches were made are unchanged.
    for (dumped, snapshot) in held {
        assert_eq!(dump(&snapshot), dumped);
        assert!(
            !snapshot.same_entries(&patched),
            "an old snapshot differs from the last"
        );
    }
    let (tenants, users, credentials) = patched.counts();
    assert!(
        tenants > 5 && users > 20 && credentials > 10,
        "the history exercised the maps: {tenants} tenants, {users} users, {credentials} credentials"
    );
}
