-- The portal: signed-in sessions, and indexes for its searches across all
-- of an organisation's endpoints.
--
-- A session is found by the SHA-256 of its cookie value, so that a copy of
-- the database does not hand out live sessions. org_id is the organisation
-- the pages show; an admin session (api_key_id NULL, admin 1) may switch it.
CREATE TABLE portal_sessions (
    session_hash TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    api_key_id   TEXT,
    admin        INTEGER NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_ts   INTEGER NOT NULL,
    expires_ts   INTEGER NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_ts);

-- Event and callback message lists filtered by status or by event type walk
-- one of these newest first and stop after a page, however many rows the
-- organisation has.
CREATE INDEX deliveries_by_org_state ON deliveries (org_id, kind, state, created_ts, row_id);
CREATE INDEX deliveries_by_org_type ON deliveries (org_id, kind, event_type, created_ts, row_id);
CREATE INDEX callback_messages_by_org_status
    ON callback_messages (org_id, status, created_ts, row_id);

-- Callback messages looked up by one of their transaction's ids.
CREATE INDEX callback_messages_by_transaction ON callback_messages (org_id, transaction_id);
CREATE INDEX callback_messages_by_request_id ON callback_messages (org_id, request_id);
CREATE INDEX callback_messages_by_wallet ON callback_messages (org_id, wallet_id);
