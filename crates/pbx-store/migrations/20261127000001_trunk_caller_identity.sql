-- How a trunk sends the caller's identity to its carrier: 'pai' (P-Asserted-Identity, and
-- Privacy: id when anonymous; the behaviour before this column), 'from' (the From header
-- only), 'rpid' (Remote-Party-ID). Same dialect rules as 20261126000001_tenant_model.sql.
ALTER TABLE trunks ADD COLUMN caller_identity TEXT NOT NULL DEFAULT 'pai'
    CHECK (caller_identity IN ('pai', 'from', 'rpid'));
