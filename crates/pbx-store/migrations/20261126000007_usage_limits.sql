-- Issue 5 (fraud guard), thresholds: per-tenant and per-account (user) overrides of the
-- outbound usage limits of `[security.tenant_limits]` / `[security.account_limits]`.
-- Same dialect rules as 20261126000001_tenant_model.sql.
--
-- Each limit column: NULL keeps the configured default, 0 means unlimited, otherwise the
-- limit. Loaded into the fraud guard at start and changed through the API (live).

CREATE TABLE tenant_usage_limits (
    tenant_id               TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    max_concurrent_calls    BIGINT NULL,
    calls_per_minute        BIGINT NULL,
    calls_per_hour          BIGINT NULL,
    minutes_per_day         BIGINT NULL,
    cost_per_day_millicents BIGINT NULL,
    updated_at              BIGINT NOT NULL,
    CONSTRAINT ck_tenant_usage_limits_positive CHECK (
        (max_concurrent_calls IS NULL OR max_concurrent_calls >= 0)
        AND (calls_per_minute IS NULL OR calls_per_minute >= 0)
        AND (calls_per_hour IS NULL OR calls_per_hour >= 0)
        AND (minutes_per_day IS NULL OR minutes_per_day >= 0)
        AND (cost_per_day_millicents IS NULL OR cost_per_day_millicents >= 0))
);

-- The user belongs to the row's tenant: keyed and referenced by (tenant_id, user_id), so a
-- write in one tenant's scope can neither point at nor overwrite (through ON CONFLICT)
-- another tenant's user's row; the row goes with the user.
CREATE TABLE user_usage_limits (
    tenant_id               TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    max_concurrent_calls    BIGINT NULL,
    calls_per_minute        BIGINT NULL,
    calls_per_hour          BIGINT NULL,
    minutes_per_day         BIGINT NULL,
    cost_per_day_millicents BIGINT NULL,
    updated_at              BIGINT NOT NULL,
    CONSTRAINT pk_user_usage_limits PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT fk_user_usage_limits_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_user_usage_limits_positive CHECK (
        (max_concurrent_calls IS NULL OR max_concurrent_calls >= 0)
        AND (calls_per_minute IS NULL OR calls_per_minute >= 0)
        AND (calls_per_hour IS NULL OR calls_per_hour >= 0)
        AND (minutes_per_day IS NULL OR minutes_per_day >= 0)
        AND (cost_per_day_millicents IS NULL OR cost_per_day_millicents >= 0))
);
