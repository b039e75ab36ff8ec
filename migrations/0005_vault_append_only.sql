-- The vault becomes append-only: it tells the loader nothing and nothing the loader writes can
-- hide a genuine original.
--
-- Before, one row per (field, masked_value) and `ON CONFLICT DO NOTHING`: an INSERT with the
-- loader's credentials answered "INSERT 0 0" when a guessed value was already in the vault (a
-- membership oracle), and a planted row made the genuine ciphertext be dropped later. Now
-- every sealed value is a row of its own, no insert can conflict, and `recover` keeps only
-- rows that open with the private key into an original that re-masks to their masked value.
-- The cost: a value seen in several batches is stored once per batch (batches still seal each
-- distinct value once).
ALTER TABLE pii_vault.sealed_values DROP CONSTRAINT sealed_values_pkey;
ALTER TABLE pii_vault.sealed_values ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE INDEX sealed_values_masked_value_idx ON pii_vault.sealed_values (field, masked_value);

CREATE OR REPLACE FUNCTION public.insert_login_batch(
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
