-- Webhook copies stored from this version on keep an empty body: their body
-- is rebuilt from the occurrence's data when read. Builds that predate this
-- would send the empty body, so the version number moves on and they refuse
-- the database.
--
-- The due index also carries the endpoint, so that a claim can walk past the
-- due rows of endpoints whose slots are full without reading the table.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, target_id) WHERE state = 'pending';
