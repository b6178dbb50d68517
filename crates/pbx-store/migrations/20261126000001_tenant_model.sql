-- CloudPBX schema v1: the tenant model, credentials, numbers, whitelists, registrations,
-- API tokens and the event log.
--
-- ONE migration set serves SQLite and PostgreSQL: it uses only the SQL both understand
-- (TEXT, BIGINT, named UNIQUE/CHECK/FOREIGN KEY constraints, composite foreign keys).
-- Conventions: ids are UUID v7 text; times are BIGINT Unix epoch milliseconds; booleans are
-- BIGINT 0/1 (the sqlx Any driver cannot decode a SQLite integer as bool); lists are JSON
-- text. Child tables carry tenant_id and reference their parent through (tenant_id, id), so
-- a row can never point at another tenant's row.

CREATE TABLE resellers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT uq_resellers_name UNIQUE (name)
);

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    reseller_id TEXT NULL REFERENCES resellers (id),
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    sip_domain  TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT uq_tenants_slug UNIQUE (slug),
    CONSTRAINT uq_tenants_sip_domain UNIQUE (sip_domain),
    CONSTRAINT ck_tenants_status CHECK (status IN ('active', 'suspended', 'terminated'))
);
CREATE INDEX ix_tenants_reseller ON tenants (reseller_id);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    extension        TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    class_of_service TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT uq_users_tenant_extension UNIQUE (tenant_id, extension),
    CONSTRAINT uq_users_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT ck_users_class_of_service
        CHECK (class_of_service IN ('internal_only', 'national', 'international'))
);

-- MAC addresses are unique platform-wide: a physical phone can belong to one tenant only,
-- and provisioning finds a phone by MAC before it knows the tenant.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    vendor      TEXT NULL,
    model       TEXT NULL,
    mac         TEXT NULL,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT fk_devices_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_devices_mac UNIQUE (mac),
    CONSTRAINT uq_devices_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT ck_devices_kind CHECK (kind IN ('desk_phone', 'softphone', 'mobile_app')),
    CONSTRAINT ck_devices_desk_phone_fields CHECK (
        (kind = 'desk_phone' AND vendor IS NOT NULL AND model IS NOT NULL AND mac IS NOT NULL)
        OR (kind <> 'desk_phone' AND mac IS NULL))
);
CREATE INDEX ix_devices_user ON devices (tenant_id, user_id);

-- One credential per device. Only HA1 digests are stored, never the password.
CREATE TABLE sip_credentials (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    auth_username TEXT NOT NULL,
    realm         TEXT NOT NULL,
    ha1_md5       TEXT NOT NULL,
    ha1_sha256    TEXT NOT NULL,
    enabled       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT fk_credentials_device FOREIGN KEY (tenant_id, device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_credentials_auth_username UNIQUE (auth_username),
    CONSTRAINT uq_credentials_device UNIQUE (device_id),
    CONSTRAINT ck_credentials_enabled CHECK (enabled IN (0, 1))
);

-- The number inventory: tenant_id NULL means free stock of the operator.
CREATE TABLE phone_numbers (
    id          TEXT PRIMARY KEY,
    e164        TEXT NOT NULL,
    tenant_id   TEXT NULL REFERENCES tenants (id),
    user_id     TEXT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT uq_numbers_e164 UNIQUE (e164),
    CONSTRAINT fk_numbers_user FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CONSTRAINT ck_numbers_user_needs_tenant CHECK (user_id IS NULL OR tenant_id IS NOT NULL)
);
CREATE INDEX ix_numbers_tenant ON phone_numbers (tenant_id);

-- user_id NULL: the tenant-wide list; otherwise an entry of that user's narrower list.
CREATE TABLE ip_whitelist (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     TEXT NULL,
    network     TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT fk_whitelist_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_whitelist_tenant ON ip_whitelist (tenant_id);

-- Registrar bindings (location service). binding_key identifies a binding within its AOR:
-- (+sip.instance, reg-id), +sip.instance alone, or the Contact URI.
CREATE TABLE registration_bindings (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    device_id        TEXT NULL,
    aor              TEXT NOT NULL,
    binding_key      TEXT NOT NULL,
    contact_uri      TEXT NOT NULL,
    instance_id      TEXT NULL,
    reg_id           BIGINT NULL,
    path             TEXT NOT NULL,
    pn_provider      TEXT NULL,
    pn_prid          TEXT NULL,
    pn_param         TEXT NULL,
    expires_at       BIGINT NOT NULL,
    q_milli          BIGINT NULL,
    call_id          TEXT NOT NULL,
    cseq             BIGINT NOT NULL,
    user_agent       TEXT NULL,
    transport        TEXT NOT NULL,
    source_ip        TEXT NOT NULL,
    source_port      BIGINT NOT NULL,
    local_addr       TEXT NOT NULL,
    connection_id    TEXT NULL,
    node_id          TEXT NOT NULL,
    sip_alg_detected BIGINT NOT NULL,
    sip_alg_reason   TEXT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT fk_bindings_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_bindings_device FOREIGN KEY (tenant_id, device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_bindings_key UNIQUE (tenant_id, aor, binding_key),
    CONSTRAINT ck_bindings_q CHECK (q_milli IS NULL OR (q_milli >= 0 AND q_milli <= 1000)),
    CONSTRAINT ck_bindings_transport CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
    CONSTRAINT ck_bindings_alg CHECK (sip_alg_detected IN (0, 1)),
    CONSTRAINT ck_bindings_push CHECK (
        (pn_provider IS NULL AND pn_prid IS NULL AND pn_param IS NULL)
        OR (pn_provider IS NOT NULL AND pn_prid IS NOT NULL))
);
CREATE INDEX ix_bindings_expires ON registration_bindings (expires_at);
CREATE INDEX ix_bindings_node ON registration_bindings (node_id);

-- API tokens: only the SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    reseller_id  TEXT NULL REFERENCES resellers (id) ON DELETE CASCADE,
    tenant_id    TEXT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    revoked_at   BIGINT NULL,
    expires_at   BIGINT NULL,
    CONSTRAINT uq_api_tokens_hash UNIQUE (token_hash),
    CONSTRAINT ck_api_tokens_scope CHECK (
        (role = 'operator' AND reseller_id IS NULL AND tenant_id IS NULL)
        OR (role = 'reseller' AND reseller_id IS NOT NULL AND tenant_id IS NULL)
        OR (role = 'customer_admin' AND reseller_id IS NULL AND tenant_id IS NOT NULL))
);

-- The audit/event log. No foreign key: the audit trail outlives a deleted tenant.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    tenant_id   TEXT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX ix_events_tenant_at ON events (tenant_id, at);
CREATE INDEX ix_events_at ON events (at);
