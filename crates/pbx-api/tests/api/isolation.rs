//! Every tenant-scoped endpoint: no token → 401, revoked token → 401, another tenant's
//! admin → 404, a reseller that does not own the tenant → 404; and nothing changed.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::on_both;

/// (method, path, body) for every tenant-scoped operation on tenant `t` (id or slug).
fn endpoints(t: &str, device: &str, entry: &str) -> Vec<(Method, String, Option<Value>)> {
    let base = format!("/api/v1/tenants/{t}");
    let body = |value: Value| Some(value);
    vec![
        (Method::GET, base.clone(), None),
        (
            Method::PATCH,
            base.clone(),
            body(json!({ "name": "Hijacked" })),
        ),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/users"), None),
        (
            Method::POST,
            format!("{base}/users"),
            body(json!({ "extension": "999", "display_name": "Intruder" })),
        ),
        (Method::GET, format!("{base}/users/201"), None),
        (
            Method::PATCH,
            format!("{base}/users/201"),
            body(json!({ "display_name": "Hijacked" })),
        ),
        (Method::DELETE, format!("{base}/users/201"), None),
        (Method::GET, format!("{base}/devices"), None),
        (
            Method::POST,
            format!("{base}/devices"),
            body(json!({ "user": "201", "kind": "softphone" })),
        ),
        (Method::GET, format!("{base}/devices/{device}"), None),
        (
            Method::PATCH,
            format!("{base}/devices/{device}"),
            body(json!({ "enabled": false })),
        ),
        (Method::DELETE, format!("{base}/devices/{device}"), None),
        (
            Method::POST,
            format!("{base}/devices/{device}/credentials/rotate"),
            None,
        ),
        (Method::GET, format!("{base}/ip-whitelist"), None),
        (
            Method::POST,
            format!("{base}/ip-whitelist"),
            body(json!({ "network": "0.0.0.0/0" })),
        ),
        (Method::GET, format!("{base}/ip-whitelist/{entry}"), None),
        (Method::DELETE, format!("{base}/ip-whitelist/{entry}"), None),
        (Method::GET, format!("{base}/users/201/ip-whitelist"), None),
        (
            Method::POST,
            format!("{base}/users/201/ip-whitelist"),
            body(json!({ "network": "0.0.0.0/0" })),
        ),
        (Method::GET, format!("{base}/numbers"), None),
        (
            Method::POST,
            format!("{base}/numbers"),
            body(json!({ "number": "+31209999999" })),
        ),
        (Method::GET, format!("{base}/numbers/+31201234567"), None),
        (
            Method::PATCH,
            format!("{base}/numbers/+31201234567"),
            body(json!({ "user": null })),
        ),
        (Method::DELETE, format!("{base}/numbers/+31201234567"), None),
        (Method::GET, format!("{base}/registrations"), None),
        (Method::DELETE, format!("{base}/registrations"), None),
        (Method::GET, format!("{base}/users/201/registrations"), None),
        (
            Method::DELETE,
            format!("{base}/users/201/registrations"),
            None,
        ),
        (Method::GET, format!("{base}/events"), None),
    ]
}

#[tokio::test]
async fn foreign_and_unauthenticated_callers_get_404_and_401_everywhere() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let (north, _) = app.reseller("North").await;
        let (_south, south_token) = app.reseller("South").await;
        let acme = app.tenant("acme", Some(&north)).await;
        let acme_id = acme["id"].as_str().unwrap().to_owned();
        app.tenant("globex", None).await;
        app.user("acme", "201").await;
        let device = app.softphone("acme", "201").await["device"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let entry = app
            .post(
                "/api/v1/tenants/acme/ip-whitelist",
                &op,
                json!({ "network": "192.0.2.0/24" }),
            )
            .await
            .expect(201);
        let entry = entry["id"].as_str().unwrap().to_owned();
        app.post(
            "/api/v1/tenants/acme/numbers",
            &op,
            json!({ "number": "+31201234567", "user": "201" }),
        )
        .await
        .expect(201);
        let globex_admin = app.admin_token("globex").await;
        let acme_admin = app.admin_token("acme").await;
        // Two tokens made in the same millisecond have UUID v7 ids in random order, so the
        // revoked one is named by the id its creation returned, not by its place in a list.
        let (revoked_id, revoked) = app.admin_token_with_id("acme").await;
        app.get("/api/v1/tokens", &revoked).await.expect(200);
        app.delete(&format!("/api/v1/tokens/{revoked_id}"), &op)
            .await
            .expect(200);
        let before = app.event_kinds("acme").await.len();

        for tenant in ["acme", acme_id.as_str()] {
            for (method, path, body) in endpoints(tenant, &device, &entry) {
                let what = format!("{method} {path}");
                let reply = app.call(method.clone(), &path, None, body.clone()).await;
                assert_eq!(
                    reply.status.as_u16(),
                    401,
                    "no token: {what}: {}",
                    reply.text
                );
                assert_eq!(reply.body["error"]["code"], "unauthenticated", "{what}");
                let reply = app
                    .call(method.clone(), &path, Some(&revoked), body.clone())
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    401,
                    "revoked token: {what}: {}",
                    reply.text
                );
                let reply = app
                    .call(method.clone(), &path, Some(&globex_admin), body.clone())
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    404,
                    "other tenant's admin: {what}: {}",
                    reply.text
                );
                assert_eq!(reply.body["error"]["code"], "not_found", "{what}");
                let reply = app
                    .call(method.clone(), &path, Some(&south_token), body.clone())
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    404,
                    "other reseller: {what}: {}",
                    reply.text
                );
            }
        }

        // Nothing changed in acme, and no write was audited.
        assert_eq!(app.event_kinds("acme").await.len(), before);
        assert_eq!(
            app.get("/api/v1/tenants/acme", &acme_admin)
                .await
                .expect(200)["name"],
            "acme B.V."
        );
        assert_eq!(
            app.get("/api/v1/tenants/acme/users", &acme_admin)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let devices = app
            .get("/api/v1/tenants/acme/devices", &acme_admin)
            .await
            .expect(200);
        assert_eq!(devices.as_array().unwrap().len(), 1);
        assert_eq!(devices[0]["enabled"], true);
        assert_eq!(
            app.get("/api/v1/tenants/acme/ip-whitelist", &acme_admin)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            app.get("/api/v1/tenants/acme/numbers/+31201234567", &acme_admin)
                .await
                .expect(200)["number"],
            "+31201234567"
        );
        assert!(
            app.control.cleared.lock().unwrap().is_empty(),
            "no registrations cleared by a foreign caller"
        );

        // The owner's admin reaches every read endpoint.
        for (method, path, _) in endpoints("acme", &device, &entry) {
            if method == Method::GET {
                let reply = app.call(method, &path, Some(&acme_admin), None).await;
                assert_eq!(reply.status.as_u16(), 200, "owner: {path}: {}", reply.text);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn platform_endpoints_need_a_token() {
    on_both(|app| async move {
        for (method, path) in [
            (Method::GET, "/api/v1/tenants"),
            (Method::POST, "/api/v1/tenants"),
            (Method::GET, "/api/v1/resellers"),
            (Method::POST, "/api/v1/resellers"),
            (Method::GET, "/api/v1/tokens"),
            (Method::POST, "/api/v1/tokens"),
            (Method::GET, "/api/v1/numbers"),
            (Method::POST, "/api/v1/numbers"),
            (Method::GET, "/api/v1/events"),
        ] {
            let reply = app.call(method.clone(), path, None, Some(json!({}))).await;
            reply.assert_error(401, "unauthenticated", None);
        }
    })
    .await;
}
