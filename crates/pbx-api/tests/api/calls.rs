//! Trunks, routes, calling settings and CDRs through the API.

use pbx_api::model::CallsApi;
use pbx_domain::{
    CallDirection, CallEnd, CallRecord, CallStart, CdrId, Disposition, HangupSide, TenantId,
};
use pbx_store::{SecretKey, Store};
use serde_json::{Value, json};

use crate::support::{App, on_both};

/// The app with a trunk password key, as the server runs it.
fn with_key(app: &App) -> App {
    let state = app.state.clone().with_calls(CallsApi {
        trunk_key: Some(SecretKey::from_bytes([5; 32])),
        trunk_status: None,
    });
    App {
        router: pbx_api::router(state.clone()),
        state,
        control: app.control.clone(),
        operator: app.operator.clone(),
        url: app.url.clone(),
    }
}

fn trunk_body(name: &str) -> Value {
    json!({
        "name": name,
        "host": "sip.carrier.example",
        "auth_username": "acct-1",
        "auth_password": "carrier-secret",
        "register": true,
        "register_expires_secs": 300,
        "inbound_networks": ["192.0.2.0/28", "2001:db8::1"],
        "priority": 10
    })
}

#[tokio::test]
async fn trunk_and_route_crud_with_scopes() {
    on_both(|app| async move {
        let app = with_key(&app);
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.tenant("beta", None).await;
        let admin = app.admin_token("acme").await;

        // Operator trunks: operator only; the password never comes back.
        app.post("/api/v1/trunks", &admin, trunk_body("x")).await.assert_error(403, "forbidden", None);
        let operator_trunk = app.post("/api/v1/trunks", &op, trunk_body("carrier-a")).await.expect(201);
        assert_eq!(operator_trunk["has_password"], true);
        assert_eq!(operator_trunk["transport"], "udp");
        assert_eq!(operator_trunk["port"], 5060);
        assert_eq!(operator_trunk["inbound_networks"], json!(["192.0.2.0/28", "2001:db8::1/128"]));
        assert!(!operator_trunk.to_string().contains("carrier-secret"));
        let op_id = operator_trunk["id"].as_str().unwrap().to_owned();
        app.get(&format!("/api/v1/trunks/{op_id}"), &op).await.expect(200);

        // Field errors name the field.
        let mut bad = trunk_body("bad");
        bad["inbound_networks"] = json!(["10.0.0.0/8", "nonsense"]);
        app.post("/api/v1/tenants/acme/trunks", &admin, bad).await.assert_error(422, "invalid_field", Some("inbound_networks.1"));
        let mut bad = trunk_body("bad");
        bad["host"] = json!("a host");
        app.post("/api/v1/tenants/acme/trunks", &admin, bad).await.assert_error(422, "invalid_field", Some("host"));
        let mut bad = trunk_body("bad");
        bad["transport"] = json!("ws");
        app.post("/api/v1/tenants/acme/trunks", &admin, bad).await.assert_error(422, "invalid_field", Some("transport"));
        let mut bad = trunk_body("bad");
        bad.as_object_mut().unwrap().remove("auth_password");
        app.post("/api/v1/tenants/acme/trunks", &admin, bad).await.assert_error(422, "invalid_field", Some("auth_password"));

        // Tenant trunks: own scope only; names unique per owner.
        let own = app.post("/api/v1/tenants/acme/trunks", &admin, trunk_body("carrier-a")).await.expect(201);
        let own_id = own["id"].as_str().unwrap().to_owned();
        app.post("/api/v1/tenants/acme/trunks", &admin, trunk_body("carrier-a")).await.assert_error(409, "conflict", None);
        let beta = app.post("/api/v1/tenants/beta/trunks", &op, trunk_body("carrier-b")).await.expect(201);
        let beta_id = beta["id"].as_str().unwrap().to_owned();
        app.get(&format!("/api/v1/tenants/acme/trunks/{beta_id}"), &admin).await.assert_error(404, "not_found", None);
        app.get(&format!("/api/v1/tenants/beta/trunks/{beta_id}"), &admin).await.assert_error(404, "not_found", None);
        assert_eq!(app.get("/api/v1/tenants/acme/trunks", &admin).await.expect(200).as_array().unwrap().len(), 1);

        // PUT without a password keeps it.
        let mut change = trunk_body("carrier-a2");
        change.as_object_mut().unwrap().remove("auth_password");
        change["port"] = json!(5080);
        let changed = app.put(&format!("/api/v1/tenants/acme/trunks/{own_id}"), &admin, change).await.expect(200);
        assert_eq!((changed["name"].clone(), changed["port"].clone(), changed["has_password"].clone()), (json!("carrier-a2"), json!(5080), json!(true)));

        // Routes: the tenant's own and operator trunks; not another tenant's.
        let route = app
            .post("/api/v1/tenants/acme/routes", &admin, json!({"prefix": "+316", "trunks": [{"trunk_id": own_id}, {"trunk_id": op_id, "priority": 50}], "description": "mobiles"}))
            .await
            .expect(201);
        assert_eq!(route["prefix"], "316");
        app.post("/api/v1/tenants/acme/routes", &admin, json!({"prefix": "49", "trunks": [{"trunk_id": beta_id}]}))
            .await
            .assert_error(422, "invalid_field", Some("trunk"));
        app.post("/api/v1/tenants/acme/routes", &admin, json!({"prefix": "31x", "trunks": []}))
            .await
            .assert_error(422, "invalid_field", Some("prefix"));
        app.post("/api/v1/routes", &admin, json!({"prefix": "", "trunks": [{"trunk_id": op_id}]})).await.assert_error(403, "forbidden", None);
        let default_route = app.post("/api/v1/routes", &op, json!({"prefix": "", "trunks": [{"trunk_id": op_id}]})).await.expect(201);
        assert_eq!(app.get("/api/v1/routes", &op).await.expect(200).as_array().unwrap().len(), 1);
        let route_id = route["id"].as_str().unwrap();
        let moved = app
            .put(&format!("/api/v1/tenants/acme/routes/{route_id}"), &admin, json!({"prefix": "3161", "trunks": [{"trunk_id": own_id}]}))
            .await
            .expect(200);
        assert_eq!(moved["prefix"], "3161");

        // Deleting the operator trunk empties the default route.
        assert_eq!(app.delete(&format!("/api/v1/trunks/{op_id}"), &op).await.status.as_u16(), 204);
        let routes = app.get("/api/v1/routes", &op).await.expect(200);
        assert_eq!(routes[0]["id"], default_route["id"]);
        assert_eq!(routes[0]["trunks"], json!([]));
        assert_eq!(app.delete(&format!("/api/v1/tenants/acme/routes/{route_id}"), &admin).await.status.as_u16(), 204);

        // Calling settings.
        let settings = app.get("/api/v1/tenants/acme/call-settings", &admin).await.expect(200);
        assert_eq!(settings, json!({"country": "NL", "main_number": null}));
        let put = app
            .put("/api/v1/tenants/acme/call-settings", &admin, json!({"country": "de", "main_number": "+49 30 1234567"}))
            .await
            .expect(200);
        assert_eq!(put, json!({"country": "DE", "main_number": "+49301234567"}));
        app.put("/api/v1/tenants/acme/call-settings", &admin, json!({"country": "XX"}))
            .await
            .assert_error(422, "invalid_field", Some("country"));

        let kinds = app.event_kinds("acme").await;
        assert!(kinds.contains(&"trunk.created".to_owned()) && kinds.contains(&"route.deleted".to_owned()));
    })
    .await;
}

#[tokio::test]
async fn trunk_password_needs_a_key() {
    on_both(|app| async move {
        app.post("/api/v1/trunks", &app.operator, trunk_body("carrier-a"))
            .await
            .assert_error(422, "invalid_field", Some("auth_password"));
        let mut peering = trunk_body("peer");
        peering["mode"] = json!("ip_peering");
        peering["register"] = json!(false);
        peering.as_object_mut().unwrap().remove("auth_password");
        app.post("/api/v1/trunks", &app.operator, peering)
            .await
            .expect(201);
    })
    .await;
}

fn record(tenant: TenantId, start_ms: i64, callee: &str, disposition: Disposition) -> CallRecord {
    let mut record = CallRecord::open(CallStart {
        id: CdrId::from_parts(u64::try_from(start_ms).unwrap(), &rand::random()),
        tenant_id: tenant,
        user_id: None,
        device_id: None,
        direction: CallDirection::Outbound,
        caller: "201".into(),
        callee_dialled: callee.into(),
        callee: format!("+31{}", callee.trim_start_matches('0')),
        trunk_id: None,
        sip_call_id: format!("{start_ms}@t"),
        node_id: "node-1".into(),
        start_ms,
    });
    if disposition == Disposition::Answered {
        record.answered(start_ms + 1_000);
    }
    record.close(CallEnd {
        end_ms: start_ms + 31_000,
        disposition,
        sip_status: Some(200),
        hangup_cause: None,
        hangup_side: HangupSide::Callee,
    });
    record
}

#[tokio::test]
async fn cdrs_listed_filtered_and_paged_per_tenant() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let acme: TenantId = app.tenant("acme", None).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let beta: TenantId = app.tenant("beta", None).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let store: &Store = &app.state.store;
        for i in 0..7_i64 {
            let disposition = if i % 2 == 0 {
                Disposition::Answered
            } else {
                Disposition::Busy
            };
            store
                .cdrs()
                .upsert(&record(
                    acme,
                    1_000_000 + i * 60_000,
                    &format!("06{:08}", i),
                    disposition,
                ))
                .await
                .unwrap();
        }
        store
            .cdrs()
            .upsert(&record(
                beta,
                1_000_000,
                "0611111111",
                Disposition::Answered,
            ))
            .await
            .unwrap();

        let page = app
            .get("/api/v1/tenants/acme/cdrs?limit=3", &op)
            .await
            .expect(200);
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
        assert_eq!(page["items"][0]["start_ms"], 1_360_000);
        let mut seen = 3;
        let mut cursor = page["next_cursor"].as_str().unwrap().to_owned();
        loop {
            let next = app
                .get(
                    &format!("/api/v1/tenants/acme/cdrs?limit=3&cursor={cursor}"),
                    &op,
                )
                .await
                .expect(200);
            seen += next["items"].as_array().unwrap().len();
            match next["next_cursor"].as_str() {
                Some(more) => cursor = more.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, 7);

        let answered = app
            .get("/api/v1/tenants/acme/cdrs?disposition=answered", &op)
            .await
            .expect(200);
        assert_eq!(answered["items"].as_array().unwrap().len(), 4);
        assert_eq!(answered["items"][0]["billable_secs"], 30);
        let ranged = app
            .get(
                "/api/v1/tenants/acme/cdrs?from=1060000&to=1180001&direction=outbound",
                &op,
            )
            .await
            .expect(200);
        assert_eq!(ranged["items"].as_array().unwrap().len(), 3);
        let number = app
            .get("/api/v1/tenants/acme/cdrs?number=0600000004", &op)
            .await
            .expect(200);
        assert_eq!(number["items"].as_array().unwrap().len(), 1);
        let one = number["items"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get(&format!("/api/v1/tenants/acme/cdrs/{one}"), &op)
                .await
                .expect(200)["callee"],
            "+31600000004"
        );

        // A call the fraud guard refused is filed as `blocked` and found by that filter.
        let mut refused = record(acme, 5_000_000, "09001234567", Disposition::Blocked);
        refused.sip_status = Some(403);
        store.cdrs().upsert(&refused).await.unwrap();
        let blocked = app
            .get("/api/v1/tenants/acme/cdrs?disposition=blocked", &op)
            .await
            .expect(200);
        let items = blocked["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{blocked}");
        assert_eq!(items[0]["disposition"], "blocked");
        assert_eq!(items[0]["sip_status"], 403);

        // Per tenant: beta's admin sees only beta's record, and not acme's by id.
        let beta_admin = app.admin_token("beta").await;
        let theirs = app
            .get("/api/v1/tenants/beta/cdrs", &beta_admin)
            .await
            .expect(200);
        assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
        app.get("/api/v1/tenants/acme/cdrs", &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        app.get(&format!("/api/v1/tenants/beta/cdrs/{one}"), &beta_admin)
            .await
            .assert_error(404, "not_found", None);

        // Bad parameters.
        app.get("/api/v1/tenants/acme/cdrs?direction=sideways", &op)
            .await
            .assert_error(400, "invalid_parameter", None);
        app.get("/api/v1/tenants/acme/cdrs?limit=0", &op)
            .await
            .assert_error(400, "invalid_parameter", None);
        app.get("/api/v1/tenants/acme/cdrs?cursor=zzz", &op)
            .await
            .assert_error(400, "invalid_parameter", None);
        app.get("/api/v1/tenants/acme/cdrs?user=999", &op)
            .await
            .assert_error(400, "invalid_parameter", None);
    })
    .await;
}

#[tokio::test]
async fn trunk_caller_identity_defaults_to_pai_is_validated_and_documented() {
    on_both(|app| async move {
        let app = with_key(&app);
        let op = app.operator.clone();
        // Default: today's behaviour (P-Asserted-Identity).
        let plain = app
            .post("/api/v1/trunks", &op, trunk_body("carrier-a"))
            .await
            .expect(201);
        assert_eq!(plain["caller_identity"], "pai");
        let mut body = trunk_body("carrier-b");
        body["caller_identity"] = json!("rpid");
        let rpid = app
            .post("/api/v1/trunks", &op, body.clone())
            .await
            .expect(201);
        assert_eq!(rpid["caller_identity"], "rpid");
        let id = rpid["id"].as_str().unwrap().to_owned();
        // Stored: read back, changed with PUT, read back again.
        assert_eq!(
            app.get(&format!("/api/v1/trunks/{id}"), &op)
                .await
                .expect(200)["caller_identity"],
            "rpid"
        );
        body["caller_identity"] = json!("from");
        let changed = app
            .put(&format!("/api/v1/trunks/{id}"), &op, body.clone())
            .await
            .expect(200);
        assert_eq!(changed["caller_identity"], "from");
        assert_eq!(
            app.get(&format!("/api/v1/trunks/{id}"), &op)
                .await
                .expect(200)["caller_identity"],
            "from"
        );
        // A PUT without the field goes back to the default.
        body.as_object_mut().unwrap().remove("caller_identity");
        let reset = app
            .put(&format!("/api/v1/trunks/{id}"), &op, body.clone())
            .await
            .expect(200);
        assert_eq!(reset["caller_identity"], "pai");
        // Bad values name the field, on create and on update; nothing changes.
        for bad in [json!("PAI"), json!("p-asserted-identity"), json!("")] {
            let mut wrong = trunk_body("carrier-c");
            wrong["caller_identity"] = bad.clone();
            app.post("/api/v1/trunks", &op, wrong.clone())
                .await
                .assert_error(422, "invalid_field", Some("caller_identity"));
            app.put(&format!("/api/v1/trunks/{id}"), &op, wrong)
                .await
                .assert_error(422, "invalid_field", Some("caller_identity"));
        }
        assert_eq!(
            app.get(&format!("/api/v1/trunks/{id}"), &op)
                .await
                .expect(200)["caller_identity"],
            "pai"
        );
        // In the OpenAPI document: request and view.
        let document = app
            .call(axum::http::Method::GET, "/api/v1/openapi.json", None, None)
            .await
            .body;
        for schema in ["TrunkRequest", "TrunkView"] {
            let properties = &document["components"]["schemas"][schema]["properties"];
            assert!(
                properties["caller_identity"].is_object(),
                "{schema}: {properties}"
            );
        }
        let described =
            document["components"]["schemas"]["TrunkRequest"]["properties"]["caller_identity"]
                .to_string();
        assert!(
            described.contains("rpid") && described.contains("from"),
            "{described}"
        );
    })
    .await;
}
