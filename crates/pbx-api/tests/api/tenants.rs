//! Tenants and resellers: CRUD, field errors, role limits.

use axum::http::Method;
use serde_json::json;

use crate::support::on_both;

#[tokio::test]
async fn tenant_crud_by_id_and_slug() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let acme = app.tenant("acme", None).await;
        assert_eq!(acme["slug"], "acme");
        assert_eq!(acme["status"], "active");
        assert_eq!(acme["sip_domain"], "acme.pbx.example.com");
        let id = acme["id"].as_str().unwrap().to_owned();
        app.tenant("globex", None).await;

        let listed = app.get("/api/v1/tenants", &op).await.expect(200);
        let slugs: Vec<_> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(slugs, ["acme", "globex"]);
        assert_eq!(
            app.get(&format!("/api/v1/tenants/{id}"), &op)
                .await
                .expect(200)["slug"],
            "acme"
        );
        assert_eq!(
            app.get("/api/v1/tenants/ACME", &op).await.expect(200)["id"],
            id.as_str()
        );

        let patched = app
            .patch(
                "/api/v1/tenants/acme",
                &op,
                json!({ "name": "Acme Holding", "status": "suspended" }),
            )
            .await
            .expect(200);
        assert_eq!(patched["name"], "Acme Holding");
        assert_eq!(patched["status"], "suspended");
        assert_eq!(
            patched["sip_domain"], "acme.pbx.example.com",
            "absent fields keep their value"
        );
        let snapshot = app.state.directory.snapshot();
        assert_eq!(
            snapshot.tenant_by_slug("acme").unwrap().name.as_str(),
            "Acme Holding",
            "directory refreshed"
        );

        assert_eq!(
            app.delete(&format!("/api/v1/tenants/{id}"), &op)
                .await
                .status
                .as_u16(),
            204
        );
        app.get("/api/v1/tenants/acme", &op)
            .await
            .assert_error(404, "not_found", None);
        app.delete("/api/v1/tenants/acme", &op)
            .await
            .assert_error(404, "not_found", None);
        assert!(
            app.state
                .directory
                .snapshot()
                .tenant_by_slug("acme")
                .is_none()
        );
        // The audit trail outlives the tenant (platform log).
        let events = app.get("/api/v1/events", &op).await.expect(200);
        let kinds: Vec<_> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["tenant_id"] == id.as_str())
            .map(|event| event["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kinds,
            ["tenant.deleted", "tenant.updated", "tenant.created"]
        );
    })
    .await;
}

#[tokio::test]
async fn tenant_bad_requests_name_the_field() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let good = json!({ "name": "Acme", "slug": "acme", "sip_domain": "acme.example.com" });
        let with = |key: &str, value: serde_json::Value| {
            let mut body = good.clone();
            body[key] = value;
            body
        };
        app.post("/api/v1/tenants", &op, with("slug", json!("-bad")))
            .await
            .assert_error(422, "invalid_field", Some("slug"));
        app.post(
            "/api/v1/tenants",
            &op,
            with("sip_domain", json!("localhost")),
        )
        .await
        .assert_error(422, "invalid_field", Some("sip_domain"));
        app.post("/api/v1/tenants", &op, with("name", json!("")))
            .await
            .assert_error(422, "invalid_field", Some("name"));
        app.post("/api/v1/tenants", &op, with("status", json!("gone")))
            .await
            .assert_error(422, "invalid_field", Some("status"));
        app.post("/api/v1/tenants", &op, with("reseller_id", json!("nope")))
            .await
            .assert_error(422, "invalid_field", Some("reseller_id"));
        app.post(
            "/api/v1/tenants",
            &op,
            with("reseller_id", json!(uuid::Uuid::now_v7())),
        )
        .await
        .assert_error(422, "invalid_field", Some("reseller_id"));
        app.post("/api/v1/tenants", &op, with("colour", json!("red")))
            .await
            .assert_error(422, "unknown_field", Some("colour"));
        app.post(
            "/api/v1/tenants",
            &op,
            json!({ "name": "Acme", "slug": "acme" }),
        )
        .await
        .assert_error(422, "missing_field", Some("sip_domain"));

        let broken = axum::http::Request::post("/api/v1/tenants")
            .header("authorization", format!("Bearer {op}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{\"name\": "))
            .unwrap();
        app.send(broken)
            .await
            .assert_error(400, "malformed_json", None);
        let not_json = axum::http::Request::post("/api/v1/tenants")
            .header("authorization", format!("Bearer {op}"))
            .body(axum::body::Body::from(good.to_string()))
            .unwrap();
        app.send(not_json)
            .await
            .assert_error(415, "unsupported_media_type", None);

        app.post("/api/v1/tenants", &op, good.clone())
            .await
            .expect(201);
        app.post(
            "/api/v1/tenants",
            &op,
            with("sip_domain", json!("other.example.com")),
        )
        .await
        .assert_error(409, "conflict", Some("slug"));
        app.post("/api/v1/tenants", &op, with("slug", json!("other")))
            .await
            .assert_error(409, "conflict", Some("sip_domain"));
        app.patch(
            "/api/v1/tenants/acme",
            &op,
            json!({ "sip_domain": "bad domain" }),
        )
        .await
        .assert_error(422, "invalid_field", Some("sip_domain"));
        app.patch("/api/v1/tenants/acme", &op, json!({ "slug": "renamed" }))
            .await
            .assert_error(422, "unknown_field", Some("slug"));
    })
    .await;
}

#[tokio::test]
async fn resellers_see_and_make_only_their_tenants() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let (north, north_token) = app.reseller("North Telecom").await;
        let (_south, south_token) = app.reseller("South Telecom").await;
        app.tenant("own-direct", None).await;

        // A reseller's new tenant is its own even when it does not say so.
        let made = app
            .post("/api/v1/tenants", &north_token, json!({ "name": "Nco", "slug": "nco", "sip_domain": "nco.example.com" }))
            .await
            .expect(201);
        assert_eq!(made["reseller_id"], north.as_str());
        app.tenant("north-two", Some(&north)).await;
        app.post(
            "/api/v1/tenants",
            &south_token,
            json!({ "name": "X", "slug": "sx", "sip_domain": "sx.example.com", "reseller_id": north }),
        )
        .await
        .assert_error(422, "invalid_field", Some("reseller_id"));

        let seen = app.get("/api/v1/tenants", &north_token).await.expect(200);
        let slugs: Vec<_> = seen.as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_owned()).collect();
        assert_eq!(slugs, ["nco", "north-two"]);
        assert_eq!(app.get("/api/v1/tenants", &south_token).await.expect(200), json!([]));
        app.get("/api/v1/tenants/nco", &south_token).await.assert_error(404, "not_found", None);
        app.get("/api/v1/tenants/own-direct", &north_token).await.assert_error(404, "not_found", None);
        app.get("/api/v1/tenants/nco", &north_token).await.expect(200);
        app.patch("/api/v1/tenants/nco", &north_token, json!({ "status": "suspended" })).await.expect(200);
        assert_eq!(app.delete("/api/v1/tenants/nco", &north_token).await.status.as_u16(), 204);

        // Reseller listing shows only itself; customers see none.
        let resellers = app.get("/api/v1/resellers", &north_token).await.expect(200);
        assert_eq!(resellers.as_array().unwrap().len(), 1);
        assert_eq!(resellers[0]["id"], north.as_str());
        assert_eq!(app.get("/api/v1/resellers", &op).await.expect(200).as_array().unwrap().len(), 2);
        app.post("/api/v1/resellers", &north_token, json!({ "name": "Rogue" })).await.assert_error(403, "forbidden", None);
    })
    .await;
}

#[tokio::test]
async fn customer_admins_manage_only_their_tenant() {
    on_both(|app| async move {
        app.tenant("acme", None).await;
        let admin = app.admin_token("acme").await;
        let seen = app.get("/api/v1/tenants", &admin).await.expect(200);
        assert_eq!(seen.as_array().unwrap().len(), 1);
        app.post(
            "/api/v1/tenants",
            &admin,
            json!({ "name": "N", "slug": "new", "sip_domain": "new.example.com" }),
        )
        .await
        .assert_error(403, "forbidden", None);
        app.patch(
            "/api/v1/tenants/acme",
            &admin,
            json!({ "status": "active" }),
        )
        .await
        .assert_error(403, "forbidden", None);
        assert_eq!(
            app.patch(
                "/api/v1/tenants/acme",
                &admin,
                json!({ "name": "Acme Two" })
            )
            .await
            .expect(200)["name"],
            "Acme Two"
        );
        app.delete("/api/v1/tenants/acme", &admin)
            .await
            .assert_error(403, "forbidden", None);
        app.get("/api/v1/resellers", &admin)
            .await
            .assert_error(403, "forbidden", None);
        app.get("/api/v1/events", &admin)
            .await
            .assert_error(403, "forbidden", None);
        let no_token = app.call(Method::GET, "/api/v1/tenants", None, None).await;
        no_token.assert_error(401, "unauthenticated", None);
    })
    .await;
}

#[tokio::test]
async fn resellers_crud_and_bad_fields() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let made = app
            .post("/api/v1/resellers", &op, json!({ "name": "Telco" }))
            .await
            .expect(201);
        assert_eq!(made["name"], "Telco");
        app.post("/api/v1/resellers", &op, json!({ "name": "Telco" }))
            .await
            .assert_error(409, "conflict", Some("name"));
        app.post("/api/v1/resellers", &op, json!({ "name": "bad\u{7}name" }))
            .await
            .assert_error(422, "invalid_field", Some("name"));
        app.post("/api/v1/resellers", &op, json!({}))
            .await
            .assert_error(422, "missing_field", Some("name"));
        let listed = app.get("/api/v1/resellers", &op).await.expect(200);
        assert_eq!(listed[0]["id"], made["id"]);
    })
    .await;
}
