-- The function's one statement per batch, as a server-side function.
--
-- Why a function: behind a transaction-mode pooler the loader cannot keep a named prepared
-- statement, so it sends an unnamed one in a single round trip, and PostgreSQL parses and
-- plans it again for every batch. Called through this function, the INSERT's plan is cached
-- by PL/pgSQL inside the server process: the client still sends one small unnamed statement
-- (`SELECT insert_login_batch(...)`), in one round trip, with no session state it depends on.
--
-- The vault's sealed originals go in through a data-modifying CTE of the same statement, so a
-- login row never exists without its recoverable original and a failed batch leaves nothing.
-- The vault insert never conflicts: the vault is append-only (0005_vault_append_only.sql).
-- The logins' ON CONFLICT names no target on purpose: a target needs SELECT on its columns,
-- and the loader role has INSERT only. SECURITY INVOKER (the default): the caller's
-- privileges apply.
-- Returns how many login rows were new (redeliveries are skipped).
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
    p_vault_key_id     text
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
                                    locale, app_version, sent_at, create_date, masking_scheme)
    SELECT b.message_id, b.user_id, b.device_type, b.masked_ip, b.masked_device_id,
           b.locale, b.app_version, b.sent_at, b.create_date, p_masking_scheme
    FROM UNNEST(p_message_id, p_user_id, p_device_type, p_masked_ip, p_masked_device_id,
                p_locale, p_app_version, p_sent_at, p_create_date)
         AS b(message_id, user_id, device_type, masked_ip, masked_device_id,
              locale, app_version, sent_at, create_date)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;

REVOKE ALL ON FUNCTION public.insert_login_batch FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_login_batch TO login_etl_loader;
