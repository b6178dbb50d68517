-- Registrar and configuration-change plumbing (issue 3).
-- Same dialect rules as 20261126000001_tenant_model.sql.

-- The configuration change sequence: one row, bumped after every committed configuration
-- write by whichever process made it (the server's API, the `cloudpbx` admin CLI on the same
-- SQLite file, another node). A running server polls it on SQLite (PostgreSQL nodes also get
-- LISTEN/NOTIFY) and reloads its in-memory directory when it moves.
CREATE TABLE config_changes (
    id   BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
INSERT INTO config_changes (id, seq) VALUES (1, 0);
