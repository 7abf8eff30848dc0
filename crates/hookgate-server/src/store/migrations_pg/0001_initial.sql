-- The whole schema of the PostgreSQL store, as of SQLite schema version 4:
-- organisations and API keys; webhook and callback endpoints; occurrences
-- (one per publish) with their data; deliveries (webhook event copies,
-- callback deliveries and WaaS 1.0 traffic) with every attempt; callback
-- messages; portal sessions.
--
-- Columns mean what they mean in ../migrations/*.sql. Differences: row ids
-- are identity columns, bodies are BYTEA, flags are BOOLEAN, timestamps
-- stay BIGINT Unix milliseconds.

CREATE TABLE orgs (
    org_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ts  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    api_key_id  TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (org_id),
    name        TEXT NOT NULL,
    public_key  TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_ts  BIGINT NOT NULL
);
CREATE INDEX api_keys_by_public_key ON api_keys (public_key);

-- subscribed_events: a JSON array of event types.
CREATE TABLE endpoints (
    row_id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id       TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL,
    url               TEXT NOT NULL,
    subscribed_events TEXT NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_ts        BIGINT NOT NULL,
    updated_ts        BIGINT NOT NULL,
    protocol          TEXT NOT NULL DEFAULT 'waas2'
);
CREATE INDEX endpoints_by_org ON endpoints (org_id, created_ts);

CREATE TABLE occurrences (
    row_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurrence_id   TEXT NOT NULL UNIQUE,
    org_id          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    idempotency_key TEXT,
    created_ts      BIGINT NOT NULL,
    data            BYTEA
);
CREATE UNIQUE INDEX occurrences_by_idempotency_key
    ON occurrences (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX occurrences_by_org ON occurrences (org_id, created_ts, row_id);

-- state: pending | succeeded | failed | cancelled. While leased,
-- next_attempt_at is the lease expiry, so a delivery whose node died is due
-- again when it passes.
CREATE TABLE deliveries (
    row_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    parent_id       TEXT NOT NULL,
    event_type      TEXT,
    url             TEXT NOT NULL,
    body            BYTEA NOT NULL,
    created_ts      BIGINT NOT NULL,
    updated_ts      BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    result          TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_org ON deliveries (org_id, kind, created_ts);
CREATE INDEX deliveries_by_target ON deliveries (target_id, created_ts);
CREATE INDEX deliveries_by_parent ON deliveries (parent_id);
CREATE INDEX deliveries_by_org_state ON deliveries (org_id, kind, state, created_ts, row_id);
CREATE INDEX deliveries_by_org_type ON deliveries (org_id, kind, event_type, created_ts, row_id);

CREATE TABLE attempts (
    row_id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id        TEXT NOT NULL,
    attempt_no         INTEGER NOT NULL,
    created_ts         BIGINT NOT NULL,
    request_headers    TEXT NOT NULL,
    response_status    INTEGER,
    response_body      BYTEA NOT NULL,
    response_truncated BOOLEAN NOT NULL,
    response_time_ms   BIGINT NOT NULL,
    success            BOOLEAN NOT NULL,
    failure_reason     TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, row_id);

CREATE TABLE callback_endpoints (
    row_id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    callback_endpoint_id TEXT NOT NULL UNIQUE,
    org_id               TEXT NOT NULL,
    api_key_id           TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               TEXT NOT NULL,
    description          TEXT NOT NULL,
    created_ts           BIGINT NOT NULL,
    updated_ts           BIGINT NOT NULL,
    protocol             TEXT NOT NULL DEFAULT 'waas2'
);
CREATE INDEX callback_endpoints_by_org ON callback_endpoints (org_id, created_ts);
CREATE INDEX callback_endpoints_by_key ON callback_endpoints (api_key_id);

-- status: Retrying | Approved | Denied | Failed. Approved and Denied are
-- final; only a manual retry moves Failed back to Retrying.
CREATE TABLE callback_messages (
    row_id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id     TEXT NOT NULL UNIQUE,
    org_id         TEXT NOT NULL,
    api_key_id     TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    wallet_id      TEXT NOT NULL,
    body           BYTEA NOT NULL,
    status         TEXT NOT NULL,
    result         TEXT,
    created_ts     BIGINT NOT NULL,
    updated_ts     BIGINT NOT NULL,
    protocol       TEXT NOT NULL DEFAULT 'waas2'
);
CREATE UNIQUE INDEX callback_messages_by_request
    ON callback_messages (org_id, api_key_id, request_id, transaction_id);
CREATE INDEX callback_messages_by_org ON callback_messages (org_id, created_ts);
CREATE INDEX callback_messages_by_org_status
    ON callback_messages (org_id, status, created_ts, row_id);
CREATE INDEX callback_messages_by_transaction ON callback_messages (org_id, transaction_id);
CREATE INDEX callback_messages_by_request_id ON callback_messages (org_id, request_id);
CREATE INDEX callback_messages_by_wallet ON callback_messages (org_id, wallet_id);

-- A session is found by the SHA-256 of its cookie value.
CREATE TABLE portal_sessions (
    session_hash TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    api_key_id   TEXT,
    admin        BOOLEAN NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_ts   BIGINT NOT NULL,
    expires_ts   BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_ts);
