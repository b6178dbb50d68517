//! Migrations: idempotent, same schema on both engines, SQLite in WAL mode.

use std::collections::BTreeSet;

use pbx_domain::Actor;
use pbx_store::{Engine, Store};
use sqlx::Row;

use crate::support::{TestDb, on_both, tenant};

/// (table, column) pairs of the application schema.
async fn columns(store: &Store) -> BTreeSet<(String, String)> {
    let query = match store.engine() {
        Engine::Sqlite => {
            "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
             AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'"
        }
        _ => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name <> '_sqlx_migrations'"
        }
    };
    let rows = sqlx::query(query).fetch_all(store.pool()).await.unwrap();
    rows.iter()
        .map(|row| {
            (
                row.get::<String, _>("table_name"),
                row.get::<String, _>("column_name"),
            )
        })
        .collect()
}

#[tokio::test]
async fn migrations_are_idempotent() {
    on_both(|db| async move {
        let first = db.open().await;
        let (acme, _) = tenant(&first, "acme").await;
        first.close().await;
        let second = db.open().await;
        let third = db.open().await;
        let tenants = third.tenants().list(&Actor::Operator).await.unwrap();
        assert_eq!(
            tenants.iter().map(|t| t.id).collect::<Vec<_>>(),
            [acme.id],
            "data kept across reopen"
        );
        let applied: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
            .fetch_one(second.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(
            applied,
            i64::try_from(
                std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                    .unwrap()
                    .count()
            )
            .unwrap(),
            "every migration applied exactly once"
        );
        db
    })
    .await;
}

#[tokio::test]
async fn schema_is_complete_on_each_engine() {
    on_both(|db: TestDb| async move {
        let store = db.open().await;
        let columns = columns(&store).await;
        let tables: BTreeSet<&str> = columns.iter().map(|(table, _)| table.as_str()).collect();
        let expected = [
            "api_tokens",
            "cdrs",
            "config_changes",
            "device_provisioning",
            "devices",
            "events",
            "ip_whitelist",
            "phone_numbers",
            "provisioning_fetches",
            "registration_bindings",
            "resellers",
            "routes",
            "security_events",
            "security_state",
            "sip_credentials",
            "tenant_call_settings",
            "tenant_destination_exceptions",
            "tenant_provisioning",
            "tenant_usage_limits",
            "tenants",
            "trunks",
            "user_usage_limits",
            "users",
        ];
        assert_eq!(tables.into_iter().collect::<Vec<_>>(), expected);
        for column in [
            "pn_provider",
            "pn_prid",
            "pn_param",
            "instance_id",
            "reg_id",
            "path",
            "connection_id",
            "node_id",
            "sip_alg_detected",
            "sip_alg_reason",
            "local_addr",
            "source_ip",
            "source_port",
        ] {
            assert!(
                columns.contains(&("registration_bindings".into(), column.into())),
                "bindings.{column}"
            );
        }
        // Secrets we must use ourselves are stored only sealed with a key outside the
        // database (device provisioning passwords, carrier passwords); nothing in clear.
        let clear: Vec<_> = columns
            .iter()
            .filter(|(_, column)| column.contains("password"))
            .filter(|(_, column)| !column.starts_with("sealed_") && !column.ends_with("_enc"))
            .collect();
        assert!(clear.is_empty(), "password columns in clear: {clear:?}");
        db
    })
    .await;
}

/// With one migration set for both engines the schemas cannot drift apart, and this test
/// proves it: the (table, column) sets introspected from SQLite and PostgreSQL are equal.
#[tokio::test]
async fn sqlite_and_postgres_schemas_agree() {
    let sqlite_columns = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let shared = std::sync::Arc::clone(&sqlite_columns);
    let engines = on_both(move |db| {
        let shared = std::sync::Arc::clone(&shared);
        async move {
            let store = db.open().await;
            let got = columns(&store).await;
            let mut slot = shared.lock().await;
            match slot.as_ref() {
                None => *slot = Some(got),
                Some(sqlite) => assert_eq!(&got, sqlite, "PostgreSQL schema differs from SQLite"),
            }
            db
        }
    })
    .await;
    assert!(sqlite_columns.lock().await.is_some());
    if engines.len() < 2 {
        eprintln!("SKIP: schema comparison needs PostgreSQL");
    }
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
    on_both(|db| async move {
        let store = db.open().await;
        if db.engine == Engine::Sqlite {
            let mut connection = store.pool().acquire().await.unwrap();
            let mode: String = sqlx::query("PRAGMA journal_mode")
                .fetch_one(&mut *connection)
                .await
                .unwrap()
                .get(0);
            assert_eq!(mode, "wal");
            let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(&mut *connection)
                .await
                .unwrap()
                .get(0);
            assert_eq!(foreign_keys, 1);
            let busy: i64 = sqlx::query("PRAGMA busy_timeout")
                .fetch_one(&mut *connection)
                .await
                .unwrap()
                .get(0);
            assert_eq!(busy, 5_000);
        }
        db
    })
    .await;
}

#[tokio::test]
async fn open_data_dir_creates_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let store = Store::open_data_dir(&data_dir).await.unwrap();
    assert_eq!(store.engine(), Engine::Sqlite);
    tenant(&store, "acme").await;
    store.close().await;
    assert!(data_dir.join(pbx_store::SQLITE_FILE_NAME).is_file());
    assert!(matches!(
        Store::open("mysql://localhost/x").await,
        Err(pbx_store::StoreError::UnsupportedUrl)
    ));
}
