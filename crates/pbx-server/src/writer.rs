//! The store writer: applies registrar effects (bindings, events) to the database off the SIP
//! driver task, in order, retrying transient failures so that no registration or audit event
//! is lost to a brief database outage.

use std::time::Duration;

use pbx_registrar::{BindingKey, Effect};
use pbx_store::{Store, StoreResult};
use tokio::sync::mpsc;

/// Attempts per write before it is given up (and logged with its content).
const ATTEMPTS: u32 = 5;

/// Runs until the sending side is dropped and the queue is drained.
pub async fn run(store: Store, mut queue: mpsc::Receiver<Effect>) {
    while let Some(effect) = queue.recv().await {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            match apply(&store, &effect).await {
                Ok(()) => break,
                Err(err) if attempt < ATTEMPTS => {
                    tracing::warn!(error = %err, attempt, "store write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(err) => {
                    tracing::error!(error = %err, effect = ?effect, "store write given up");
                }
            }
        }
    }
}

async fn apply(store: &Store, effect: &Effect) -> StoreResult<()> {
    match effect {
        Effect::PersistBinding(record) => {
            // The tenant comes from an authenticated credential (trusted state), so the scope
            // needs no lookup: one query less per REGISTER.
            let scope = Store::system_scope(record.tenant_id);
            store.bindings().upsert(&scope, record).await?;
        }
        Effect::DeleteBinding(key) => delete(store, key).await?,
        Effect::Event(event) => {
            let payload = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
            store
                .events()
                .append(now_ms(), event.tenant_id(), event.kind(), &payload)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn delete(store: &Store, key: &BindingKey) -> StoreResult<()> {
    let scope = Store::system_scope(key.tenant_id);
    for binding in store.bindings().list_for_aor(&scope, &key.aor).await? {
        if binding.record.key() == key.key {
            store.bindings().remove(&scope, binding.id).await?;
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
