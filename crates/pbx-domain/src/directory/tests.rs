//! The snapshot's lookups over a small hand-built platform.

use super::*;
use crate::credentials::{AuthUserName, DigestAlgorithm, Ha1, SipPassword};
use crate::entities::WhitelistEntry;
use crate::ids::{CredentialId, WhitelistEntryId};
use crate::kinds::{ClassOfService, DeviceKind, PhoneVendor};
use crate::mac::MacAddress;
use crate::values::{DisplayName, E164, Extension, Realm, SipDomain, Slug};
use crate::whitelist::parse_network;

fn tenant(seed: u8, slug: &str, status: TenantStatus) -> Tenant {
    Tenant {
        id: TenantId::from_parts(1, &[seed; 10]),
        reseller_id: None,
        name: DisplayName::parse(slug).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        sip_domain: SipDomain::parse(&format!("{slug}.example.com")).unwrap(),
        status,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn user(seed: u8, tenant: TenantId, extension: &str) -> User {
    User {
        id: UserId::from_parts(1, &[seed; 10]),
        tenant_id: tenant,
        extension: Extension::parse(extension).unwrap(),
        display_name: DisplayName::parse("Ann").unwrap(),
        class_of_service: ClassOfService::National,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn credential(seed: u8, user: &User, device: DeviceId) -> SipCredential {
    let name = AuthUserName::generate(&[seed; 10]);
    let realm = Realm::parse("cloudpbx").unwrap();
    let password = SipPassword::generate(&[seed; 16]);
    SipCredential {
        id: CredentialId::from_parts(1, &[seed; 10]),
        tenant_id: user.tenant_id,
        user_id: user.id,
        device_id: device,
        ha1_md5: Ha1::compute(DigestAlgorithm::Md5, &name, &realm, &password),
        ha1_sha256: Ha1::compute(DigestAlgorithm::Sha256, &name, &realm, &password),
        auth_username: name,
        realm,
        enabled: true,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

#[test]
fn indexes_answer_the_hot_path_questions() {
    let acme = tenant(1, "acme", TenantStatus::Active);
    let beta = tenant(2, "beta", TenantStatus::Suspended);
    let ann = user(3, acme.id, "201");
    let bob = user(4, beta.id, "201");
    let device = Device {
        id: DeviceId::from_parts(1, &[5; 10]),
        tenant_id: acme.id,
        user_id: ann.id,
        kind: DeviceKind::DeskPhone {
            vendor: PhoneVendor::Yealink,
            model: "T54W".into(),
            mac: MacAddress::parse("00:15:65:aa:bb:cc").unwrap(),
        },
        label: String::new(),
        whitelist_exempt: false,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let ann_credential = credential(6, &ann, device.id);
    let bob_credential = credential(7, &bob, DeviceId::from_parts(1, &[8; 10]));
    let whitelist = WhitelistEntry {
        id: WhitelistEntryId::from_parts(1, &[9; 10]),
        tenant_id: acme.id,
        user_id: None,
        network: parse_network("192.0.2.0/24").unwrap(),
        description: String::new(),
        created_at_ms: 0,
    };
    let number = PhoneNumber {
        id: NumberId::from_parts(1, &[10; 10]),
        e164: E164::parse("+31201234567").unwrap(),
        tenant_id: Some(acme.id),
        user_id: Some(ann.id),
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let parts = DirectoryParts {
        tenants: vec![acme.clone(), beta.clone()],
        users: vec![ann.clone(), bob.clone()],
        devices: vec![device],
        credentials: vec![ann_credential.clone(), bob_credential.clone()],
        whitelist: vec![whitelist],
        numbers: vec![number],
    };
    let snapshot = DirectorySnapshot::build(7, parts);
    assert_eq!(snapshot.generation(), 7);
    assert_eq!(
        snapshot
            .usable_credential(ann_credential.auth_username.as_str())
            .unwrap()
            .user_id,
        ann.id
    );
    assert!(
        snapshot
            .usable_credential(bob_credential.auth_username.as_str())
            .is_none(),
        "suspended tenant"
    );
    assert!(
        snapshot
            .credential(bob_credential.auth_username.as_str())
            .is_some()
    );
    assert_eq!(
        snapshot.user_by_extension(acme.id, "201").unwrap().id,
        ann.id
    );
    assert_eq!(
        snapshot.user_by_extension(beta.id, "201").unwrap().id,
        bob.id
    );
    assert_eq!(snapshot.tenant_by_slug("acme").unwrap().id, acme.id);
    assert_eq!(
        snapshot.tenant_by_domain("beta.example.com").unwrap().id,
        beta.id
    );
    assert_eq!(
        snapshot.device_by_mac("001565aabbcc").unwrap().user_id,
        ann.id
    );
    assert!(snapshot.whitelist_permits(acme.id, Some(ann.id), "192.0.2.9".parse().unwrap()));
    assert!(!snapshot.whitelist_permits(acme.id, None, "2001:db8::1".parse().unwrap()));
    assert!(snapshot.whitelist_permits(beta.id, None, "2001:db8::1".parse().unwrap()));
    assert_eq!(
        snapshot.number("+31201234567").unwrap().user_id,
        Some(ann.id)
    );
    assert_eq!(snapshot.counts(), (2, 2, 2));
}
