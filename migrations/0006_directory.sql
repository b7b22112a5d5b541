-- The public room directory, content reports and OpenID tokens.
ALTER TABLE rooms ADD COLUMN published BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE event_reports (
    report_id   BIGSERIAL PRIMARY KEY,
    reporter    TEXT NOT NULL,
    room_id     TEXT,
    event_id    TEXT,
    target_user TEXT,
    reason      TEXT,
    score       INTEGER,
    created_ts  BIGINT NOT NULL
);

CREATE TABLE openid_tokens (
    token_hash  BYTEA PRIMARY KEY,
    user_id     TEXT NOT NULL,
    expires_ts  BIGINT NOT NULL
);
