-- Issue 5 (fraud and abuse guard): persisted guard state and the typed security event log.
-- Same dialect rules as 20261126000001_tenant_model.sql (TEXT, BIGINT Unix ms, JSON text).

-- One snapshot per node of the guard's memory (bans with their escalation history, failure
-- counters, throttled user names, account usage baselines and outbound blocks), so a
-- restart does not forgive an attacker. Written when it changes and at shutdown.
CREATE TABLE security_state (
    node_id   TEXT PRIMARY KEY,
    saved_at  BIGINT NOT NULL,
    state     TEXT NOT NULL
);

-- Typed security events (ban, unban, user throttle, whitelist reject, blocked destination,
-- threshold breach, baseline anomaly, account block/unblock). tenant_id is NULL for events
-- that concern no tenant (a scanner banned before it named any account).
CREATE TABLE security_events (
    id        TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    tenant_id TEXT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL
);
CREATE INDEX ix_security_events_tenant_at ON security_events (tenant_id, at);
CREATE INDEX ix_security_events_at ON security_events (at);
