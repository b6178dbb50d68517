//! Tenants, users, devices, numbers, whitelists: CRUD, uniqueness and tenant isolation.

use pbx_domain::{
    Actor, ClassOfService, DeviceKind, DisplayName, E164, Extension, MacAddress, NewDevice,
    NewTenant, PhoneVendor, SipDomain, Slug, TenantStatus, parse_network,
};
use pbx_store::{StoreError, UserUpdate};

use crate::support::{on_both, tenant, user};

fn desk_phone(mac: &str) -> DeviceKind {
    DeviceKind::DeskPhone {
        vendor: PhoneVendor::Yealink,
        model: "T54W".into(),
        mac: MacAddress::parse(mac).unwrap(),
    }
}

#[tokio::test]
async fn tenant_and_user_crud() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, scope) = tenant(&store, "acme").await;
        assert_eq!(store.tenants().get(&scope).await.unwrap(), acme);

        let renamed = store
            .tenants()
            .update(
                &scope,
                &DisplayName::parse("Acme Holding").unwrap(),
                &SipDomain::parse("voice.acme.example").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(renamed.name.as_str(), "Acme Holding");
        assert_eq!(renamed.sip_domain.as_str(), "voice.acme.example");
        store
            .tenants()
            .set_status(&scope, TenantStatus::Suspended)
            .await
            .unwrap();
        assert_eq!(
            store.tenants().get(&scope).await.unwrap().status,
            TenantStatus::Suspended
        );

        let ann = user(&store, &scope, "201").await;
        let bob = user(&store, &scope, "202").await;
        assert_eq!(store.users().get(&scope, ann.id).await.unwrap(), ann);
        let by_extension = store
            .users()
            .by_extension(&scope, &Extension::parse("202").unwrap())
            .await
            .unwrap();
        assert_eq!(by_extension.id, bob.id);
        let listed: Vec<_> = store
            .users()
            .list(&scope)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.extension.to_string())
            .collect();
        assert_eq!(listed, ["201", "202"]);

        let update = UserUpdate {
            extension: Extension::parse("301").unwrap(),
            display_name: DisplayName::parse("Ann de Vries").unwrap(),
            class_of_service: ClassOfService::International,
        };
        let updated = store.users().update(&scope, ann.id, &update).await.unwrap();
        assert_eq!(updated.extension.as_str(), "301");
        assert_eq!(updated.class_of_service, ClassOfService::International);
        assert_eq!(updated.created_at_ms, ann.created_at_ms);

        store.users().delete(&scope, bob.id).await.unwrap();
        assert!(matches!(
            store.users().get(&scope, bob.id).await,
            Err(StoreError::NotFound { what: "user" })
        ));
        assert!(matches!(
            store.users().delete(&scope, bob.id).await,
            Err(StoreError::NotFound { .. })
        ));
        db
    })
    .await;
}

#[tokio::test]
async fn unique_values_conflict() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, acme_scope) = tenant(&store, "acme").await;
        let (_, beta_scope) = tenant(&store, "beta").await;

        let same_slug = NewTenant {
            reseller_id: None,
            name: DisplayName::parse("Other").unwrap(),
            slug: Slug::parse("ACME").unwrap(),
            sip_domain: SipDomain::parse("other.example.com").unwrap(),
            status: TenantStatus::Active,
        };
        let error = store
            .tenants()
            .create(&Actor::Operator, &same_slug)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Conflict {
                    what: "tenant slug"
                }
            ),
            "{error:?}"
        );
        let same_domain = NewTenant {
            slug: Slug::parse("other").unwrap(),
            sip_domain: acme.sip_domain.clone(),
            ..same_slug
        };
        let error = store
            .tenants()
            .create(&Actor::Operator, &same_domain)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Conflict {
                    what: "tenant SIP domain"
                }
            ),
            "{error:?}"
        );

        // Extensions are unique per tenant, and may repeat across tenants.
        let ann = user(&store, &acme_scope, "201").await;
        user(&store, &beta_scope, "201").await;
        let duplicate = pbx_domain::NewUser {
            extension: Extension::parse("201").unwrap(),
            display_name: DisplayName::parse("Dup").unwrap(),
            class_of_service: ClassOfService::InternalOnly,
        };
        let error = store
            .users()
            .create(&acme_scope, &duplicate)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Conflict { what: "extension" }),
            "{error:?}"
        );

        // MAC addresses are unique on the whole platform, whatever the notation.
        let phone = NewDevice {
            user_id: ann.id,
            kind: desk_phone("00:15:65:AA:BB:CC"),
            label: "desk".into(),
        };
        store.devices().create(&acme_scope, &phone).await.unwrap();
        let beta_user = store.users().list(&beta_scope).await.unwrap().remove(0);
        let same_mac = NewDevice {
            user_id: beta_user.id,
            kind: desk_phone("0015.65aa.bbcc"),
            label: String::new(),
        };
        let error = store
            .devices()
            .create(&beta_scope, &same_mac)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Conflict {
                    what: "device MAC address"
                }
            ),
            "{error:?}"
        );

        // Numbers are unique on the platform.
        let number = E164::parse("+31 20 123 4567").unwrap();
        store
            .numbers()
            .add_to_inventory(&Actor::Operator, &number)
            .await
            .unwrap();
        let error = store
            .numbers()
            .add_to_inventory(&Actor::Operator, &number)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Conflict {
                    what: "phone number"
                }
            ),
            "{error:?}"
        );
        db
    })
    .await;
}

#[tokio::test]
async fn tenant_b_cannot_reach_tenant_a() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, acme_scope) = tenant(&store, "acme").await;
        let (beta, beta_scope) = tenant(&store, "beta").await;
        let ann = user(&store, &acme_scope, "201").await;
        user(&store, &beta_scope, "301").await;

        // Reads and writes with B's scope do not see A's user.
        assert!(matches!(
            store.users().get(&beta_scope, ann.id).await,
            Err(StoreError::NotFound { .. })
        ));
        let b_users = store.users().list(&beta_scope).await.unwrap();
        assert_eq!(b_users.len(), 1);
        assert!(b_users.iter().all(|u| u.tenant_id == beta.id));
        let update = UserUpdate {
            extension: Extension::parse("999").unwrap(),
            display_name: DisplayName::parse("Hijacked").unwrap(),
            class_of_service: ClassOfService::International,
        };
        assert!(matches!(
            store.users().update(&beta_scope, ann.id, &update).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.users().delete(&beta_scope, ann.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(
            store.users().get(&acme_scope, ann.id).await.unwrap(),
            ann,
            "A's user untouched"
        );

        // B cannot attach a device to A's user (the composite foreign key refuses it).
        let device = NewDevice {
            user_id: ann.id,
            kind: DeviceKind::Softphone,
            label: String::new(),
        };
        let error = store
            .devices()
            .create(&beta_scope, &device)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidReference { what: "user" }),
            "{error:?}"
        );
        let a_device = store.devices().create(&acme_scope, &device).await.unwrap();
        assert!(matches!(
            store.devices().get(&beta_scope, a_device.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.devices().list(&beta_scope).await.unwrap().is_empty());
        let error = store
            .whitelist()
            .add(
                &beta_scope,
                Some(ann.id),
                parse_network("10.0.0.0/8").unwrap(),
                "",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidReference { .. }),
            "{error:?}"
        );

        // Actors only get scopes on their own tenants.
        let reseller = store
            .resellers()
            .create(&Actor::Operator, &DisplayName::parse("Resell Co").unwrap())
            .await
            .unwrap();
        let sold = NewTenant {
            reseller_id: Some(reseller.id),
            name: DisplayName::parse("Sold").unwrap(),
            slug: Slug::parse("sold").unwrap(),
            sip_domain: SipDomain::parse("sold.example.com").unwrap(),
            status: TenantStatus::Active,
        };
        let sold = store
            .tenants()
            .create(&Actor::Reseller(reseller.id), &sold)
            .await
            .unwrap();
        assert!(
            store
                .scope(&Actor::Reseller(reseller.id), sold.id)
                .await
                .is_ok()
        );
        assert!(matches!(
            store.scope(&Actor::Reseller(reseller.id), acme.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.scope(&Actor::CustomerAdmin(beta.id), acme.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(
            store
                .scope(&Actor::CustomerAdmin(acme.id), acme.id)
                .await
                .is_ok()
        );
        let visible: Vec<_> = store
            .tenants()
            .list(&Actor::Reseller(reseller.id))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(visible, [sold.id]);
        assert_eq!(
            store
                .tenants()
                .list(&Actor::CustomerAdmin(beta.id))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store.tenants().list(&Actor::Operator).await.unwrap().len(),
            3
        );
        let stranger = NewTenant {
            reseller_id: None,
            slug: Slug::parse("stray").unwrap(),
            sip_domain: SipDomain::parse("stray.example.com").unwrap(),
            ..sold_template()
        };
        assert!(matches!(
            store
                .tenants()
                .create(&Actor::Reseller(reseller.id), &stranger)
                .await,
            Err(StoreError::Forbidden { .. })
        ));
        db
    })
    .await;
}

fn sold_template() -> NewTenant {
    NewTenant {
        reseller_id: None,
        name: DisplayName::parse("Template").unwrap(),
        slug: Slug::parse("template").unwrap(),
        sip_domain: SipDomain::parse("template.example.com").unwrap(),
        status: TenantStatus::Active,
    }
}

#[tokio::test]
async fn devices_numbers_and_deletes() {
    on_both(|db| async move {
        let store = db.open().await;
        let (_, scope) = tenant(&store, "acme").await;
        let (_, other) = tenant(&store, "beta").await;
        let ann = user(&store, &scope, "201").await;
        let phone = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: ann.id,
                    kind: desk_phone("001565aabbcc"),
                    label: "desk".into(),
                },
            )
            .await
            .unwrap();
        let app = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: ann.id,
                    kind: DeviceKind::MobileApp,
                    label: "iPhone".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(store.devices().get(&scope, phone.id).await.unwrap(), phone);
        assert_eq!(
            store
                .devices()
                .list_for_user(&scope, ann.id)
                .await
                .unwrap()
                .len(),
            2
        );
        store
            .devices()
            .set_label(&scope, app.id, "Ann's iPhone")
            .await
            .unwrap();
        assert_eq!(
            store.devices().get(&scope, app.id).await.unwrap().label,
            "Ann's iPhone"
        );

        // DIDs: inventory -> tenant -> user; other tenants cannot route it.
        let number = store
            .numbers()
            .add_to_inventory(&Actor::Operator, &E164::parse("+31201234567").unwrap())
            .await
            .unwrap();
        assert!(matches!(
            store
                .numbers()
                .add_to_inventory(&Actor::CustomerAdmin(scope.tenant_id()), &number.e164)
                .await,
            Err(StoreError::Forbidden { .. })
        ));
        assert_eq!(
            store
                .numbers()
                .list_free(&Actor::Operator)
                .await
                .unwrap()
                .len(),
            1
        );
        store
            .numbers()
            .assign_to_tenant(&Actor::Operator, number.id, &scope)
            .await
            .unwrap();
        assert!(matches!(
            store
                .numbers()
                .assign_to_tenant(&Actor::Operator, number.id, &other)
                .await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            store.numbers().assign_user(&other, number.id, None).await,
            Err(StoreError::NotFound { .. })
        ));
        let routed = store
            .numbers()
            .assign_user(&scope, number.id, Some(ann.id))
            .await
            .unwrap();
        assert_eq!(routed.user_id, Some(ann.id));
        assert!(store.numbers().list(&other).await.unwrap().is_empty());
        assert!(
            store
                .numbers()
                .list_free(&Actor::Operator)
                .await
                .unwrap()
                .is_empty()
        );

        // Deleting the user removes its devices and keeps the number with the tenant.
        store.users().delete(&scope, ann.id).await.unwrap();
        assert!(store.devices().list(&scope).await.unwrap().is_empty());
        let kept = store.numbers().get(&scope, number.id).await.unwrap();
        assert_eq!(
            (kept.tenant_id, kept.user_id),
            (Some(scope.tenant_id()), None)
        );

        // Deleting the tenant returns its numbers to the inventory.
        store
            .tenants()
            .delete(&Actor::Operator, &scope)
            .await
            .unwrap();
        assert_eq!(
            store
                .numbers()
                .list_free(&Actor::Operator)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            store.tenants().get(&scope).await,
            Err(StoreError::NotFound { .. })
        ));
        db
    })
    .await;
}

#[tokio::test]
async fn whitelist_cidrs_v4_and_v6() {
    on_both(|db| async move {
        let store = db.open().await;
        let (_, scope) = tenant(&store, "acme").await;
        let ann = user(&store, &scope, "201").await;
        let office = store
            .whitelist()
            .add(
                &scope,
                None,
                parse_network("192.0.2.0/24").unwrap(),
                "office v4",
            )
            .await
            .unwrap();
        store
            .whitelist()
            .add(
                &scope,
                None,
                parse_network("2001:db8:10::/48").unwrap(),
                "office v6",
            )
            .await
            .unwrap();
        store
            .whitelist()
            .add(
                &scope,
                Some(ann.id),
                parse_network("192.0.2.128/25").unwrap(),
                "ann",
            )
            .await
            .unwrap();

        let entries = store.whitelist().list(&scope).await.unwrap();
        assert_eq!(entries.len(), 3);
        assert!(
            entries
                .iter()
                .any(|e| e.network.to_string() == "2001:db8:10::/48")
        );

        let tenant_list = store.whitelist().tenant_list(&scope).await.unwrap();
        assert!(tenant_list.allows("192.0.2.7".parse().unwrap()));
        assert!(tenant_list.allows("2001:db8:10:ffff::1".parse().unwrap()));
        assert!(!tenant_list.allows("2001:db8:11::1".parse().unwrap()));
        assert!(!tenant_list.allows("198.51.100.1".parse().unwrap()));
        let ann_list = store.whitelist().user_list(&scope, ann.id).await.unwrap();
        assert!(ann_list.allows("192.0.2.200".parse().unwrap()));
        assert!(!ann_list.allows("192.0.2.7".parse().unwrap()));

        store.whitelist().remove(&scope, office.id).await.unwrap();
        assert!(
            !store
                .whitelist()
                .tenant_list(&scope)
                .await
                .unwrap()
                .allows("192.0.2.7".parse().unwrap())
        );
        db
    })
    .await;
}

/// Many writers at once: SQLite serialises them through WAL and the busy timeout instead
/// of failing with "database is locked"; PostgreSQL runs them in parallel.
#[tokio::test]
async fn concurrent_writers_all_succeed() {
    on_both(|db| async move {
        let store = db.open().await;
        let (_, scope) = tenant(&store, "acme").await;
        let writers = (0..40).map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let extension = format!("{}", 200 + index);
                let new = pbx_domain::NewUser {
                    extension: Extension::parse(&extension).unwrap(),
                    display_name: DisplayName::parse(&extension).unwrap(),
                    class_of_service: ClassOfService::National,
                };
                store.users().create(&scope, &new).await
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.unwrap().unwrap();
        }
        assert_eq!(store.users().list(&scope).await.unwrap().len(), 40);
        db
    })
    .await;
}
