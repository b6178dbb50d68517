//! API tokens: secret once, stored as SHA-256, revocation, bootstrap.

use pbx_api::{BootstrapError, Bootstrapped};
use pbx_domain::TokenHash;
use serde_json::json;
use sqlx::Row;

use crate::support::on_both;

#[tokio::test]
async fn tokens_create_list_revoke() {
    on_both(|app| async move {
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.tenant("globex", None).await;
        let created = app
            .post(
                "/api/v1/tokens",
                &op,
                json!({ "name": "acme portal", "role": "customer_admin", "tenant": "acme" }),
            )
            .await
            .expect(201);
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("cpbx_") && secret.len() == 57);
        assert_eq!(created["token"]["role"], "customer_admin");
        let id = created["token"]["id"].as_str().unwrap().to_owned();

        // Stored as the SHA-256 of the secret, never the secret.
        let row = sqlx::query("SELECT token_hash FROM api_tokens WHERE id = $1")
            .bind(id.clone())
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
        assert_eq!(
            row.get::<String, _>("token_hash"),
            TokenHash::of(&secret).as_hex()
        );

        let listed = app.get("/api/v1/tokens", &op).await;
        assert_eq!(listed.status.as_u16(), 200);
        assert!(!listed.text.contains(&secret));
        assert_eq!(
            listed.body.as_array().unwrap().len(),
            2,
            "bootstrap operator token and the new one"
        );
        assert_eq!(
            app.get(&format!("/api/v1/tokens/{id}"), &op)
                .await
                .expect(200)["name"],
            "acme portal"
        );

        // The admin sees only its tenant's tokens and can use the token.
        let mine = app.get("/api/v1/tokens", &secret).await.expect(200);
        assert_eq!(mine.as_array().unwrap().len(), 1);
        assert!(
            app.get(&format!("/api/v1/tokens/{id}"), &secret).await.body["last_used_at_ms"]
                .is_i64()
        );
        let operator_id = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["role"] == "operator")
            .unwrap()["id"]
            .clone();
        app.get(
            &format!("/api/v1/tokens/{}", operator_id.as_str().unwrap()),
            &secret,
        )
        .await
        .assert_error(404, "not_found", None);
        app.delete(
            &format!("/api/v1/tokens/{}", operator_id.as_str().unwrap()),
            &secret,
        )
        .await
        .assert_error(404, "not_found", None);
        app.post(
            "/api/v1/tokens",
            &secret,
            json!({ "name": "x", "role": "operator" }),
        )
        .await
        .assert_error(403, "forbidden", None);
        app.post(
            "/api/v1/tokens",
            &secret,
            json!({ "name": "x", "role": "customer_admin", "tenant": "globex" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("tenant"));

        // Field errors.
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "root" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("role"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "customer_admin" }),
        )
        .await
        .assert_error(422, "missing_field", Some("tenant"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "", "role": "operator" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("name"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "reseller" }),
        )
        .await
        .assert_error(422, "missing_field", Some("reseller_id"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "reseller", "reseller_id": uuid::Uuid::now_v7() }),
        )
        .await
        .assert_error(422, "invalid_field", Some("reseller_id"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "operator", "expires_at_ms": 1 }),
        )
        .await
        .assert_error(422, "invalid_field", Some("expires_at_ms"));
        app.post(
            "/api/v1/tokens",
            &op,
            json!({ "name": "x", "role": "operator", "tenant": "acme" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("tenant"));

        // Revocation: refused from the next request on.
        let revoked = app
            .delete(&format!("/api/v1/tokens/{id}"), &op)
            .await
            .expect(200);
        assert!(revoked["revoked_at_ms"].is_i64());
        app.get("/api/v1/tenants", &secret)
            .await
            .assert_error(401, "unauthenticated", None);
        app.delete(&format!("/api/v1/tokens/{id}"), &op)
            .await
            .assert_error(409, "conflict", None);
        app.get("/api/v1/tokens/not-a-uuid", &op)
            .await
            .assert_error(404, "not_found", None);
        let reply = app.get("/api/v1/events", &op).await;
        assert!(
            !reply.text.contains(&secret),
            "the audit log never holds a secret"
        );
        let events = reply.expect(200);
        let kinds: Vec<_> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            kinds.contains(&"api_token.revoked".to_owned())
                && kinds.contains(&"api_token.bootstrapped".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn bearer_header_forms() {
    on_both(|app| async move {
        let request = |value: &str| {
            axum::http::Request::get("/api/v1/tenants")
                .header("authorization", value)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        app.send(request(&format!("bearer {}", app.operator)))
            .await
            .expect(200);
        app.send(request(&format!("Basic {}", app.operator)))
            .await
            .assert_error(401, "unauthenticated", None);
        app.send(request("Bearer "))
            .await
            .assert_error(401, "unauthenticated", None);
        app.send(request("Bearer cpbx_unknown"))
            .await
            .assert_error(401, "unauthenticated", None);
        let reply = app.send(request("Bearer cpbx_unknown")).await;
        assert_eq!(reply.status.as_u16(), 401);
    })
    .await;
}

#[tokio::test]
async fn bootstrap_creates_only_when_no_operator_token_is_usable() {
    on_both(|app| async move {
        let store = &app.state.store;
        assert!(matches!(
            pbx_api::bootstrap_operator_token(store, None)
                .await
                .unwrap(),
            Bootstrapped::Existing
        ));
        // Revoke the generated operator token: the next start may bootstrap again.
        let tokens = app.get("/api/v1/tokens", &app.operator).await.expect(200);
        let id = tokens[0]["id"].as_str().unwrap().to_owned();
        app.delete(&format!("/api/v1/tokens/{id}"), &app.operator)
            .await
            .expect(200);
        assert!(matches!(
            pbx_api::bootstrap_operator_token(store, Some("short")).await,
            Err(BootstrapError::WeakSecret)
        ));
        let chosen = "cpbx_chosen_by_the_administrator_0123456789";
        assert!(matches!(
            pbx_api::bootstrap_operator_token(store, Some(chosen))
                .await
                .unwrap(),
            Bootstrapped::Provided
        ));
        app.get("/api/v1/tenants", chosen).await.expect(200);
        app.get("/api/v1/tenants", &app.operator)
            .await
            .assert_error(401, "unauthenticated", None);
        assert!(matches!(
            pbx_api::bootstrap_operator_token(store, Some(chosen))
                .await
                .unwrap(),
            Bootstrapped::Existing
        ));
    })
    .await;
}
