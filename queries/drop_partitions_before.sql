-- Retention's drop: every monthly partition before $1, detached and dropped whole
-- (login_etl_drop_partitions_before, migrations/0006), with the rows each held.
SELECT partition_name AS "partition!", month AS "month!", rows_dropped AS "rows_dropped!"
FROM login_etl_drop_partitions_before($1)
