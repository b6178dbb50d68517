//! Fraud-guard persistence: the state snapshot per node and the security event log, on both
//! engines.

use pbx_domain::Actor;

use crate::support::{on_both, tenant};

#[tokio::test]
async fn guard_state_is_saved_replaced_and_loaded() {
    on_both(|db| async move {
        let store = db.open().await;
        let security = store.security();
        assert_eq!(security.load_state("node-1").await.unwrap(), None);
        security
            .save_state("node-1", 1_000, r#"{"bans":[1]}"#)
            .await
            .unwrap();
        security
            .save_state("node-1", 2_000, r#"{"bans":[1,2]}"#)
            .await
            .unwrap();
        security.save_state("node-2", 1_500, "{}").await.unwrap();
        assert_eq!(
            security.load_state("node-1").await.unwrap(),
            Some((2_000, r#"{"bans":[1,2]}"#.to_owned()))
        );
        // A reopened store (a restart) still has it.
        store.close().await;
        let store = db.open().await;
        assert_eq!(
            store.security().load_state("node-2").await.unwrap(),
            Some((1_500, "{}".to_owned()))
        );
        store.close().await;
        db
    })
    .await;
}

#[tokio::test]
async fn security_events_are_listed_per_tenant_and_type() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, acme_scope) = tenant(&store, "acme").await;
        let (_, globex_scope) = tenant(&store, "globex").await;
        let security = store.security();
        let ban = serde_json::json!({"type": "source_banned", "source": {"family": "v4", "addr": "192.0.2.1"}});
        security.append(10, Some(acme.id), "source_banned", &ban).await.unwrap();
        security
            .append(20, Some(acme.id), "whitelist_rejected", &serde_json::json!({}))
            .await
            .unwrap();
        security.append(30, None, "source_banned", &ban).await.unwrap();
        let all = security.list(&acme_scope, None, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            vec!["whitelist_rejected", "source_banned"],
            "newest first, only acme's"
        );
        assert_eq!(all[1].payload, ban);
        let bans = security.list(&acme_scope, Some("source_banned"), 100).await.unwrap();
        assert_eq!(bans.len(), 1);
        assert!(security.list(&globex_scope, None, 100).await.unwrap().is_empty());
        let platform = security
            .list_all(&Actor::Operator, Some("source_banned"), 100)
            .await
            .unwrap();
        assert_eq!(platform.len(), 2);
        assert_eq!(security.list_all(&Actor::Operator, None, 1).await.unwrap().len(), 1);
        assert!(
            security
                .list_all(&Actor::CustomerAdmin(acme.id), None, 10)
                .await
                .is_err()
        );
        store.close().await;
        db
    })
    .await;
}

#[tokio::test]
async fn usage_limit_overrides_are_scoped_replaced_and_go_with_their_user() {
    on_both(|db| async move {
        let store = db.open().await;
        let (acme, acme_scope) = tenant(&store, "acme").await;
        let (_, globex_scope) = tenant(&store, "globex").await;
        let ann = crate::support::user(&store, &acme_scope, "201").await;
        let overrides = store.limit_overrides();
        assert_eq!(overrides.tenant(&acme_scope).await.unwrap(), None);
        assert_eq!(overrides.user(&acme_scope, ann.id).await.unwrap(), None);

        let two = pbx_store::UsageLimits {
            calls_per_minute: Some(2),
            max_concurrent_calls: Some(0),
            cost_per_day_millicents: Some(u64::MAX),
            ..Default::default()
        };
        let stored = overrides.set_user(&acme_scope, ann.id, &two).await.unwrap();
        assert_eq!(stored.user_id, Some(ann.id));
        let read = overrides.user(&acme_scope, ann.id).await.unwrap().unwrap();
        assert_eq!(read.limits.calls_per_minute, Some(2));
        assert_eq!(
            read.limits.max_concurrent_calls,
            Some(0),
            "0 (unlimited) kept"
        );
        assert_eq!(read.limits.calls_per_hour, None, "default kept");
        assert_eq!(
            read.limits.cost_per_day_millicents,
            Some(i64::MAX as u64),
            "stored at most 2^63 - 1"
        );
        // Replaced, not added to.
        let five = pbx_store::UsageLimits {
            calls_per_minute: Some(5),
            ..Default::default()
        };
        overrides
            .set_user(&acme_scope, ann.id, &five)
            .await
            .unwrap();
        let read = overrides.user(&acme_scope, ann.id).await.unwrap().unwrap();
        assert_eq!(read.limits, five);
        overrides.set_tenant(&acme_scope, &two).await.unwrap();

        // Another tenant's scope neither sees nor attaches to acme's user.
        assert_eq!(overrides.user(&globex_scope, ann.id).await.unwrap(), None);
        assert_eq!(overrides.tenant(&globex_scope).await.unwrap(), None);
        assert!(matches!(
            overrides.set_user(&globex_scope, ann.id, &five).await,
            Err(pbx_store::StoreError::InvalidReference { .. })
        ));
        assert!(!overrides.remove_user(&globex_scope, ann.id).await.unwrap());

        let all = overrides.all(&Actor::System).await.unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].user_id, None, "tenants first");
        assert_eq!(all[0].tenant_id, acme.id);
        assert!(overrides.all(&Actor::CustomerAdmin(acme.id)).await.is_err());

        // Deleting the user deletes its override.
        store.users().delete(&acme_scope, ann.id).await.unwrap();
        assert_eq!(overrides.all(&Actor::System).await.unwrap().len(), 1);
        assert!(overrides.remove_tenant(&acme_scope).await.unwrap());
        assert!(!overrides.remove_tenant(&acme_scope).await.unwrap());
        store.close().await;
        db
    })
    .await;
}
