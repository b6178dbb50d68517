-- Issue 5 (fraud guard), second part. Same dialect rules as 20261126000001_tenant_model.sql.

-- A device exempt from the tenant's and user's IP whitelist (a mobile device that roams):
-- from outside the whitelist its REGISTER and INVITE are admitted over TLS only. 0/1.
ALTER TABLE devices ADD COLUMN whitelist_exempt BIGINT NOT NULL DEFAULT 0
    CHECK (whitelist_exempt IN (0, 1));

-- A tenant's explicit outbound destination exceptions: E.164 prefixes ('+31909', '+53') it
-- may call although blocked by default (allow_prefixes), and extra prefixes it blocks
-- (block_prefixes); JSON arrays of text. Loaded into the fraud guard at start and changed
-- through the API.
CREATE TABLE tenant_destination_exceptions (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allow_prefixes TEXT NOT NULL,
    block_prefixes TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
