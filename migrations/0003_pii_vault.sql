-- The PII vault and the roles that separate loading from recovery.
--
-- login_etl_loader:   what the function's database user should be granted. It may INSERT
--                     logins and vault rows and nothing else: it cannot read the vault back.
-- login_etl_recovery: for the people allowed to recover originals. It may read both tables
--                     (and still needs the private key to decrypt anything).
-- Both are NOLOGIN group roles; grant them to login users, e.g.
--   CREATE ROLE etl_lambda LOGIN PASSWORD '…' IN ROLE login_etl_loader;
-- Roles are cluster-wide, so creating them tolerates their existence (and a concurrent
-- migration of another database on the same server).
DO $$
BEGIN
    CREATE ROLE login_etl_loader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE login_etl_recovery NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE SCHEMA IF NOT EXISTS pii_vault;
REVOKE ALL ON SCHEMA pii_vault FROM PUBLIC;

-- One row per distinct original, keyed by its masked value: the same device seen a million
-- times is stored once. `sealed` is the batch envelope of src/vault.rs, readable only with
-- the private key named by key_id.
CREATE TABLE pii_vault.sealed_values (
    field        varchar(16)  NOT NULL CHECK (field IN ('ip', 'device_id')),
    masked_value varchar(256) NOT NULL,
    sealed       bytea        NOT NULL,
    key_id       varchar(16)  NOT NULL,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (field, masked_value)
);
REVOKE ALL ON pii_vault.sealed_values FROM PUBLIC;

GRANT USAGE ON SCHEMA pii_vault TO login_etl_loader, login_etl_recovery;
GRANT INSERT ON pii_vault.sealed_values TO login_etl_loader;
GRANT SELECT ON pii_vault.sealed_values TO login_etl_recovery;

GRANT INSERT ON user_logins TO login_etl_loader;
GRANT SELECT ON user_logins TO login_etl_recovery;

-- Recovery by user: find a user's masked values quickly.
CREATE INDEX IF NOT EXISTS user_logins_user_id_idx ON user_logins (user_id);
