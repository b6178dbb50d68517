//! The in-memory directory follows store writes without a restart.

use std::sync::Arc;
use std::time::Duration;

use pbx_domain::{
    Actor, ClassOfService, DeviceKind, DisplayName, E164, Extension, MacAddress, NewDevice,
    PhoneVendor, Realm, SipDomain, TenantStatus, parse_network,
};
use pbx_store::{ConfigChange, Directory, UserUpdate};

use crate::support::{on_both, tenant, user};

#[tokio::test]
async fn writes_reach_the_directory_without_restart() {
    on_both(|db| async move {
        let store = db.open().await;
        let realm = Realm::parse("cloudpbx").unwrap();
        let directory = Directory::load(&store).await.unwrap();
        assert_eq!(directory.snapshot().counts(), (0, 0, 0));
        let follower = directory.follow(store.clone());

        let (acme, scope) = tenant(&store, "acme").await;
        let ann = user(&store, &scope, "201").await;
        let device = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: ann.id,
                    kind: DeviceKind::Softphone,
                    label: String::new(),
                },
            )
            .await
            .unwrap();
        let issued = store
            .credentials()
            .issue(&scope, device.id, &realm)
            .await
            .unwrap();
        let name = issued.credential.auth_username.to_string();
        store
            .whitelist()
            .add(
                &scope,
                None,
                parse_network("2001:db8::/32").unwrap(),
                "v6 office",
            )
            .await
            .unwrap();
        let number = store
            .numbers()
            .add_to_inventory(&Actor::Operator, &E164::parse("+31201234567").unwrap())
            .await
            .unwrap();
        store
            .numbers()
            .assign_to_tenant(&Actor::Operator, number.id, &scope)
            .await
            .unwrap();

        wait(&directory, store.generation()).await;
        let snapshot = directory.snapshot();
        let credential = snapshot
            .usable_credential(&name)
            .expect("new credential visible");
        assert_eq!(
            (credential.tenant_id, credential.user_id),
            (acme.id, ann.id)
        );
        assert_eq!(credential.ha1_md5, issued.credential.ha1_md5);
        assert_eq!(
            snapshot
                .tenant_by_domain("acme.pbx.example.com")
                .unwrap()
                .id,
            acme.id
        );
        assert_eq!(
            snapshot.user_by_extension(acme.id, "201").unwrap().id,
            ann.id
        );
        assert!(snapshot.whitelist_permits(acme.id, Some(ann.id), "2001:db8::99".parse().unwrap()));
        assert!(!snapshot.whitelist_permits(acme.id, Some(ann.id), "192.0.2.1".parse().unwrap()));
        assert_eq!(snapshot.number("+31201234567").unwrap().tenant_id, acme.id);

        // Suspending the tenant and rotating the password take effect at once.
        store
            .tenants()
            .set_status(&scope, TenantStatus::Suspended)
            .await
            .unwrap();
        wait(&directory, store.generation()).await;
        assert!(directory.snapshot().usable_credential(&name).is_none());
        assert!(
            snapshot.usable_credential(&name).is_some(),
            "an old snapshot held by a reader is unchanged"
        );
        store
            .tenants()
            .set_status(&scope, TenantStatus::Active)
            .await
            .unwrap();
        let rotated = store
            .credentials()
            .rotate_password(&scope, device.id, &realm)
            .await
            .unwrap();
        wait(&directory, store.generation()).await;
        assert_eq!(
            directory
                .snapshot()
                .usable_credential(&name)
                .unwrap()
                .ha1_sha256,
            rotated.credential.ha1_sha256
        );

        // A change announced from elsewhere (LISTEN/NOTIFY hook) also reloads.
        let before = directory.snapshot().generation();
        store.notify_changed();
        wait(&directory, before + 1).await;
        follower.abort();

        // Explicit refresh works without a follower.
        store.devices().delete(&scope, device.id).await.unwrap();
        directory.refresh(&store).await.unwrap();
        assert!(
            directory.snapshot().credential(&name).is_none(),
            "deleted device's credential is gone"
        );
        db
    })
    .await;
}

/// Every kind of configuration write reports what it changed, and the directory patched
/// with only those rows answers exactly like a full reload: tenant create/rename/suspend/
/// delete, user create/renumber/delete, device create/label/exemption/delete, credential
/// issue/rotate/disable, tenant and user whitelist add/remove, number assign/route/release.
#[tokio::test]
async fn each_write_patches_the_directory_like_a_full_reload() {
    on_both(|db| async move {
        let store = db.open().await;
        let realm = Realm::parse("cloudpbx").unwrap();
        let directory = Directory::load(&store).await.unwrap();
        // After one write: the store can say what changed (so the refresh is incremental),
        // it is what the write touched, and the patched snapshot equals a fresh load.
        let check = |expected: Vec<ConfigChange>, what: &'static str| {
            let (store, directory) = (store.clone(), Arc::clone(&directory));
            async move {
                let before = directory.snapshot().generation();
                let after = store.generation();
                let mut changes = store
                    .changes_since(before, after)
                    .unwrap_or_else(|| panic!("{what}: the store knows what changed"));
                let mut expected = expected;
                changes.sort_unstable();
                expected.sort_unstable();
                assert_eq!(changes, expected, "{what}");
                assert_eq!(directory.refresh(&store).await.unwrap(), after);
                let full = Directory::load(&store).await.unwrap();
                assert!(
                    directory.snapshot().same_entries(&full.snapshot()),
                    "{what}: patched snapshot equals a full reload"
                );
            }
        };
        let (acme, scope) = tenant(&store, "acme").await;
        let t = ConfigChange::Tenant(acme.id);
        check(vec![t], "tenant created").await;
        store
            .tenants()
            .update(
                &scope,
                &DisplayName::parse("Acme Two").unwrap(),
                &SipDomain::parse("two.acme.example.com").unwrap(),
            )
            .await
            .unwrap();
        check(vec![t], "tenant renamed").await;
        assert!(
            directory
                .snapshot()
                .tenant_by_domain("acme.pbx.example.com")
                .is_none()
        );
        assert!(
            directory
                .snapshot()
                .tenant_by_domain("two.acme.example.com")
                .is_some()
        );
        let ann = user(&store, &scope, "201").await;
        let u = ConfigChange::User(acme.id, ann.id);
        check(vec![u], "user created").await;
        let phone = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: ann.id,
                    kind: DeviceKind::DeskPhone {
                        vendor: PhoneVendor::Yealink,
                        model: "T54W".into(),
                        mac: MacAddress::parse("00:15:65:aa:bb:cc").unwrap(),
                    },
                    label: String::new(),
                },
            )
            .await
            .unwrap();
        check(vec![u], "device created").await;
        let issued = store
            .credentials()
            .issue(&scope, phone.id, &realm)
            .await
            .unwrap();
        let name = issued.credential.auth_username.to_string();
        check(vec![u], "credential issued").await;
        assert!(directory.snapshot().usable_credential(&name).is_some());
        store
            .credentials()
            .rotate_password(&scope, phone.id, &realm)
            .await
            .unwrap();
        check(vec![u], "password rotated").await;
        store
            .credentials()
            .set_enabled(&scope, phone.id, false)
            .await
            .unwrap();
        check(vec![u], "credential disabled").await;
        assert!(directory.snapshot().usable_credential(&name).is_none());
        store
            .devices()
            .set_label(&scope, phone.id, "desk")
            .await
            .unwrap();
        check(vec![u], "device label").await;
        store
            .devices()
            .set_whitelist_exempt(&scope, phone.id, true)
            .await
            .unwrap();
        check(vec![u], "device exemption").await;
        let office = store
            .whitelist()
            .add(
                &scope,
                None,
                parse_network("192.0.2.0/24").unwrap(),
                "office",
            )
            .await
            .unwrap();
        check(vec![t], "tenant whitelist added").await;
        let home = store
            .whitelist()
            .add(
                &scope,
                Some(ann.id),
                parse_network("2001:db8::/32").unwrap(),
                "home",
            )
            .await
            .unwrap();
        check(vec![u], "user whitelist added").await;
        // The user's own list narrows the tenant's: the office is no longer enough.
        assert!(!directory.snapshot().whitelist_permits(
            acme.id,
            Some(ann.id),
            "192.0.2.5".parse().unwrap()
        ));
        store.whitelist().remove(&scope, home.id).await.unwrap();
        check(vec![u], "user whitelist removed").await;
        store.whitelist().remove(&scope, office.id).await.unwrap();
        check(vec![t], "tenant whitelist removed").await;
        let number = store
            .numbers()
            .add_to_inventory(&Actor::Operator, &E164::parse("+31201234567").unwrap())
            .await
            .unwrap();
        assert_eq!(
            store.generation(),
            directory.snapshot().generation(),
            "free numbers are not configuration"
        );
        store
            .numbers()
            .assign_to_tenant(&Actor::Operator, number.id, &scope)
            .await
            .unwrap();
        let n = ConfigChange::Number(number.id);
        check(vec![n], "number assigned").await;
        store
            .numbers()
            .assign_user(&scope, number.id, Some(ann.id))
            .await
            .unwrap();
        check(vec![n], "number routed to a user").await;
        store
            .users()
            .update(
                &scope,
                ann.id,
                &UserUpdate {
                    extension: Extension::parse("202").unwrap(),
                    display_name: DisplayName::parse("Ann").unwrap(),
                    class_of_service: ClassOfService::International,
                },
            )
            .await
            .unwrap();
        check(vec![u], "user renumbered").await;
        assert!(
            directory
                .snapshot()
                .user_by_extension(acme.id, "201")
                .is_none()
        );
        store
            .tenants()
            .set_status(&scope, TenantStatus::Suspended)
            .await
            .unwrap();
        check(vec![t], "tenant suspended").await;
        store.devices().delete(&scope, phone.id).await.unwrap();
        check(vec![u], "device deleted").await;
        assert!(directory.snapshot().credential(&name).is_none());
        assert!(directory.snapshot().device_by_mac("001565aabbcc").is_none());
        store.users().delete(&scope, ann.id).await.unwrap();
        check(vec![u, n], "user deleted, its number unassigned from it").await;
        assert_eq!(
            directory.snapshot().number("+31201234567").unwrap().user_id,
            None
        );
        let bob = user(&store, &scope, "301").await;
        check(vec![ConfigChange::User(acme.id, bob.id)], "second user").await;
        store
            .numbers()
            .release(&Actor::Operator, &scope, number.id)
            .await
            .unwrap();
        check(vec![n], "number released").await;
        store
            .tenants()
            .delete(&Actor::Operator, &scope)
            .await
            .unwrap();
        check(vec![t], "tenant deleted with its users").await;
        assert_eq!(directory.snapshot().counts(), (0, 0, 0));
        db
    })
    .await;
}

/// Many writes before one refresh: the refresh applies all of them at once, and concurrent
/// refresh calls (API writers and the follower) coalesce into that one.
#[tokio::test]
async fn a_burst_of_writes_costs_one_refresh() {
    on_both(|db| async move {
        let store = db.open().await;
        let directory = Directory::load(&store).await.unwrap();
        let (acme, scope) = tenant(&store, "acme").await;
        for index in 0..50 {
            user(&store, &scope, &format!("{}", 100 + index)).await;
        }
        let target = store.generation();
        let changes = store
            .changes_since(directory.snapshot().generation(), target)
            .unwrap();
        assert_eq!(changes.len(), 51, "one tenant and 50 users, each once");
        let refreshes: Vec<_> = (0..8)
            .map(|_| {
                let (store, directory) = (store.clone(), Arc::clone(&directory));
                tokio::spawn(async move { directory.refresh(&store).await.unwrap() })
            })
            .collect();
        for refresh in refreshes {
            assert_eq!(refresh.await.unwrap(), target);
        }
        let snapshot = directory.snapshot();
        assert_eq!(snapshot.counts(), (1, 50, 0));
        assert!(snapshot.user_by_extension(acme.id, "149").is_some());
        db
    })
    .await;
}

async fn wait(directory: &Directory, generation: u64) {
    tokio::time::timeout(Duration::from_secs(10), directory.caught_up(generation))
        .await
        .expect("directory caught up with the store");
}

/// Two stores on one database stand for two cluster nodes: a write on node A reaches node
/// B's directory through `LISTEN/NOTIFY` (PostgreSQL only; SQLite has no listener).
#[tokio::test]
async fn changes_on_another_node_reach_this_directory() {
    on_both(|db| async move {
        let node_a = db.open().await;
        let node_b = db.open().await;
        let listener = node_b.listen_for_remote_changes().await.unwrap();
        if db.engine == pbx_store::Engine::Sqlite {
            assert!(listener.is_none());
            return db;
        }
        let listener = listener.expect("PostgreSQL listener");
        let directory = Directory::load(&node_b).await.unwrap();
        let follower = directory.follow(node_b.clone());
        let generation = node_b.generation();
        let (acme, _) = tenant(&node_a, "acme").await;
        assert_eq!(
            node_a.generation(),
            1,
            "the writer counts its own change once"
        );
        wait(&directory, generation + 1).await;
        assert_eq!(
            directory.snapshot().tenant(acme.id).map(|t| t.id),
            Some(acme.id)
        );
        // The notification said what changed, so node B patched instead of reloading.
        assert_eq!(
            node_b.changes_since(generation, generation + 1),
            Some(vec![ConfigChange::Tenant(acme.id)])
        );
        follower.abort();
        listener.abort();
        db
    })
    .await;
}

/// What `cloudpbx serve` starts: a write by another process (the CLI on the same SQLite
/// file, another node on PostgreSQL) reaches this store's directory without a restart —
/// through the `config_changes` sequence on SQLite, `LISTEN/NOTIFY` on PostgreSQL.
#[tokio::test]
async fn config_change_watcher_sees_writes_by_another_process() {
    on_both(|db| async move {
        let server = db.open().await;
        let cli = db.open().await;
        let watcher = server
            .watch_config_changes(Duration::from_millis(50))
            .await
            .unwrap();
        let directory = Directory::load(&server).await.unwrap();
        let follower = directory.follow(server.clone());
        let before = server.generation();
        let (acme, _) = tenant(&cli, "acme").await;
        wait(&directory, before + 1).await;
        assert_eq!(
            directory.snapshot().tenant(acme.id).map(|t| t.id),
            Some(acme.id),
            "{:?}: the other process's tenant is live",
            db.engine
        );
        // The server's own writes are not counted twice.
        let generation = server.generation();
        let (globex, _) = tenant(&server, "globex").await;
        assert_eq!(server.generation(), generation + 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.generation(), generation + 1, "{:?}", db.engine);
        assert!(directory.snapshot().tenant(globex.id).is_some());
        follower.abort();
        watcher.abort();
        db
    })
    .await;
}

/// A figure, not a check: how long a full directory load takes for 2,000 users with one
/// credentialed device each. Run with `--ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement; run by hand"]
async fn directory_load_figure() {
    on_both(|db| async move {
        let store = db.open().await;
        let realm = Realm::parse("cloudpbx").unwrap();
        let (_, scope) = tenant(&store, "big").await;
        for index in 0..2_000 {
            let ann = user(&store, &scope, &format!("{}", 1_000 + index)).await;
            let device = store
                .devices()
                .create(
                    &scope,
                    &NewDevice {
                        user_id: ann.id,
                        kind: DeviceKind::Softphone,
                        label: String::new(),
                    },
                )
                .await
                .unwrap();
            store
                .credentials()
                .issue(&scope, device.id, &realm)
                .await
                .unwrap();
        }
        let started = std::time::Instant::now();
        let directory = Directory::load(&store).await.unwrap();
        let load = started.elapsed();
        assert_eq!(directory.snapshot().counts(), (1, 2_000, 2_000));
        eprintln!(
            "{:?}: directory load of 2,000 users + credentials: {load:?}",
            db.engine
        );
        db
    })
    .await;
}
