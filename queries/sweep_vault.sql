-- Retention's last step: vault rows whose masked value no login references any more. One
-- anti-join per field (an OR of the two would probe user_logins once per vault row).
WITH ip AS (
    DELETE FROM pii_vault.sealed_values AS v
    WHERE v.field = 'ip'
      AND NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_ip = v.masked_value)
    RETURNING 1
), device AS (
    DELETE FROM pii_vault.sealed_values AS v
    WHERE v.field = 'device_id'
      AND NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_device_id = v.masked_value)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ip) + (SELECT count(*) FROM device) AS "removed!"
