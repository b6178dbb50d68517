//! Registration bindings: upsert by key, scoping, and surviving a restart.

use pbx_domain::{Actor, BindingRecord, DeviceKind, Flow, NewDevice, PushParams, Transport};
use pbx_store::{Store, StoreError};

use crate::support::{on_both, tenant, user};

fn record(
    scope: &pbx_store::TenantScope,
    user: pbx_domain::UserId,
    contact: &str,
    expires_at_ms: i64,
) -> BindingRecord {
    BindingRecord {
        tenant_id: scope.tenant_id(),
        user_id: user,
        device_id: None,
        aor: "sip:201@acme.pbx.example.com".into(),
        contact_uri: contact.into(),
        instance_id: None,
        reg_id: None,
        path: vec![],
        push: None,
        expires_at_ms,
        q_milli: None,
        call_id: "a84b4c76e66710@pc33".into(),
        cseq: 1,
        user_agent: None,
        flow: Flow {
            transport: Transport::Udp,
            source: "203.0.113.5:5060".parse().unwrap(),
            local: "198.51.100.1:5060".parse().unwrap(),
            connection_id: None,
            node_id: "node-a".into(),
        },
        sip_alg_detected: false,
        sip_alg_reason: None,
    }
}

#[tokio::test]
async fn bindings_survive_a_restart() {
    on_both(|db| async move {
        let far_future = 4_000_000_000_000;
        let (expected, scope) = {
            let store = db.open().await;
            let (_, scope) = tenant(&store, "acme").await;
            let ann = user(&store, &scope, "201").await;
            let app = store
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
            let mut full = record(
                &scope,
                ann.id,
                "<sip:201@[2001:db8::5]:50600;transport=tls;pn-provider=apns>",
                far_future,
            );
            full.device_id = Some(app.id);
            full.instance_id = Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".into());
            full.reg_id = Some(1);
            full.path = vec![
                "<sip:edge1.example.com;lr;ob>".into(),
                "<sip:edge2.example.com;lr>".into(),
            ];
            full.push = Some(PushParams {
                provider: "apns".into(),
                prid: "ZTY4ZDJlMzODE1NmUgKi0K".into(),
                param: Some("ABCD1234.com.example.voip".into()),
            });
            full.q_milli = Some(700);
            full.cseq = 4_000_000_000;
            full.user_agent = Some("Acme Softphone 3.1".into());
            full.flow = Flow {
                transport: Transport::Tls,
                source: "[2001:db8::5]:50600".parse().unwrap(),
                local: "[2001:db8::1]:5061".parse().unwrap(),
                connection_id: Some("conn-17".into()),
                node_id: "node-a".into(),
            };
            full.sip_alg_detected = true;
            full.sip_alg_reason = Some("Via rewritten to private address".into());
            let first = store.bindings().upsert(&scope, &full).await.unwrap();
            assert_eq!(first.record, full);

            // A refresh with the same (instance, reg-id) replaces it and keeps its id.
            full.cseq += 1;
            full.flow.source = "[2001:db8::5]:50601".parse().unwrap();
            let refreshed = store.bindings().upsert(&scope, &full).await.unwrap();
            assert_eq!(refreshed.id, first.id);
            assert_eq!(refreshed.created_at_ms, first.created_at_ms);
            assert_eq!(refreshed.record.cseq, 4_000_000_001);

            let plain = record(&scope, ann.id, "<sip:201@203.0.113.5:5060>", far_future);
            store.bindings().upsert(&scope, &plain).await.unwrap();
            let expired = record(&scope, ann.id, "<sip:201@203.0.113.9:5060>", 1_000);
            store.bindings().upsert(&scope, &expired).await.unwrap();
            assert_eq!(
                store
                    .bindings()
                    .list_for_aor(&scope, &full.aor)
                    .await
                    .unwrap()
                    .len(),
                3
            );
            store.close().await;
            (vec![refreshed.record, plain], scope)
        };

        // Reopen: the active bindings are all there, field for field.
        let store = db.open().await;
        let active = store
            .bindings()
            .load_active(&Actor::System, 2_000, None)
            .await
            .unwrap();
        let mut got: Vec<_> = active.into_iter().map(|binding| binding.record).collect();
        let mut want = expected;
        got.sort_by(|a, b| a.contact_uri.cmp(&b.contact_uri));
        want.sort_by(|a, b| a.contact_uri.cmp(&b.contact_uri));
        assert_eq!(got, want);
        assert_eq!(
            store
                .bindings()
                .load_active(&Actor::System, 2_000, Some("node-b"))
                .await
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            store
                .bindings()
                .load_active(&Actor::System, 2_000, Some("node-a"))
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .bindings()
                .purge_expired(&Actor::System, 2_000)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.bindings().list(&scope).await.unwrap().len(), 2);
        assert!(matches!(
            store
                .bindings()
                .load_active(&Actor::CustomerAdmin(scope.tenant_id()), 0, None)
                .await,
            Err(StoreError::Forbidden { .. })
        ));
        db
    })
    .await;
}

#[tokio::test]
async fn bindings_are_tenant_scoped_and_clearable() {
    on_both(|db| async move {
        let store: Store = db.open().await;
        let (_, acme) = tenant(&store, "acme").await;
        let (_, beta) = tenant(&store, "beta").await;
        let ann = user(&store, &acme, "201").await;
        let binding = store
            .bindings()
            .upsert(&acme, &record(&acme, ann.id, "<sip:a@192.0.2.1>", i64::MAX))
            .await
            .unwrap();
        store
            .bindings()
            .upsert(&acme, &record(&acme, ann.id, "<sip:b@192.0.2.2>", i64::MAX))
            .await
            .unwrap();

        // A record of tenant A cannot be written with B's scope, nor read or removed.
        let error = store
            .bindings()
            .upsert(&beta, &record(&acme, ann.id, "<sip:c@192.0.2.3>", i64::MAX))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Forbidden { .. }));
        let mut forged = record(&beta, ann.id, "<sip:c@192.0.2.3>", i64::MAX);
        forged.tenant_id = beta.tenant_id();
        assert!(matches!(
            store.bindings().upsert(&beta, &forged).await,
            Err(StoreError::InvalidReference { .. })
        ));
        assert!(store.bindings().list(&beta).await.unwrap().is_empty());
        assert!(matches!(
            store.bindings().remove(&beta, binding.id).await,
            Err(StoreError::NotFound { .. })
        ));

        store.bindings().remove(&acme, binding.id).await.unwrap();
        assert_eq!(
            store
                .bindings()
                .remove_for_aor(&acme, "sip:201@acme.pbx.example.com")
                .await
                .unwrap(),
            1
        );
        assert!(store.bindings().list(&acme).await.unwrap().is_empty());
        db
    })
    .await;
}
