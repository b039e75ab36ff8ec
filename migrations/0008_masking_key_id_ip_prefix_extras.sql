-- Three things a row can now hold: which key masked it, the address's network, and the fields
-- a deployment's field policy declares beyond the built-in six.
--
-- 1. Every row records which masking key produced its masked values: masking_key_id, the key's
-- short non-secret id (first 8 hex digits of HMAC-SHA256(key, 'login-etl masking key id'),
-- crates/login-etl-core/src/mask.rs, MaskingKey::key_id). After a rotation, rows of the old
-- and the new key are told apart by it (docs/guarantees.md, "Rotating the masking key"):
-- pseudonyms are comparable only between rows with the same masking_key_id.
--
-- Rows loaded before this migration keep NULL (their key is not known here); so do rows of the
-- unkeyed compatibility scheme (masking_scheme 'sha256'), which has no key.
ALTER TABLE public.user_logins ADD COLUMN masking_key_id varchar(16);
COMMENT ON COLUMN public.user_logins.masking_key_id IS
    'id of the masking key (8 hex digits of HMAC-SHA256(key, ''login-etl masking key id'')); NULL: sha256 scheme, or loaded before 0008';

-- 2. ip_prefix: the address's network, truncated in the core before it leaves the function
-- (IPv4 /24 and IPv6 /48 by default: MASKING_IP=masked+prefix or prefix, MASKING_IP_PREFIX),
-- for analysts who group by network or region, which the pseudonym of the whole address hides.
-- NULL unless the deployment keeps it. What it reveals: docs/guarantees.md, "Masking".
ALTER TABLE public.user_logins ADD COLUMN ip_prefix cidr;
COMMENT ON COLUMN public.user_logins.ip_prefix IS
    'the address truncated to its network (MASKING_IP_PREFIX, default /24 and /48); NULL unless MASKING_IP keeps a prefix';

-- 3. extras: one JSON object per row with the fields the field policy (the published JSON
-- Schema's annotations, or FIELD_POLICY_FILE) declares with x-landing extras: kept ones as sent,
-- masked ones as their pseudonym. A producer's new field lands here by one line of the policy,
-- without a migration (docs/contract.md, "The field policy"). NULL when a row has none.
ALTER TABLE public.user_logins ADD COLUMN extras jsonb;
COMMENT ON COLUMN public.user_logins.extras IS
    'fields the field policy declares beyond the built-in six (x-landing extras); NULL when none';

-- The batch insert with all three. A new overload beside the old one (0004), which stays and
-- stores NULL: a function instance of the previous release, still running while this one
-- deploys after `migrate`, keeps loading. Drop the old one once no such instance is left.
CREATE FUNCTION public.insert_login_batch(
    p_message_id       text[],
    p_user_id          text[],
    p_device_type      text[],
    p_masked_ip        text[],
    p_masked_device_id text[],
    p_locale           text[],
    p_app_version      text[],
    p_sent_at          timestamptz[],
    p_create_date      date[],
    p_masking_scheme   text,
    p_vault_field      text[],
    p_vault_masked     text[],
    p_vault_sealed     bytea[],
    p_vault_key_id     text,
    p_masking_key_id   text,
    p_ip_prefix        text[],
    p_extras           text[]
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    inserted bigint;
BEGIN
    WITH sealed AS (
        INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id)
        SELECT v.field, v.masked_value, v.sealed, p_vault_key_id
        FROM UNNEST(p_vault_field, p_vault_masked, p_vault_sealed) AS v(field, masked_value, sealed)
    )
    INSERT INTO public.user_logins (message_id, user_id, device_type, masked_ip, masked_device_id,
                                    locale, app_version, sent_at, create_date, masking_scheme,
                                    masking_key_id, ip_prefix, extras)
    SELECT b.message_id, b.user_id, b.device_type, b.masked_ip, b.masked_device_id,
           b.locale, b.app_version, b.sent_at, b.create_date, p_masking_scheme, p_masking_key_id,
           b.ip_prefix::cidr, b.extras::jsonb
    FROM UNNEST(p_message_id, p_user_id, p_device_type, p_masked_ip, p_masked_device_id,
                p_locale, p_app_version, p_sent_at, p_create_date, p_ip_prefix, p_extras)
         AS b(message_id, user_id, device_type, masked_ip, masked_device_id,
              locale, app_version, sent_at, create_date, ip_prefix, extras)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;

REVOKE ALL ON FUNCTION public.insert_login_batch(text[], text[], text[], text[], text[], text[], text[],
                                                 timestamptz[], date[], text, text[], text[], bytea[], text, text, text[], text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_login_batch(text[], text[], text[], text[], text[], text[], text[],
                                                    timestamptz[], date[], text, text[], text[], bytea[], text, text, text[], text[])
    TO login_etl_loader;
