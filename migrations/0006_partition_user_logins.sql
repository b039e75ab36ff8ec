-- user_logins becomes partitioned by month of create_date, converted in place, every row kept.
--
-- Why: retention then drops whole months (DETACH + DROP, no row-by-row DELETE, no bloat), and
-- each month's indexes stay the size of a month.
--
-- What changes for the rows:
-- - create_date is the partition key, so the unique key that makes loads idempotent becomes
--   (message_id, create_date). That still catches every redelivery because create_date is the
--   UTC date of the message's *original* SentTimestamp (src/batch.rs): SQS keeps SentTimestamp
--   on every redelivery and on the move to the DLQ, and `login-etl-cli redrive` carries it in
--   the LoginEtlOriginalSentTimestamp attribute beside the original identity.
-- - id: PostgreSQL 15 has no identity columns on partitioned tables, so id takes its default
--   from a sequence that continues where the identity stopped. It stays unique per row; the
--   table's unique key for it is (id, create_date), as a partitioned key must hold the
--   partition key.
-- - A row whose month has no partition yet lands in user_logins_default instead of failing;
--   login_etl_maintain_partitions (below; run by `migrate` and `login-etl-cli partitions`)
--   gives that month its partition and moves the rows there. Rows without a create_date
--   (possible only from the take-home era's table) stay in the default partition.

LOCK TABLE public.user_logins IN ACCESS EXCLUSIVE MODE;

ALTER TABLE public.user_logins RENAME TO user_logins_unpartitioned;
ALTER TABLE public.user_logins_unpartitioned RENAME CONSTRAINT user_logins_pkey TO user_logins_unpartitioned_pkey;
ALTER TABLE public.user_logins_unpartitioned
    RENAME CONSTRAINT user_logins_message_id_key TO user_logins_unpartitioned_message_id_key;
ALTER INDEX public.user_logins_user_id_idx RENAME TO user_logins_unpartitioned_user_id_idx;
-- Frees the name user_logins_id_seq; the new sequence starts after the highest id.
ALTER TABLE public.user_logins_unpartitioned ALTER COLUMN id DROP IDENTITY;

CREATE SEQUENCE public.user_logins_id_seq AS bigint;

-- The same columns in the same order as before.
CREATE TABLE public.user_logins (
    user_id          varchar(128),
    device_type      varchar(32),
    masked_ip        varchar(256),
    masked_device_id varchar(256),
    locale           varchar(32),
    app_version      varchar(32),
    create_date      date,
    id               bigint NOT NULL DEFAULT nextval('public.user_logins_id_seq'),
    message_id       varchar(128),
    sent_at          timestamptz,
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    masking_scheme   varchar(16),
    CONSTRAINT user_logins_message_id_key UNIQUE (message_id, create_date),
    CONSTRAINT user_logins_id_key UNIQUE (id, create_date)
) PARTITION BY RANGE (create_date);

ALTER SEQUENCE public.user_logins_id_seq OWNED BY public.user_logins.id;
SELECT setval('public.user_logins_id_seq',
              COALESCE((SELECT max(id) FROM public.user_logins_unpartitioned), 0) + 1, false);

CREATE INDEX user_logins_user_id_idx ON public.user_logins (user_id);
CREATE TABLE public.user_logins_default PARTITION OF public.user_logins DEFAULT;

COMMENT ON TABLE public.user_logins IS 'one row per login; partitioned by month of create_date (user_logins_YYYY_MM, user_logins_default)';
COMMENT ON COLUMN public.user_logins.masked_ip IS 'hex HMAC-SHA256 (or SHA-256, see masking_scheme) of the canonical IP text';
COMMENT ON COLUMN public.user_logins.masked_device_id IS 'hex HMAC-SHA256 (or SHA-256, see masking_scheme) of the device id';
COMMENT ON COLUMN public.user_logins.create_date IS 'UTC date of the original SentTimestamp; the partition key';

-- The loader inserts; the id default needs the sequence too.
GRANT INSERT ON public.user_logins TO login_etl_loader;
GRANT USAGE ON SEQUENCE public.user_logins_id_seq TO login_etl_loader;
GRANT SELECT ON public.user_logins TO login_etl_recovery;

-- The eraser: `login-etl-cli erase` runs its one transaction under this role (SET LOCAL ROLE).
-- It may find and delete logins and vault rows, nothing else; the loader is not a member.
DO $$
BEGIN
    CREATE ROLE login_etl_eraser NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT SELECT, DELETE ON public.user_logins TO login_etl_eraser;
GRANT USAGE ON SCHEMA pii_vault TO login_etl_eraser;
GRANT SELECT, DELETE ON pii_vault.sealed_values TO login_etl_eraser;

-- Gives every month that needs one its partition: the months of rows waiting in the default
-- partition (whose rows move into it) and p_today's month with the p_months_ahead after it.
-- Idempotent. Run by the table's owner (migrate, `login-etl-cli partitions`, retention).
--
-- A new month's table is filled first and then attached, so the move holds no lock on
-- user_logins that stops the loader: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent (the
-- default partition, scanned to prove it holds none of the month's rows any more, is locked
-- for that scan).
CREATE FUNCTION public.login_etl_maintain_partitions(p_today date, p_months_ahead integer)
RETURNS TABLE (partition_name text, month date, rows_moved bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    next_month date;
BEGIN
    IF p_months_ahead < 0 THEN
        RAISE EXCEPTION 'p_months_ahead must be >= 0, not %', p_months_ahead;
    END IF;
    FOR month IN
        SELECT DISTINCT date_trunc('month', d.create_date)::date
        FROM public.user_logins_default AS d
        WHERE d.create_date IS NOT NULL
        UNION
        SELECT m::date
        FROM generate_series(date_trunc('month', p_today),
                             date_trunc('month', p_today) + make_interval(months => p_months_ahead),
                             interval '1 month') AS m
        ORDER BY 1
    LOOP
        partition_name := 'user_logins_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('public.%I', partition_name)) IS NOT NULL;
        next_month := (month + interval '1 month')::date;
        EXECUTE format('CREATE TABLE public.%I (LIKE public.user_logins INCLUDING DEFAULTS)', partition_name);
        EXECUTE format(
            'WITH moved AS (DELETE FROM public.user_logins_default
                            WHERE create_date >= $1 AND create_date < $2 RETURNING *)
             INSERT INTO public.%I SELECT * FROM moved', partition_name)
            USING month, next_month;
        GET DIAGNOSTICS rows_moved = ROW_COUNT;
        -- The CHECK lets ATTACH skip scanning the new table; it is dropped once attached.
        EXECUTE format(
            'ALTER TABLE public.%I ADD CONSTRAINT %I CHECK (create_date IS NOT NULL AND create_date >= %L AND create_date < %L)',
            partition_name, partition_name || '_range', month, next_month);
        EXECUTE format('ALTER TABLE public.user_logins ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                       partition_name, month, next_month);
        EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', partition_name, partition_name || '_range');
        RETURN NEXT;
    END LOOP;
END
$$;

-- Detaches and drops every monthly partition that ends on or before p_cutoff (whole months
-- only; the default partition is never dropped) and says what each held. Run by the owner.
-- lock_timeout bounds how long it waits behind the loader's inserts for the brief exclusive
-- lock DETACH needs on user_logins; a timeout fails the run, which is safe to repeat.
CREATE FUNCTION public.login_etl_drop_partitions_before(p_cutoff date)
RETURNS TABLE (partition_name text, month date, rows_dropped bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    child regclass;
    range_end date;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    FOR child, month, range_end IN
        SELECT i.inhrelid::regclass, bounds[1]::date, bounds[2]::date
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                        '^FOR VALUES FROM \(''([0-9-]+)''\) TO \(''([0-9-]+)''\)$') AS bounds
        WHERE i.inhparent = 'public.user_logins'::regclass
          AND bounds[2]::date <= p_cutoff
        ORDER BY 2
    LOOP
        partition_name := child::text;
        EXECUTE format('SELECT count(*) FROM %s', child) INTO rows_dropped;
        EXECUTE format('ALTER TABLE public.user_logins DETACH PARTITION %s', child);
        EXECUTE format('DROP TABLE %s', child);
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION public.login_etl_maintain_partitions FROM PUBLIC;
REVOKE ALL ON FUNCTION public.login_etl_drop_partitions_before FROM PUBLIC;

-- Every month the old rows need, and the next three, then the rows themselves.
SELECT count(*) FROM public.login_etl_maintain_partitions(current_date, 3);
INSERT INTO public.user_logins (user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                                create_date, id, message_id, sent_at, loaded_at, masking_scheme)
SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version,
       create_date, id, message_id, sent_at, loaded_at, masking_scheme
FROM public.user_logins_unpartitioned;
-- Rows that went to the default partition move to partitions of their months.
SELECT count(*) FROM public.login_etl_maintain_partitions(current_date, 3);
DROP TABLE public.user_logins_unpartitioned;
