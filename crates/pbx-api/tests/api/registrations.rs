//! Registrations: list and clear per tenant and per user; the live registrar is told.

use pbx_domain::{BindingRecord, Flow, TenantId, Transport, UserId};
use pbx_store::Store;

use crate::support::{App, on_both};

/// Persists a binding the way the registrar does.
async fn register(
    app: &App,
    tenant: &str,
    user: &serde_json::Value,
    contact: &str,
    expires_in_ms: i64,
) {
    let tenant: TenantId = tenant.parse().unwrap();
    let user_id: UserId = user["id"].as_str().unwrap().parse().unwrap();
    let record = BindingRecord {
        tenant_id: tenant,
        user_id,
        device_id: None,
        aor: format!(
            "sip:{}@acme.pbx.example.com",
            user["extension"].as_str().unwrap()
        ),
        contact_uri: contact.to_owned(),
        instance_id: None,
        reg_id: None,
        path: vec![],
        push: None,
        expires_at_ms: pbx_api::now_ms() + expires_in_ms,
        q_milli: None,
        call_id: format!("call-{contact}"),
        cseq: 1,
        user_agent: Some("Yealink SIP-T54W".into()),
        flow: Flow {
            transport: Transport::Udp,
            source: "192.0.2.10:5060".parse().unwrap(),
            local: "198.51.100.1:5060".parse().unwrap(),
            connection_id: None,
            node_id: "node-1".into(),
        },
        sip_alg_detected: false,
        sip_alg_reason: None,
    };
    app.state
        .store
        .bindings()
        .upsert(&Store::system_scope(tenant), &record)
        .await
        .expect("upsert binding");
}

#[tokio::test]
async fn registrations_list_and_clear_per_tenant_and_user() {
    on_both(|app| async move {
        let op = app.operator.clone();
        let acme = app.tenant("acme", None).await;
        let tenant = acme["id"].as_str().unwrap().to_owned();
        let ann = app.user("acme", "201").await;
        let bob = app.user("acme", "202").await;
        register(&app, &tenant, &ann, "sip:201@192.0.2.10:5060", 60_000).await;
        register(&app, &tenant, &ann, "sip:201@192.0.2.11:5060", 60_000).await;
        register(&app, &tenant, &bob, "sip:202@192.0.2.12:5060", 60_000).await;
        register(&app, &tenant, &bob, "sip:202@192.0.2.13:5060", -1_000).await;

        let all = app
            .get("/api/v1/tenants/acme/registrations", &op)
            .await
            .expect(200);
        assert_eq!(
            all.as_array().unwrap().len(),
            3,
            "expired bindings are not listed"
        );
        assert_eq!(all[0]["transport"], "udp");
        assert_eq!(all[0]["source"], "192.0.2.10:5060");
        assert_eq!(all[0]["user_agent"], "Yealink SIP-T54W");
        let anns = app
            .get("/api/v1/tenants/acme/users/201/registrations", &op)
            .await
            .expect(200);
        assert_eq!(anns.as_array().unwrap().len(), 2);
        assert!(
            anns.as_array()
                .unwrap()
                .iter()
                .all(|binding| binding["user_id"] == ann["id"])
        );

        // Clearing one user leaves the others.
        let cleared = app
            .delete("/api/v1/tenants/acme/users/201/registrations", &op)
            .await
            .expect(200);
        assert_eq!(cleared["cleared"], 2);
        assert_eq!(cleared["live_cleared"], 1, "the live registrar was told");
        assert_eq!(
            app.get("/api/v1/tenants/acme/users/201/registrations", &op)
                .await
                .expect(200),
            serde_json::json!([])
        );
        assert_eq!(
            app.get("/api/v1/tenants/acme/registrations", &op)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let ann_id: UserId = ann["id"].as_str().unwrap().parse().unwrap();
        let tenant_id: TenantId = tenant.parse().unwrap();
        assert_eq!(
            app.control.cleared.lock().unwrap().as_slice(),
            [(tenant_id, Some(ann_id))]
        );

        // A customer admin clears its whole tenant (the expired row goes too).
        let admin = app.admin_token("acme").await;
        let cleared = app
            .delete("/api/v1/tenants/acme/registrations", &admin)
            .await
            .expect(200);
        assert_eq!(cleared["cleared"], 2);
        assert_eq!(
            app.control.cleared.lock().unwrap().last(),
            Some(&(tenant_id, None))
        );
        assert_eq!(
            app.get("/api/v1/tenants/acme/registrations", &admin)
                .await
                .expect(200),
            serde_json::json!([])
        );
        app.get("/api/v1/tenants/acme/users/999/registrations", &op)
            .await
            .assert_error(404, "not_found", None);
        let kinds = app.event_kinds("acme").await;
        assert_eq!(
            kinds
                .iter()
                .filter(|kind| *kind == "registrations.cleared")
                .count(),
            2
        );
    })
    .await;
}
