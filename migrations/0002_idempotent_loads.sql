-- Make loads idempotent and keep what the messages really say.

-- Messages carry versions such as "2.3.0" and "0.96", which an integer cannot hold. Text keeps
-- every new version verbatim and every old integer exactly (as its decimal digits).
ALTER TABLE user_logins
    ALTER COLUMN app_version TYPE varchar(32) USING app_version::text;

ALTER TABLE user_logins
    -- A surrogate key, so tools and replication have a primary key; old rows are numbered too.
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The SQS messageId. Unique, so a redelivered message cannot make a second row
    -- (INSERT … ON CONFLICT DO NOTHING). Rows loaded before this upgrade have none (NULL).
    ADD COLUMN message_id varchar(128) CONSTRAINT user_logins_message_id_key UNIQUE,
    -- When SQS accepted the message (SentTimestamp); create_date is its UTC date.
    ADD COLUMN sent_at timestamptz,
    -- When the row was written, for lag monitoring. Old rows get the upgrade's time.
    ADD COLUMN loaded_at timestamptz NOT NULL DEFAULT now(),
    -- How masked_ip and masked_device_id were computed ('hmac-sha256' or 'sha256'); values of
    -- different schemes must never be compared. NULL for rows loaded before this upgrade.
    ADD COLUMN masking_scheme varchar(16);

COMMENT ON COLUMN user_logins.masked_ip IS 'hex HMAC-SHA256 (or SHA-256, see masking_scheme) of the canonical IP text';
COMMENT ON COLUMN user_logins.masked_device_id IS 'hex HMAC-SHA256 (or SHA-256, see masking_scheme) of the device id';
