//! Where the guard's events and state go: the store, the audit log and the webhook.

use std::sync::Arc;
use std::time::Duration;

use pbx_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::control::resolve_limits;
use super::webhook::Webhook;
use super::{Recorded, SecurityGuard, unix_ms};
use pbx_policy::SecurityEvent;

/// Writes every event to `security_events` (bans and unbans also to the audit log) and
/// hands it to the webhook, until the queue closes.
pub async fn run(
    store: Store,
    guard: Arc<SecurityGuard>,
    mut events: mpsc::Receiver<Recorded>,
    stop: CancellationToken,
) {
    let webhook = guard
        .settings()
        .webhook
        .clone()
        .map(|settings| Webhook::spawn(settings, Arc::clone(&guard), stop.clone()));
    loop {
        let recorded = tokio::select! {
            recorded = events.recv() => recorded,
            () = stop.cancelled() => {
                // Drain what is queued, then stop.
                events.close();
                events.recv().await
            }
        };
        let Some(recorded) = recorded else { break };
        store_event(&store, &recorded).await;
        if let Some(webhook) = &webhook {
            webhook.offer(&recorded);
        }
    }
}

async fn store_event(store: &Store, recorded: &Recorded) {
    let payload = serde_json::to_value(&recorded.event).unwrap_or_default();
    let at = i64::try_from(recorded.at_ms).unwrap_or(i64::MAX);
    let kind = recorded.kind();
    if let Err(err) = store
        .security()
        .append(at, recorded.tenant, kind, &payload)
        .await
    {
        tracing::warn!(error = %err, kind, "security event not stored");
    }
    if matches!(
        recorded.event,
        SecurityEvent::SourceBanned { .. }
            | SecurityEvent::SourceUnbanned { .. }
            | SecurityEvent::AccountBlocked { .. }
            | SecurityEvent::AccountUnblocked { .. }
    ) {
        let audit_kind = format!("security.{kind}");
        if let Err(err) = store
            .events()
            .append(at, recorded.tenant, &audit_kind, &payload)
            .await
        {
            tracing::warn!(error = %err, kind, "audit event not stored");
        }
    }
}

/// Runs the guard's housekeeping every `period` and saves its state whenever it changed.
pub async fn persist_loop(
    store: Store,
    guard: Arc<SecurityGuard>,
    node_id: String,
    period: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => break,
        }
        guard.housekeeping(unix_ms());
        save(&store, &guard, &node_id, false).await;
    }
}

/// Saves the guard's state (`force`: even when nothing changed).
pub async fn save(store: &Store, guard: &SecurityGuard, node_id: &str, force: bool) {
    let Some(state) = guard.export_state(force) else {
        return;
    };
    let at = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
    if let Err(err) = store.security().save_state(node_id, at, &state).await {
        tracing::warn!(error = %err, "guard state not saved");
    }
}

/// Restores the guard's state saved by `node_id`, if any, the tenants' destination
/// exceptions and the tenant and account usage-limit overrides (the store's tables are
/// their truth). Returns the number of active bans.
pub async fn restore(store: &Store, guard: &SecurityGuard, node_id: &str) -> usize {
    let bans = restore_state(store, guard, node_id).await;
    match store
        .security()
        .all_destination_exceptions(&pbx_domain::Actor::System)
        .await
    {
        Ok(all) => guard.replace_tenant_exceptions(all.into_iter().map(|stored| {
            let exceptions = pbx_policy::TenantExceptions {
                allow: stored.allow,
                block: stored.block,
            };
            (stored.tenant_id, exceptions)
        })),
        Err(err) => tracing::warn!(error = %err, "destination exceptions not loaded"),
    }
    restore_limits(store, guard).await;
    bans
}

/// Installs every stored tenant and account limit override (the store's tables are their
/// truth; the API keeps the running guard in step).
async fn restore_limits(store: &Store, guard: &SecurityGuard) {
    let all = match store
        .limit_overrides()
        .all(&pbx_domain::Actor::System)
        .await
    {
        Ok(all) => all,
        Err(err) => {
            tracing::warn!(error = %err, "usage limit overrides not loaded");
            return;
        }
    };
    let settings = guard.settings();
    for stored in &all {
        let limits = pbx_api::ops::security::UsageLimits {
            max_concurrent_calls: stored.limits.max_concurrent_calls,
            calls_per_minute: stored.limits.calls_per_minute,
            calls_per_hour: stored.limits.calls_per_hour,
            minutes_per_day: stored.limits.minutes_per_day,
            cost_per_day_millicents: stored.limits.cost_per_day_millicents,
        };
        match stored.user_id {
            Some(user) => {
                let defaults = settings.account_limits.clone();
                guard.set_account_limits(user, Some(resolve_limits(&limits, defaults)));
            }
            None => {
                let defaults = settings.tenant_limits.clone();
                guard.set_tenant_limits(stored.tenant_id, Some(resolve_limits(&limits, defaults)));
            }
        }
    }
    tracing::info!(overrides = all.len(), "usage limit overrides loaded");
}

async fn restore_state(store: &Store, guard: &SecurityGuard, node_id: &str) -> usize {
    match store.security().load_state(node_id).await {
        Ok(Some((_, state))) => match guard.import_state(&state, unix_ms()) {
            Ok(bans) => bans,
            Err(err) => {
                tracing::warn!(error = %err, "saved guard state unreadable; starting empty");
                0
            }
        },
        Ok(None) => 0,
        Err(err) => {
            tracing::warn!(error = %err, "guard state not loaded; starting empty");
            0
        }
    }
}
