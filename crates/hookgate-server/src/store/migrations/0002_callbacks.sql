-- Approval callbacks: endpoints linked to API keys, one message per
-- transaction asked about, and one delivery per (message, callback
-- endpoint) in the deliveries table with kind 'callback'.

CREATE TABLE callback_endpoints (
    row_id               INTEGER PRIMARY KEY,
    callback_endpoint_id TEXT NOT NULL UNIQUE,
    org_id               TEXT NOT NULL,
    api_key_id           TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               TEXT NOT NULL,
    description          TEXT NOT NULL,
    created_ts           INTEGER NOT NULL,
    updated_ts           INTEGER NOT NULL
);
CREATE INDEX callback_endpoints_by_org ON callback_endpoints (org_id, created_ts);
CREATE INDEX callback_endpoints_by_key ON callback_endpoints (api_key_id);

-- status: Retrying | Approved | Denied | Failed. Approved and Denied are
-- final; only a manual retry moves Failed back to Retrying.
CREATE TABLE callback_messages (
    row_id         INTEGER PRIMARY KEY,
    message_id     TEXT NOT NULL UNIQUE,
    org_id         TEXT NOT NULL,
    api_key_id     TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    wallet_id      TEXT NOT NULL,
    body           BLOB NOT NULL,
    status         TEXT NOT NULL,
    result         TEXT,
    created_ts     INTEGER NOT NULL,
    updated_ts     INTEGER NOT NULL
);
CREATE UNIQUE INDEX callback_messages_by_request
    ON callback_messages (org_id, api_key_id, request_id, transaction_id);
CREATE INDEX callback_messages_by_org ON callback_messages (org_id, created_ts);

-- The answer a callback delivery got: 'ok' or 'deny'.
ALTER TABLE deliveries ADD COLUMN result TEXT;
