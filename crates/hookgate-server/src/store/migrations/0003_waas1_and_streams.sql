-- WaaS 1.0 callbacks beside 2.0, and occurrence payloads for listeners.
--
-- protocol: 'waas2' (default) or 'waas1'. A WaaS 1.0 transaction
-- notification URL is an endpoint with protocol 'waas1' and no
-- subscription; a 1.0 withdrawal confirmation URL is a callback endpoint
-- with protocol 'waas1' that answers for the whole organisation. Traffic of
-- one protocol never goes to an endpoint of the other.

ALTER TABLE endpoints ADD COLUMN protocol TEXT NOT NULL DEFAULT 'waas2';
ALTER TABLE callback_endpoints ADD COLUMN protocol TEXT NOT NULL DEFAULT 'waas2';
ALTER TABLE callback_messages ADD COLUMN protocol TEXT NOT NULL DEFAULT 'waas2';

-- The occurrence's data, exactly as serialised into its events, so that
-- listeners that were away can be sent what they missed.
ALTER TABLE occurrences ADD COLUMN data BLOB;
CREATE INDEX occurrences_by_org ON occurrences (org_id, created_ts, row_id);
