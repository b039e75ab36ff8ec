-- The table as the original take-home schema defined it, which existing readers query.
-- IF NOT EXISTS: a database that already holds this table (and its data) is adopted as it is,
-- and the next migration upgrades it in place.
CREATE TABLE IF NOT EXISTS user_logins (
    user_id          varchar(128),
    device_type      varchar(32),
    masked_ip        varchar(256),
    masked_device_id varchar(256),
    locale           varchar(32),
    app_version      integer,
    create_date      date
);
