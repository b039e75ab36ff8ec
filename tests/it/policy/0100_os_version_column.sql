-- A deployment's own migration, as docs/schema.md ("A field with a column of its own") shows
-- it: the column a field policy's `"x-landing": {"column": "os_version"}` names. Run by the
-- table's owner (psql -f), not part of login-etl's migrations/: the release does not change.
-- The loader role's INSERT on user_logins covers the new column; partitions get it too.
ALTER TABLE public.user_logins ADD COLUMN os_version varchar(16);
