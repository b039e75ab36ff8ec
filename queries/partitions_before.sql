-- `retention --dry-run`: the partitions drop_partitions_before.sql would drop at $1 and the rows
-- each holds now (login_etl_partitions_before, migrations/0007). Reads only.
SELECT partition_name AS "partition!", month AS "month!", row_count AS "rows_dropped!"
FROM login_etl_partitions_before($1)
