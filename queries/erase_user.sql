-- Erasure of one person ($1 = user_id), one statement, run under login_etl_eraser.
-- The vault rows to go are those of the person's masked values that no *other* user's login
-- references. Every sub-statement sees the table as it was before the statement, so the
-- person's own rows are excluded by user_id rather than by having been deleted. `still_used`
-- is one hash join per field over user_logins (which has no index on masked values, to keep
-- the insert path lean), however many values the person had.
WITH erased AS (
    DELETE FROM user_logins WHERE user_id = $1
    RETURNING masked_ip, masked_device_id
), used AS (
    SELECT 'ip' AS field, masked_ip AS masked_value FROM erased WHERE masked_ip IS NOT NULL
    UNION
    SELECT 'device_id', masked_device_id FROM erased WHERE masked_device_id IS NOT NULL
), still_used AS (
    SELECT used.field, used.masked_value
    FROM used JOIN user_logins AS u ON u.masked_ip = used.masked_value
    WHERE used.field = 'ip' AND u.user_id IS DISTINCT FROM $1
    UNION
    SELECT used.field, used.masked_value
    FROM used JOIN user_logins AS u ON u.masked_device_id = used.masked_value
    WHERE used.field = 'device_id' AND u.user_id IS DISTINCT FROM $1
), vault AS (
    DELETE FROM pii_vault.sealed_values AS v
    USING used
    WHERE v.field = used.field AND v.masked_value = used.masked_value
      AND NOT EXISTS (SELECT 1 FROM still_used AS s
                      WHERE s.field = used.field AND s.masked_value = used.masked_value)
    RETURNING 1
)
SELECT (SELECT count(*) FROM erased) AS "login_rows!", (SELECT count(*) FROM vault) AS "vault_rows!"
