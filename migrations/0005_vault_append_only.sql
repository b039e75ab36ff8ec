-- The vault becomes append-only: it tells the loader nothing and nothing the loader writes can
-- hide a genuine original.
--
-- Before, one row per (field, masked_value) and `ON CONFLICT DO NOTHING`: an INSERT with the
-- loader's credentials answered "INSERT 0 0" when a guessed value was already in the vault (a
-- membership oracle), and a planted row made the genuine ciphertext be dropped later. Now
-- every sealed value is a row of its own (insert_login_batch, 0004, inserts without ON
-- CONFLICT), no insert can conflict, and `recover` keeps only
-- rows that open with the private key into an original that re-masks to their masked value.
-- The cost: a value seen in several batches is stored once per batch (batches still seal each
-- distinct value once).
ALTER TABLE pii_vault.sealed_values DROP CONSTRAINT sealed_values_pkey;
ALTER TABLE pii_vault.sealed_values ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE INDEX sealed_values_masked_value_idx ON pii_vault.sealed_values (field, masked_value);
