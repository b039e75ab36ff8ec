-- One batch in one statement: one implicit transaction and one round trip, whatever its size.
-- The vault's sealed originals go in through a data-modifying CTE of the same statement, so a
-- login row never exists without its recoverable original and a failed batch leaves nothing.
-- ON CONFLICT names no target on purpose: a target needs SELECT on its columns, and the loader
-- role has INSERT only. The only unique keys are message_id and the generated id.
-- Sent by src/loader.rs (tokio-postgres, unnamed statement); checked by sqlx at compile time.
WITH sealed AS (
    INSERT INTO pii_vault.sealed_values (field, masked_value, sealed, key_id)
    SELECT field, masked_value, sealed, $14
    FROM UNNEST($11::text[], $12::text[], $13::bytea[]) AS v(field, masked_value, sealed)
    ON CONFLICT DO NOTHING
)
INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id,
                         locale, app_version, sent_at, create_date, masking_scheme)
SELECT message_id, user_id, device_type, masked_ip, masked_device_id,
       locale, app_version, sent_at, create_date, $10
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::text[], $8::timestamptz[], $9::date[])
     AS batch(message_id, user_id, device_type, masked_ip, masked_device_id,
              locale, app_version, sent_at, create_date)
ON CONFLICT DO NOTHING
