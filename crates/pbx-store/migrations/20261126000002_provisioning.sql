-- Phone auto-provisioning (issue 6): per-tenant settings, the per-device provisioning secret,
-- and the fetch log. Same dialect rules as 20261126000001_tenant_model.sql (TEXT, BIGINT
-- epoch milliseconds, BIGINT 0/1, named constraints; works on SQLite and PostgreSQL).

-- Per-tenant values the config files carry. No row: the platform defaults
-- (time zone Europe/Amsterdam, the configured default language).
CREATE TABLE tenant_provisioning (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    time_zone   TEXT NOT NULL,
    language    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A device that may be provisioned. sealed_password is the device's SIP password sealed with
-- the server's provisioning key (ChaCha20-Poly1305, device id as associated data);
-- sealed_ha1_md5 is the MD5 HA1 it was sealed for, so a credential re-keyed elsewhere is
-- detected as stale. url_epoch is mixed into the HTTPS URL token: bumping it revokes the URL.
CREATE TABLE device_provisioning (
    device_id       TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    sealed_password TEXT NOT NULL,
    sealed_ha1_md5  TEXT NOT NULL,
    url_epoch       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT fk_device_provisioning_device FOREIGN KEY (tenant_id, device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_device_provisioning_tenant ON device_provisioning (tenant_id);

-- Every fetch, served or refused (time, source, file, result). tenant_id/device_id are NULL
-- when the request could not be attributed. No foreign keys: the log outlives the device.
CREATE TABLE provisioning_fetches (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    tenant_id   TEXT NULL,
    device_id   TEXT NULL,
    protocol    TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    source_port BIGINT NOT NULL,
    path        TEXT NOT NULL,
    result      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    CONSTRAINT ck_provisioning_fetches_protocol CHECK (protocol IN ('tftp', 'https'))
);
CREATE INDEX ix_provisioning_fetches_device ON provisioning_fetches (tenant_id, device_id, at);
CREATE INDEX ix_provisioning_fetches_at ON provisioning_fetches (at);
