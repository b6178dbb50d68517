-- CloudPBX schema: calls. Trunks to carriers, outbound routes, tenants' calling settings and
-- call detail records. Same dialect rules as 20261126000001_tenant_model.sql (TEXT, BIGINT,
-- named constraints; times in Unix ms; booleans BIGINT 0/1; lists JSON text).

-- tenant_id NULL: an operator-wide trunk that every tenant's routes may use.
-- auth_password_enc: the carrier password, encrypted with the key in the data directory
-- (ChaCha20-Poly1305, "v1:" + hex(nonce || ciphertext)); it is OUR credential at the carrier.
CREATE TABLE trunks (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    host                  TEXT NOT NULL,
    port                  BIGINT NOT NULL,
    transport             TEXT NOT NULL,
    mode                  TEXT NOT NULL,
    auth_username         TEXT NULL,
    auth_password_enc     TEXT NULL,
    auth_realm            TEXT NULL,
    register_user         TEXT NULL,
    register              BIGINT NOT NULL,
    register_expires_secs BIGINT NOT NULL,
    inbound_networks      TEXT NOT NULL,
    priority              BIGINT NOT NULL,
    enabled               BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    CONSTRAINT ck_trunks_port CHECK (port >= 1 AND port <= 65535),
    CONSTRAINT ck_trunks_transport CHECK (transport IN ('udp', 'tcp', 'tls')),
    CONSTRAINT ck_trunks_mode CHECK (mode IN ('digest', 'ip_peering')),
    CONSTRAINT ck_trunks_register CHECK (register IN (0, 1)),
    CONSTRAINT ck_trunks_enabled CHECK (enabled IN (0, 1)),
    CONSTRAINT ck_trunks_register_needs_auth CHECK (
        register = 0 OR (auth_username IS NOT NULL AND auth_password_enc IS NOT NULL))
);
CREATE INDEX ix_trunks_tenant ON trunks (tenant_id);
-- Names are unique per owner; the operator's trunks use the empty string as owner key.
CREATE UNIQUE INDEX uq_trunks_owner_name ON trunks (COALESCE(tenant_id, ''), name);

-- tenant_id NULL: an operator route (the default for every tenant). trunks: JSON list of
-- {"trunk_id", "priority"}.
CREATE TABLE routes (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,
    trunks      TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX ix_routes_tenant ON routes (tenant_id);
CREATE UNIQUE INDEX uq_routes_owner_prefix ON routes (COALESCE(tenant_id, ''), prefix);

CREATE TABLE tenant_call_settings (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    country     TEXT NOT NULL,
    main_number TEXT NULL,
    updated_at  BIGINT NOT NULL
);

-- One row per call attempt. Written 'open' at call start, replaced by the final record at
-- the end; rows left 'open' by a crash are closed as 'interrupted' at the next start. No
-- foreign keys: billing records outlive deleted users, devices and trunks.
CREATE TABLE cdrs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    user_id         TEXT NULL,
    device_id       TEXT NULL,
    direction       TEXT NOT NULL,
    caller          TEXT NOT NULL,
    callee_dialled  TEXT NOT NULL,
    callee          TEXT NOT NULL,
    trunk_id        TEXT NULL,
    sip_call_id     TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    start_at        BIGINT NOT NULL,
    ring_at         BIGINT NULL,
    answer_at       BIGINT NULL,
    end_at          BIGINT NULL,
    last_seen_at    BIGINT NOT NULL,
    duration_secs   BIGINT NOT NULL,
    billable_secs   BIGINT NOT NULL,
    disposition     TEXT NULL,
    sip_status      BIGINT NULL,
    hangup_cause    TEXT NULL,
    hangup_side     TEXT NULL,
    media           TEXT NOT NULL,
    state           TEXT NOT NULL,
    CONSTRAINT ck_cdrs_direction CHECK (direction IN ('internal', 'outbound', 'inbound')),
    CONSTRAINT ck_cdrs_state CHECK (state IN ('open', 'closed')),
    CONSTRAINT ck_cdrs_closed CHECK (
        state = 'open' OR (end_at IS NOT NULL AND disposition IS NOT NULL))
);
CREATE INDEX ix_cdrs_tenant_start ON cdrs (tenant_id, start_at);
CREATE INDEX ix_cdrs_open ON cdrs (state, node_id);
