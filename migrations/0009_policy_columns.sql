-- Fields with a column of their own, by the field policy alone: a property declared with
-- x-landing {"column": "<name>"} (docs/contract.md, "The field policy") is written to that
-- column of user_logins, which the deployment's own migration adds (plain SQL run by the table's
-- owner, e.g. `ALTER TABLE public.user_logins ADD COLUMN os_version varchar(16);`). No code, no
-- release: the function sends such values as one JSON object per row (p_columns, keyed by column
-- name) and this function spreads them into the columns.
--
-- Why one fixed statement still: the client sends the same `SELECT insert_login_batch(...)`
-- (queries/insert_batch.sql, checked by sqlx, unnamed, safe behind a transaction-mode pooler)
-- whatever the policy says; only this function knows which columns exist.
--
-- - No policy column in the batch (the published policy; every row's p_columns NULL): the
--   static INSERT, as 0008's, whose plan PL/pgSQL caches.
-- - Otherwise: the batch's column names are checked against the table's catalogue (each must be a
--   column of user_logins, and none of the columns the function itself fills), then one INSERT
--   naming exactly those columns runs through EXECUTE, its values converted to each column's type
--   by jsonb_populate_record (so a column's type, length and CHECKs hold as for any insert). A
--   name that is not a column (the policy changed before its migration ran) fails the whole batch
--   with SQLSTATE 42703, naming the column: the records stay on the queue, nothing is lost.
--   Column defaults still apply to columns not named.
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
    p_extras           text[],
    p_columns          text[]
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    inserted bigint;
    policy_columns text[];
    unknown_column text;
    -- The columns this function fills itself: a policy may not land a field in one of them.
    own_columns CONSTANT text[] := ARRAY['id', 'message_id', 'user_id', 'device_type', 'masked_ip',
        'masked_device_id', 'locale', 'app_version', 'sent_at', 'create_date', 'masking_scheme',
        'masking_key_id', 'ip_prefix', 'extras', 'loaded_at'];
BEGIN
    SELECT array_agg(DISTINCT k.name ORDER BY k.name)
    INTO policy_columns
    FROM unnest(p_columns) AS c(obj), jsonb_object_keys(c.obj::jsonb) AS k(name)
    WHERE c.obj IS NOT NULL;

    IF policy_columns IS NULL THEN
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
    END IF;

    SELECT name INTO unknown_column
    FROM unnest(policy_columns) AS p(name)
    WHERE name = ANY (own_columns)
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = 'public.user_logins'::regclass AND a.attname = p.name
                        AND a.attnum > 0 AND NOT a.attisdropped)
    LIMIT 1;
    IF unknown_column IS NOT NULL THEN
        RAISE EXCEPTION 'the field policy lands a field in column "%", which is not a column of user_logins the policy may fill (run its migration first)', unknown_column
            USING ERRCODE = 'undefined_column';
    END IF;

    EXECUTE format(
        $sql$
        WITH sealed AS (
            INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id)
            SELECT v.field, v.masked_value, v.sealed, $14
            FROM UNNEST($11, $12, $13) AS v(field, masked_value, sealed)
        )
        INSERT INTO public.user_logins (message_id, user_id, device_type, masked_ip, masked_device_id,
                                        locale, app_version, sent_at, create_date, masking_scheme,
                                        masking_key_id, ip_prefix, extras, %s)
        SELECT b.message_id, b.user_id, b.device_type, b.masked_ip, b.masked_device_id,
               b.locale, b.app_version, b.sent_at, b.create_date, $10, $15,
               b.ip_prefix::cidr, b.extras::jsonb, %s
        FROM UNNEST($1, $2, $3, $4, $5, $6, $7, $8, $9, $16, $17, $18)
             AS b(message_id, user_id, device_type, masked_ip, masked_device_id,
                  locale, app_version, sent_at, create_date, ip_prefix, extras, columns)
             CROSS JOIN LATERAL jsonb_populate_record(NULL::public.user_logins,
                                                      coalesce(b.columns::jsonb, '{}'::jsonb)) AS c
        ON CONFLICT DO NOTHING
        $sql$,
        (SELECT string_agg(format('%I', name), ', ') FROM unnest(policy_columns) AS p(name)),
        (SELECT string_agg(format('c.%I', name), ', ') FROM unnest(policy_columns) AS p(name)))
    USING p_message_id, p_user_id, p_device_type, p_masked_ip, p_masked_device_id, p_locale,
          p_app_version, p_sent_at, p_create_date, p_masking_scheme, p_vault_field, p_vault_masked,
          p_vault_sealed, p_vault_key_id, p_masking_key_id, p_ip_prefix, p_extras, p_columns;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;

REVOKE ALL ON FUNCTION public.insert_login_batch(text[], text[], text[], text[], text[], text[], text[],
                                                 timestamptz[], date[], text, text[], text[], bytea[], text,
                                                 text, text[], text[], text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.insert_login_batch(text[], text[], text[], text[], text[], text[], text[],
                                                    timestamptz[], date[], text, text[], text[], bytea[], text,
                                                    text, text[], text[], text[])
    TO login_etl_loader;
