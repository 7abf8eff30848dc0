-- Organisations, their API keys and webhook endpoints; occurrences (one per
-- publish) and deliveries (one per occurrence and subscribed endpoint), with
-- every attempt of each delivery.

CREATE TABLE orgs (
    org_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ts  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    api_key_id  TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (org_id),
    name        TEXT NOT NULL,
    public_key  TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_ts  INTEGER NOT NULL
);

CREATE TABLE endpoints (
    row_id            INTEGER PRIMARY KEY,
    endpoint_id       TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL,
    url               TEXT NOT NULL,
    subscribed_events TEXT NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_ts        INTEGER NOT NULL,
    updated_ts        INTEGER NOT NULL
);
CREATE INDEX endpoints_by_org ON endpoints (org_id, created_ts);

CREATE TABLE occurrences (
    row_id          INTEGER PRIMARY KEY,
    occurrence_id   TEXT NOT NULL UNIQUE,
    org_id          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    idempotency_key TEXT,
    created_ts      INTEGER NOT NULL
);
CREATE UNIQUE INDEX occurrences_by_idempotency_key
    ON occurrences (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- state: pending | succeeded | failed. While leased, next_attempt_at is the
-- lease expiry, so a delivery whose node died is due again when it passes.
CREATE TABLE deliveries (
    row_id          INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    parent_id       TEXT NOT NULL,
    event_type      TEXT,
    url             TEXT NOT NULL,
    body            BLOB NOT NULL,
    created_ts      INTEGER NOT NULL,
    updated_ts      INTEGER NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_org ON deliveries (org_id, kind, created_ts);
CREATE INDEX deliveries_by_target ON deliveries (target_id, created_ts);
CREATE INDEX deliveries_by_parent ON deliveries (parent_id);

CREATE TABLE attempts (
    row_id             INTEGER PRIMARY KEY,
    delivery_id        TEXT NOT NULL,
    attempt_no         INTEGER NOT NULL,
    created_ts         INTEGER NOT NULL,
    request_headers    TEXT NOT NULL,
    response_status    INTEGER,
    response_body      BLOB NOT NULL,
    response_truncated INTEGER NOT NULL,
    response_time_ms   INTEGER NOT NULL,
    success            INTEGER NOT NULL,
    failure_reason     TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, row_id);
