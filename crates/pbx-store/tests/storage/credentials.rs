//! SIP credentials, API tokens and the event log: secrets are shown once, stored hashed.

use pbx_domain::{
    Actor, ApiScope, DeviceKind, DigestAlgorithm, Ha1, NewDevice, Realm, TenantStatus,
};
use pbx_store::{Engine, Store, StoreError};
use sqlx::{Column, Row};

use crate::support::{on_both, tenant, user};

/// Every text value in every table (values that do not decode as text are skipped).
async fn all_text(store: &Store) -> Vec<String> {
    let mut values = Vec::new();
    for table in [
        "tenants",
        "users",
        "devices",
        "sip_credentials",
        "api_tokens",
        "events",
        "registration_bindings",
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in &rows {
            for column in row.columns() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(column.ordinal()) {
                    values.push(text);
                }
            }
        }
    }
    values
}

#[tokio::test]
async fn credential_password_is_shown_once_and_stored_as_ha1_only() {
    on_both(|db| async move {
        let store = db.open().await;
        let realm = Realm::parse("cloudpbx").unwrap();
        let (_, scope) = tenant(&store, "acme").await;
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
        let password = issued.password.expose().to_owned();
        let user_name = issued.credential.auth_username.as_str().to_owned();
        assert!(password.len() >= 22, "at least 128 bits");
        assert!(user_name.len() >= 12);
        assert!(
            !user_name.contains("201") && !user_name.contains("acme"),
            "no extension or tenant in the name"
        );

        let stored = store
            .credentials()
            .for_device(&scope, device.id)
            .await
            .unwrap();
        assert_eq!(stored, issued.credential);
        assert_eq!(stored.user_id, ann.id);
        assert_eq!(
            stored.ha1_md5,
            Ha1::compute(
                DigestAlgorithm::Md5,
                &stored.auth_username,
                &realm,
                &issued.password
            )
        );
        assert_eq!(
            stored.ha1_sha256,
            Ha1::compute(
                DigestAlgorithm::Sha256,
                &stored.auth_username,
                &realm,
                &issued.password
            )
        );

        // A second credential for the same device is refused; another device gets another name.
        let error = store
            .credentials()
            .issue(&scope, device.id, &realm)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Conflict {
                    what: "device credential"
                }
            ),
            "{error:?}"
        );
        let other_device = store
            .devices()
            .create(
                &scope,
                &NewDevice {
                    user_id: ann.id,
                    kind: DeviceKind::MobileApp,
                    label: String::new(),
                },
            )
            .await
            .unwrap();
        let second = store
            .credentials()
            .issue(&scope, other_device.id, &realm)
            .await
            .unwrap();
        assert_ne!(
            second.credential.auth_username,
            issued.credential.auth_username
        );
        assert_ne!(second.password.expose(), password);

        // The duplicate-name path maps to a named conflict.
        let clash =
            sqlx::query("UPDATE sip_credentials SET auth_username = $1 WHERE device_id = $2")
                .bind(user_name.clone())
                .bind(other_device.id.to_string())
                .execute(store.pool())
                .await
                .unwrap_err();
        assert!(matches!(
            StoreError::from(clash),
            StoreError::Conflict {
                what: "auth user name"
            }
        ));

        // Rotation: same name, new password and digests.
        let rotated = store
            .credentials()
            .rotate_password(&scope, device.id, &realm)
            .await
            .unwrap();
        assert_eq!(
            rotated.credential.auth_username,
            issued.credential.auth_username
        );
        assert_ne!(rotated.password.expose(), password);
        assert_ne!(rotated.credential.ha1_md5, issued.credential.ha1_md5);
        store
            .credentials()
            .set_enabled(&scope, device.id, false)
            .await
            .unwrap();
        assert!(
            !store
                .credentials()
                .for_device(&scope, device.id)
                .await
                .unwrap()
                .enabled
        );

        // No plaintext password anywhere in the database.
        let passwords = [
            password,
            second.password.expose().to_owned(),
            rotated.password.expose().to_owned(),
        ];
        for value in all_text(&store).await {
            for secret in &passwords {
                assert!(
                    !value.contains(secret.as_str()),
                    "plaintext password stored"
                );
            }
        }
        if db.engine == Engine::Sqlite {
            store.close().await;
            let path = db.sqlite_path.clone().unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(path.with_extension("sqlite3-wal")).unwrap_or_default());
            for secret in &passwords {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "password in the SQLite file"
                );
            }
        }
        db
    })
    .await;
}

#[tokio::test]
async fn api_tokens_are_hashed_scoped_and_revocable() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, _) = tenant(&store, "acme").await;
        let (beta, _) = tenant(&store, "beta").await;
        let admin = Actor::CustomerAdmin(acme.id);
        let (token, secret) = store
            .api_tokens()
            .create(
                &admin,
                "portal",
                ApiScope::CustomerAdmin { tenant_id: acme.id },
                None,
            )
            .await
            .unwrap();
        let forbidden = store
            .api_tokens()
            .create(
                &admin,
                "x",
                ApiScope::CustomerAdmin { tenant_id: beta.id },
                None,
            )
            .await;
        assert!(matches!(forbidden, Err(StoreError::Forbidden { .. })));
        assert!(matches!(
            store
                .api_tokens()
                .create(&admin, "x", ApiScope::Operator, None)
                .await,
            Err(StoreError::Forbidden { .. })
        ));

        let found = store
            .api_tokens()
            .authenticate(secret.expose(), 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, token.id);
        assert_eq!(found.scope.actor(), admin);
        assert_eq!(found.last_used_at_ms, Some(1_000));
        assert!(
            store
                .api_tokens()
                .authenticate("cpbx_wrong", 1_000)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            all_text(&store)
                .await
                .iter()
                .all(|value| !value.contains(secret.expose())),
            "secret stored"
        );
        assert!(
            all_text(&store)
                .await
                .iter()
                .any(|value| value == secret.hash().as_hex()),
            "hash stored"
        );

        assert!(
            store
                .api_tokens()
                .list(&Actor::CustomerAdmin(beta.id))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            store
                .api_tokens()
                .revoke(&Actor::CustomerAdmin(beta.id), token.id, 2_000)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        store
            .api_tokens()
            .revoke(&admin, token.id, 2_000)
            .await
            .unwrap();
        assert!(
            store
                .api_tokens()
                .authenticate(secret.expose(), 3_000)
                .await
                .unwrap()
                .is_none()
        );
        let listed = store.api_tokens().list(&Actor::Operator).await.unwrap();
        assert_eq!(listed[0].revoked_at_ms, Some(2_000));

        let (_, expiring) = store
            .api_tokens()
            .create(&Actor::Operator, "ops", ApiScope::Operator, Some(5_000))
            .await
            .unwrap();
        assert!(
            store
                .api_tokens()
                .authenticate(expiring.expose(), 4_999)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .api_tokens()
                .authenticate(expiring.expose(), 5_000)
                .await
                .unwrap()
                .is_none()
        );
        db
    })
    .await;
}

#[tokio::test]
async fn events_are_scoped_and_newest_first() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, acme_scope) = tenant(&store, "acme").await;
        let (_, beta_scope) = tenant(&store, "beta").await;
        store
            .tenants()
            .set_status(&acme_scope, TenantStatus::Active)
            .await
            .unwrap();
        let payload = serde_json::json!({"extension": "201", "by": "admin"});
        store
            .events()
            .append(10, Some(acme.id), "user.created", &payload)
            .await
            .unwrap();
        store
            .events()
            .append(20, Some(acme.id), "user.deleted", &serde_json::json!({}))
            .await
            .unwrap();
        store
            .events()
            .append(
                15,
                None,
                "platform.started",
                &serde_json::json!({"node": "n1"}),
            )
            .await
            .unwrap();

        let acme_events = store.events().list(&acme_scope, 10).await.unwrap();
        assert_eq!(
            acme_events
                .iter()
                .map(|e| e.kind.as_str())
                .collect::<Vec<_>>(),
            ["user.deleted", "user.created"]
        );
        assert_eq!(acme_events[1].payload, payload);
        assert!(
            store
                .events()
                .list(&beta_scope, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .events()
                .list_all(&Actor::Operator, 2)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            store
                .events()
                .list_all(&Actor::CustomerAdmin(acme.id), 2)
                .await,
            Err(StoreError::Forbidden { .. })
        ));
        db
    })
    .await;
}
