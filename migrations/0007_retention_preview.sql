-- What `login-etl-cli retention --dry-run` prints: the months retention would drop and the
-- rows each holds, changing nothing.
--
-- The same months as login_etl_drop_partitions_before (0006): every monthly partition that
-- ends on or before p_cutoff. Rows still waiting in the default partition for a month before
-- the cutoff are listed under the partition retention would first give them
-- (login_etl_maintain_partitions) and then drop with them. STABLE: it reads, never writes,
-- and takes no lock stronger than a SELECT's.
CREATE FUNCTION public.login_etl_partitions_before(p_cutoff date)
RETURNS TABLE (partition_name text, month date, row_count bigint)
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    child regclass;
BEGIN
    FOR child, month IN
        SELECT i.inhrelid::regclass, bounds[1]::date
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                        '^FOR VALUES FROM \(''([0-9-]+)''\) TO \(''([0-9-]+)''\)$') AS bounds
        WHERE i.inhparent = 'public.user_logins'::regclass
          AND bounds[2]::date <= p_cutoff
        ORDER BY 2
    LOOP
        partition_name := child::text;
        EXECUTE format('SELECT count(*) FROM %s', child) INTO row_count;
        RETURN NEXT;
    END LOOP;
    RETURN QUERY
        SELECT 'user_logins_' || to_char(waiting.month, 'YYYY_MM'), waiting.month, count(*)
        FROM (SELECT date_trunc('month', d.create_date)::date AS month
              FROM public.user_logins_default AS d
              WHERE d.create_date < p_cutoff) AS waiting
        GROUP BY waiting.month
        ORDER BY waiting.month;
END
$$;

REVOKE ALL ON FUNCTION public.login_etl_partitions_before FROM PUBLIC;
