-- One batch, one statement, one round trip: the INSERT lives in insert_login_batch
-- (migrations/0009_policy_columns.sql, the overload with the masking key's id, the ip prefix,
-- the extras and the policy's own-column fields), whose plan the server caches. Sent by
-- src/adapters/loader.rs as an unnamed statement; checked by sqlx at compile time.
SELECT insert_login_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::text[], $7::text[], $8::timestamptz[], $9::date[], $10::text,
                          $11::text[], $12::text[], $13::bytea[], $14::text, $15::text,
                          $16::text[], $17::text[], $18::text[]) AS "inserted!"
