//! Fraud guard: per-tenant and per-account usage-limit overrides
//! (`.../security/limits`) and "block this account now" (`POST .../security/blocks`), on
//! both engines: validated with errors naming the field, scoped to the tenant (another
//! tenant's user is 404), audited, stored across a restart, and handed to the live guard
//! (a recording stand-in here; the real guard is tested with SIPp in pbx-server's
//! `call_guard` tests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pbx_api::ops::security::{
    BanView, BlockView, EffectiveLimits, SecurityControl, ThrottleView, UsageLimits,
};
use pbx_domain::{TenantId, UserId};
use serde_json::{Value, json};

use crate::support::{App, on_both};

/// The platform defaults the stand-in reports (the configuration's defaults).
const ACCOUNT_DEFAULTS: EffectiveLimits = EffectiveLimits {
    max_concurrent_calls: Some(4),
    calls_per_minute: Some(10),
    calls_per_hour: Some(60),
    minutes_per_day: Some(600),
    cost_per_day_millicents: Some(5_000_000),
};
const TENANT_DEFAULTS: EffectiveLimits = EffectiveLimits {
    max_concurrent_calls: Some(30),
    calls_per_minute: Some(60),
    calls_per_hour: Some(600),
    minutes_per_day: Some(6_000),
    cost_per_day_millicents: Some(50_000_000),
};

/// A guard that records what the API installs.
#[derive(Debug, Default)]
struct RecordingGuard {
    limits: Mutex<HashMap<(TenantId, Option<UserId>), UsageLimits>>,
    blocked: Mutex<Vec<(TenantId, UserId)>>,
}

impl RecordingGuard {
    fn installed(&self, tenant: TenantId, user: Option<UserId>) -> Option<UsageLimits> {
        self.limits.lock().unwrap().get(&(tenant, user)).copied()
    }
}

fn over<T: Copy + PartialEq + Default>(set: Option<T>, default: Option<T>) -> Option<T> {
    match set {
        None => default,
        Some(value) if value == T::default() => None,
        Some(value) => Some(value),
    }
}

impl SecurityControl for RecordingGuard {
    fn bans(&self) -> Vec<BanView> {
        Vec::new()
    }
    fn ban(&self, _address: std::net::IpAddr) -> Option<BanView> {
        None
    }
    fn unban(&self, _source: &str) -> Option<bool> {
        Some(false)
    }
    fn throttles(&self) -> Vec<ThrottleView> {
        Vec::new()
    }
    fn unthrottle(&self, _user_name: &str) -> bool {
        false
    }
    fn blocks(&self) -> Vec<BlockView> {
        let blocked = self.blocked.lock().unwrap();
        blocked
            .iter()
            .map(|(tenant, user)| BlockView {
                user_id: user.as_uuid(),
                tenant_id: tenant.as_uuid(),
            })
            .collect()
    }
    fn lift_block(&self, tenant: TenantId, user: UserId) -> bool {
        let mut blocked = self.blocked.lock().unwrap();
        let before = blocked.len();
        blocked.retain(|entry| *entry != (tenant, user));
        blocked.len() < before
    }
    fn block(&self, tenant: TenantId, user: UserId) -> Option<bool> {
        let mut blocked = self.blocked.lock().unwrap();
        if blocked.contains(&(tenant, user)) {
            return Some(false);
        }
        blocked.push((tenant, user));
        Some(true)
    }
    fn set_limits(&self, tenant: TenantId, user: Option<UserId>, limits: Option<UsageLimits>) {
        let mut installed = self.limits.lock().unwrap();
        match limits {
            Some(limits) => installed.insert((tenant, user), limits),
            None => installed.remove(&(tenant, user)),
        };
    }
    fn effective_limits(&self, tenant: TenantId, user: Option<UserId>) -> Option<EffectiveLimits> {
        let defaults = self.default_limits(user.is_some())?;
        let set = self.installed(tenant, user).unwrap_or_default();
        Some(EffectiveLimits {
            max_concurrent_calls: over(set.max_concurrent_calls, defaults.max_concurrent_calls),
            calls_per_minute: over(set.calls_per_minute, defaults.calls_per_minute),
            calls_per_hour: over(set.calls_per_hour, defaults.calls_per_hour),
            minutes_per_day: over(set.minutes_per_day, defaults.minutes_per_day),
            cost_per_day_millicents: over(
                set.cost_per_day_millicents,
                defaults.cost_per_day_millicents,
            ),
        })
    }
    fn default_limits(&self, account: bool) -> Option<EffectiveLimits> {
        Some(if account {
            ACCOUNT_DEFAULTS
        } else {
            TENANT_DEFAULTS
        })
    }
    fn metrics_text(&self) -> String {
        String::new()
    }
    fn set_destination_exceptions(
        &self,
        _tenant: TenantId,
        _allow: Vec<String>,
        _block: Vec<String>,
    ) {
    }
}

fn with_guard(app: App) -> (App, Arc<RecordingGuard>) {
    let guard = Arc::new(RecordingGuard::default());
    (app.with_security(guard.clone()), guard)
}

fn id<T: std::str::FromStr>(value: &Value) -> T {
    let text = value["id"].as_str().expect("id");
    text.parse().ok().expect("an id")
}

/// The `limits` of a tenant or account without an override.
fn no_override() -> Value {
    json!({
        "max_concurrent_calls": null,
        "calls_per_minute": null,
        "calls_per_hour": null,
        "minutes_per_day": null,
        "cost_per_day_millicents": null,
    })
}

#[tokio::test]
async fn account_limits_are_validated_scoped_audited_live_and_stored() {
    on_both(|app| async move {
        let (app, guard) = with_guard(app);
        let op = app.operator.clone();
        let acme: TenantId = id(&app.tenant("acme", None).await);
        app.tenant("beta", None).await;
        let ann: UserId = id(&app.user("acme", "201").await);
        let bob: UserId = id(&app.user("beta", "301").await);
        let path = "/api/v1/tenants/acme/users/201/security/limits";

        // Never set: no override, the defaults in force.
        let fresh = app.get(path, &op).await.expect(200);
        assert_eq!(fresh["limits"], no_override());
        assert_eq!(fresh["updated_at_ms"], Value::Null);
        assert_eq!(fresh["user_id"], ann.to_string());
        assert_eq!(fresh["tenant_id"], acme.to_string());
        assert_eq!(fresh["effective"]["calls_per_minute"], 10);

        // Set: stored, installed in the live guard, audited; 0 is unlimited.
        let body = json!({ "calls_per_minute": 2, "max_concurrent_calls": 0 });
        let set = app.put(path, &op, body).await.expect(200);
        assert_eq!(set["limits"]["calls_per_minute"], 2);
        assert_eq!(set["limits"]["max_concurrent_calls"], 0);
        assert_eq!(set["limits"]["calls_per_hour"], Value::Null);
        assert_eq!(set["effective"]["calls_per_minute"], 2);
        assert_eq!(set["effective"]["max_concurrent_calls"], Value::Null);
        assert_eq!(set["effective"]["calls_per_hour"], 60, "default kept");
        assert!(set["updated_at_ms"].as_i64().is_some_and(|t| t > 0));
        let installed = guard.installed(acme, Some(ann)).expect("installed live");
        assert_eq!(installed.calls_per_minute, Some(2));
        assert_eq!(installed.max_concurrent_calls, Some(0));
        assert!(
            app.event_kinds("acme")
                .await
                .iter()
                .any(|k| k == "security.limits_changed"),
            "audited"
        );
        // By user id as well as by extension.
        let by_id = format!("/api/v1/tenants/acme/users/{ann}/security/limits");
        assert_eq!(app.get(&by_id, &op).await.expect(200), set);

        // Bad values: 422 naming the field, nothing changed.
        let put = |body: Value| app.put(path, &op, body);
        put(json!({ "calls_per_minute": -1 })).await.assert_error(
            422,
            "invalid_field",
            Some("calls_per_minute"),
        );
        put(json!({ "calls_per_hour": 1_000_001 }))
            .await
            .assert_error(422, "invalid_field", Some("calls_per_hour"));
        put(json!({ "minutes_per_day": 1_000_000_001_u64 }))
            .await
            .assert_error(422, "invalid_field", Some("minutes_per_day"));
        put(json!({ "cost_per_day_millicents": "5 euro" }))
            .await
            .assert_error(422, "invalid_field", Some("cost_per_day_millicents"));
        put(json!({ "max_concurrent_calls": 1.5 }))
            .await
            .assert_error(422, "invalid_field", Some("max_concurrent_calls"));
        put(json!({ "calls_per_second": 1 })).await.assert_error(
            422,
            "unknown_field",
            Some("calls_per_second"),
        );
        assert_eq!(app.get(path, &op).await.expect(200), set, "unchanged");
        assert_eq!(guard.installed(acme, Some(ann)), Some(installed));

        // Another tenant's admin: 404, by acme's path and by beta's path with acme's user.
        let beta_admin = app.admin_token("beta").await;
        app.get(path, &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        let smuggled = format!("/api/v1/tenants/beta/users/{ann}/security/limits");
        app.get(&smuggled, &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        app.put(&smuggled, &beta_admin, json!({ "calls_per_minute": 1 }))
            .await
            .assert_error(404, "not_found", None);
        app.delete(&smuggled, &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        // beta's own user is fine for beta's admin.
        let own = format!("/api/v1/tenants/beta/users/{bob}/security/limits");
        app.get(&own, &beta_admin).await.expect(200);
        assert_eq!(app.get(path, &op).await.expect(200), set, "untouched");

        // A customer admin may tighten, never loosen (above the default or unlimited).
        let admin = app.admin_token("acme").await;
        let tighter = json!({ "calls_per_minute": 5, "cost_per_day_millicents": 100_000 });
        let tightened = app.put(path, &admin, tighter).await.expect(200);
        assert_eq!(tightened["effective"]["calls_per_minute"], 5);
        assert_eq!(tightened["effective"]["max_concurrent_calls"], 4);
        for looser in [
            json!({ "calls_per_minute": 11 }),
            json!({ "max_concurrent_calls": 0 }),
        ] {
            app.put(path, &admin, looser)
                .await
                .assert_error(403, "forbidden", None);
        }

        // Stored: a restarted API reads the same override.
        let restarted = app.reopen().await;
        assert_eq!(
            restarted.get(path, &op).await.expect(200)["limits"],
            tightened["limits"]
        );

        // Removed: defaults again (in the guard too), audited; a second removal is 404.
        app.delete(path, &admin).await.expect(204);
        assert_eq!(guard.installed(acme, Some(ann)), None);
        let cleared = app.get(path, &op).await.expect(200);
        assert_eq!(cleared["limits"], no_override());
        assert_eq!(cleared["updated_at_ms"], Value::Null);
        app.delete(path, &op)
            .await
            .assert_error(404, "not_found", None);
        assert!(
            app.event_kinds("acme")
                .await
                .iter()
                .any(|k| k == "security.limits_removed"),
            "audited"
        );
        app.get("/api/v1/tenants/acme/users/299/security/limits", &op)
            .await
            .assert_error(404, "not_found", None);
    })
    .await;
}

#[tokio::test]
async fn tenant_limits_are_validated_scoped_and_stored() {
    on_both(|app| async move {
        let (app, guard) = with_guard(app);
        let op = app.operator.clone();
        let acme: TenantId = id(&app.tenant("acme", None).await);
        app.tenant("beta", None).await;
        let path = "/api/v1/tenants/acme/security/limits";

        let fresh = app.get(path, &op).await.expect(200);
        assert_eq!(fresh["user_id"], Value::Null);
        assert_eq!(fresh["effective"]["max_concurrent_calls"], 30);

        let body = json!({ "max_concurrent_calls": 100, "minutes_per_day": 20_000 });
        let set = app.put(path, &op, body).await.expect(200);
        assert_eq!(set["effective"]["max_concurrent_calls"], 100);
        assert_eq!(set["effective"]["minutes_per_day"], 20_000);
        assert_eq!(set["effective"]["calls_per_minute"], 60);
        let installed = guard.installed(acme, None).expect("installed live");
        assert_eq!(installed.max_concurrent_calls, Some(100));
        app.put(path, &op, json!({ "calls_per_minute": 2_000_000 }))
            .await
            .assert_error(422, "invalid_field", Some("calls_per_minute"));
        app.put(path, &op, json!([]))
            .await
            .assert_error(422, "invalid_field", None);

        // Another tenant's admin sees nothing of it; acme's admin cannot raise it further.
        let beta_admin = app.admin_token("beta").await;
        app.get(path, &beta_admin)
            .await
            .assert_error(404, "not_found", None);
        let admin = app.admin_token("acme").await;
        app.put(path, &admin, json!({ "max_concurrent_calls": 200 }))
            .await
            .assert_error(403, "forbidden", None);

        let restarted = app.reopen().await;
        assert_eq!(
            restarted.get(path, &op).await.expect(200)["limits"],
            set["limits"]
        );
        app.delete(path, &op).await.expect(204);
        assert_eq!(guard.installed(acme, None), None);
        app.delete(path, &op)
            .await
            .assert_error(404, "not_found", None);
    })
    .await;
}

#[tokio::test]
async fn an_account_is_blocked_by_hand_listed_and_lifted() {
    on_both(|app| async move {
        // Without a guard in the process there is nothing to block: 409.
        let op = app.operator.clone();
        app.tenant("acme", None).await;
        app.tenant("beta", None).await;
        let ann: UserId = id(&app.user("acme", "201").await);
        let bob: UserId = id(&app.user("beta", "301").await);
        let blocks = "/api/v1/tenants/acme/security/blocks";
        app.post(blocks, &op, json!({ "user": "201" }))
            .await
            .assert_error(409, "conflict", Some("user"));

        let (app, guard) = with_guard(app);
        let admin = app.admin_token("acme").await;
        let body = json!({ "user": "201", "reason": "calls to +371 at night" });
        let created = app.post(blocks, &admin, body.clone()).await.expect(201);
        assert_eq!(created["user_id"], ann.to_string());
        let listed = app.get(blocks, &admin).await.expect(200);
        assert_eq!(listed, json!([created.clone()]));
        // Blocking again changes nothing.
        assert_eq!(app.post(blocks, &admin, body).await.expect(200), created);
        assert_eq!(guard.blocked.lock().unwrap().len(), 1);
        let events = app
            .get("/api/v1/tenants/acme/events", &op)
            .await
            .expect(200);
        let audited: Vec<&Value> = events
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["kind"] == "security.block_created")
            .collect();
        assert_eq!(audited.len(), 1, "{events}");
        assert_eq!(
            audited[0]["payload"]["target"]["reason"],
            "calls to +371 at night"
        );

        // Bad bodies name the field; another tenant's user is not found in this tenant.
        app.post(blocks, &admin, json!({}))
            .await
            .assert_error(422, "missing_field", Some("user"));
        app.post(blocks, &admin, json!({ "user": "299" }))
            .await
            .assert_error(422, "invalid_field", Some("user"));
        app.post(blocks, &admin, json!({ "user": bob.to_string() }))
            .await
            .assert_error(422, "invalid_field", Some("user"));
        app.post(
            blocks,
            &admin,
            json!({ "user": "201", "reason": "x".repeat(501) }),
        )
        .await
        .assert_error(422, "invalid_field", Some("reason"));
        app.post(blocks, &admin, json!({ "user": "201", "why": "x" }))
            .await
            .assert_error(422, "unknown_field", Some("why"));
        let beta_admin = app.admin_token("beta").await;
        app.post(blocks, &beta_admin, json!({ "user": "201" }))
            .await
            .assert_error(404, "not_found", None);
        assert_eq!(
            guard.blocked.lock().unwrap().len(),
            1,
            "refusals blocked nothing"
        );

        // Lifted through the existing route.
        app.delete(&format!("{blocks}/201"), &admin)
            .await
            .expect(204);
        assert_eq!(app.get(blocks, &admin).await.expect(200), json!([]));
    })
    .await;
}
