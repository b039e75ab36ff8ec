-- `retention --dry-run`: the vault rows retention's sweep (sweep_vault.sql) would remove once
-- the months before $1 are dropped, i.e. those whose masked value no login from $1 on (or
-- without a date, kept in the default partition) references. Reads only.
SELECT count(*) AS "removed!"
FROM pii_vault.sealed_values AS v
WHERE (v.field = 'ip'
       AND NOT EXISTS (SELECT 1 FROM user_logins AS u
                       WHERE u.masked_ip = v.masked_value
                         AND (u.create_date >= $1 OR u.create_date IS NULL)))
   OR (v.field = 'device_id'
       AND NOT EXISTS (SELECT 1 FROM user_logins AS u
                       WHERE u.masked_device_id = v.masked_value
                         AND (u.create_date >= $1 OR u.create_date IS NULL)))
