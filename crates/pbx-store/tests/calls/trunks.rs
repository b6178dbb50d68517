//! Trunks with encrypted carrier passwords, routes, tenant calling settings.

use pbx_domain::{Actor, E164, RouteTrunk, Transport, TrunkMode, parse_network};
use pbx_store::{Owner, SecretKey, StoreError, TrunkSpec};
use sqlx::Row;

use crate::support::{on_both, tenant};

fn spec(name: &str) -> TrunkSpec {
    TrunkSpec {
        name: name.into(),
        host: "sip.carrier.example".into(),
        port: 5060,
        transport: Transport::Udp,
        mode: TrunkMode::Digest,
        auth_username: Some("acct-42".into()),
        auth_password: Some("carrier-secret-42".into()),
        auth_realm: None,
        register_user: None,
        register: true,
        register_expires_secs: 600,
        caller_identity: pbx_domain::CallerIdentity::Pai,
        inbound_networks: vec![parse_network("192.0.2.0/24").unwrap()],
        priority: 10,
        enabled: true,
    }
}

#[tokio::test]
async fn trunks_routes_and_settings() {
    on_both(|db| async move {
        let store = db.open().await;
        let key = SecretKey::from_bytes([9; 32]);
        let (acme, scope) = tenant(&store, "acme").await;
        let (beta, beta_scope) = tenant(&store, "beta").await;
        let admin = Actor::CustomerAdmin(acme.id);
        let trunks = store.trunks();

        // Operator trunks are the operator's.
        let refused = trunks
            .create(&admin, Owner::Operator, &spec("op"), &key)
            .await;
        assert!(matches!(refused, Err(StoreError::Forbidden { .. })));
        let operator = trunks
            .create(&Actor::Operator, Owner::Operator, &spec("op"), &key)
            .await
            .unwrap();
        assert_eq!(operator.tenant_id, None);
        assert!(operator.has_password);
        let own = trunks
            .create(&admin, Owner::Tenant(&scope), &spec("own"), &key)
            .await
            .unwrap();
        assert_eq!(own.tenant_id, Some(acme.id));
        // Names unique per owner, free across owners.
        assert!(matches!(
            trunks
                .create(&admin, Owner::Tenant(&scope), &spec("own"), &key)
                .await,
            Err(StoreError::Conflict { what: "trunk name" })
        ));
        let beta_admin = Actor::CustomerAdmin(beta.id);
        let beta_trunk = trunks
            .create(&beta_admin, Owner::Tenant(&beta_scope), &spec("own"), &key)
            .await
            .unwrap();
        // A registering trunk needs credentials.
        let mut no_auth = spec("noauth");
        no_auth.auth_password = None;
        assert!(
            trunks
                .create(&admin, Owner::Tenant(&scope), &no_auth, &key)
                .await
                .is_err()
        );

        // The password is not in the database in clear, and decrypts with the key only.
        let stored: String = sqlx::query("SELECT auth_password_enc FROM trunks WHERE id = $1")
            .bind(own.id.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("auth_password_enc");
        assert!(!stored.contains("carrier-secret"));
        let loaded = trunks.load_all_with_auth(&key).await.unwrap();
        assert_eq!(loaded.len(), 3);
        assert!(
            loaded
                .iter()
                .all(|(_, auth)| auth.as_ref().unwrap().password == "carrier-secret-42")
        );
        let wrong_key = trunks
            .load_all_with_auth(&SecretKey::from_bytes([1; 32]))
            .await
            .unwrap();
        assert!(wrong_key.iter().all(|(_, auth)| auth.is_none()));

        // Update without a password keeps it; scopes do not cross.
        let mut changed = spec("own-renamed");
        changed.auth_password = None;
        changed.port = 5080;
        let updated = trunks
            .update(&admin, Owner::Tenant(&scope), own.id, &changed, &key)
            .await
            .unwrap();
        assert_eq!((updated.name.as_str(), updated.port), ("own-renamed", 5080));
        let loaded = trunks.load_all_with_auth(&key).await.unwrap();
        let (_, auth) = loaded.iter().find(|(t, _)| t.id == own.id).unwrap();
        assert_eq!(auth.as_ref().unwrap().password, "carrier-secret-42");
        assert!(
            trunks
                .get(&admin, Owner::Tenant(&scope), beta_trunk.id)
                .await
                .is_err()
        );
        assert!(
            trunks
                .update(&admin, Owner::Tenant(&scope), beta_trunk.id, &changed, &key)
                .await
                .is_err()
        );
        assert_eq!(
            trunks
                .list(&admin, Owner::Tenant(&scope))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            trunks
                .list(&Actor::Operator, Owner::Operator)
                .await
                .unwrap()
                .len(),
            1
        );

        // Routes: own and operator trunks allowed, another tenant's refused.
        let routes = store.routes();
        let entries = [
            RouteTrunk {
                trunk_id: own.id,
                priority: None,
            },
            RouteTrunk {
                trunk_id: operator.id,
                priority: Some(50),
            },
        ];
        let route = routes
            .create(&admin, Owner::Tenant(&scope), "316", &entries, "mobiles")
            .await
            .unwrap();
        assert_eq!(route.trunks, entries.to_vec());
        let foreign = [RouteTrunk {
            trunk_id: beta_trunk.id,
            priority: None,
        }];
        assert!(matches!(
            routes
                .create(&admin, Owner::Tenant(&scope), "49", &foreign, "")
                .await,
            Err(StoreError::InvalidReference { what: "trunk" })
        ));
        assert!(matches!(
            routes
                .create(&admin, Owner::Tenant(&scope), "316", &entries, "")
                .await,
            Err(StoreError::Conflict {
                what: "route prefix"
            })
        ));
        let default_route = routes
            .create(
                &Actor::Operator,
                Owner::Operator,
                "",
                &entries[1..],
                "default",
            )
            .await
            .unwrap();
        assert_eq!(routes.load_all().await.unwrap().len(), 2);
        let moved = routes
            .update(
                &admin,
                Owner::Tenant(&scope),
                route.id,
                "3161",
                &entries[..1],
                "",
            )
            .await
            .unwrap();
        assert_eq!(moved.prefix, "3161");
        // Deleting a trunk takes it out of routes.
        trunks
            .delete(&Actor::Operator, Owner::Operator, operator.id)
            .await
            .unwrap();
        let after = routes
            .get(&Actor::Operator, Owner::Operator, default_route.id)
            .await
            .unwrap();
        assert!(after.trunks.is_empty());
        routes
            .delete(&admin, Owner::Tenant(&scope), route.id)
            .await
            .unwrap();
        assert!(
            routes
                .get(&admin, Owner::Tenant(&scope), route.id)
                .await
                .is_err()
        );

        // Calling settings: NL default, then set.
        let settings = trunks.settings(&scope).await.unwrap();
        assert_eq!(
            (settings.country.as_str(), settings.main_number),
            ("NL", None)
        );
        let main = E164::parse("+31201110000").unwrap();
        let set = trunks
            .set_settings(&scope, "de", Some(&main))
            .await
            .unwrap();
        assert_eq!(set.country, "DE");
        assert_eq!(set.main_number, Some(main.clone()));
        let again = trunks.set_settings(&scope, "NL", None).await.unwrap();
        assert_eq!(again.main_number, None);
        assert_eq!(trunks.load_all_settings().await.unwrap().len(), 1);
        db
    })
    .await;
}
