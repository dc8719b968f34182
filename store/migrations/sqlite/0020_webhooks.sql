-- Received Kinde webhooks. Times are unix milliseconds.

-- One verified delivery. webhook_id is the webhook-id header (the event id
-- when the header is missing); event_id is unique too, so a signed body
-- replayed under another webhook-id is still a duplicate. status moves
-- received → processed | ignored | failed; payload is the verified JSON.
CREATE TABLE webhook_events (
    webhook_id   TEXT PRIMARY KEY,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    source       TEXT NOT NULL DEFAULT '',
    event_at     BIGINT NOT NULL DEFAULT 0,
    received_at  BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'received',
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT '',
    fanout_id    TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL,
    processed_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX webhook_events_event_id ON webhook_events (event_id);
CREATE INDEX webhook_events_received_at ON webhook_events (received_at);

-- Deliveries refused before they were recorded (bad signature, malformed,
-- too large...). Kept for the admin page; never holds the body.
CREATE TABLE webhook_rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at BIGINT NOT NULL,
    http_status INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    webhook_id  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_rejections_received_at ON webhook_rejections (received_at);
