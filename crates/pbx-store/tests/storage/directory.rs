//! The in-memory directory follows store writes without a restart.

use std::time::Duration;

use pbx_domain::{Actor, DeviceKind, E164, NewDevice, Realm, TenantStatus, parse_network};
use pbx_store::Directory;

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
