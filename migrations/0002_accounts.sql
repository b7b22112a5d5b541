-- Accounts, sessions and devices (client-server API: registration, login, devices,
-- profiles, account data).

CREATE TABLE devices (
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    device_id     TEXT NOT NULL,
    display_name  TEXT,
    last_seen_ip  TEXT,
    last_seen_ts  BIGINT,
    last_seen_user_agent TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- Access tokens are stored as SHA-256 hashes: a database dump hands out no sessions.
CREATE TABLE access_tokens (
    token_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    device_id     TEXT NOT NULL,
    created_ts    BIGINT NOT NULL,
    expires_ts    BIGINT,
    refresh_token_hash BYTEA
);
CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id);

CREATE TABLE refresh_tokens (
    token_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    device_id     TEXT NOT NULL,
    created_ts    BIGINT NOT NULL,
    expires_ts    BIGINT
);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (user_id, device_id);

-- User-interactive authentication sessions.
CREATE TABLE ui_auth_sessions (
    session_id    TEXT PRIMARY KEY,
    created_ts    BIGINT NOT NULL,
    method        TEXT NOT NULL,
    uri           TEXT NOT NULL,
    client_dict   JSONB NOT NULL,
    completed     JSONB NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE registration_tokens (
    token         TEXT PRIMARY KEY,
    uses_allowed  INTEGER,
    pending       INTEGER NOT NULL DEFAULT 0,
    completed     INTEGER NOT NULL DEFAULT 0,
    expiry_time   BIGINT
);

CREATE TABLE profiles (
    user_id       TEXT PRIMARY KEY REFERENCES users (user_id),
    displayname   TEXT,
    avatar_url    TEXT
);

-- Account data, global (room_id '') and per room, with a stream position for sync.
CREATE SEQUENCE account_data_stream;
CREATE TABLE account_data (
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    room_id       TEXT NOT NULL DEFAULT '',
    data_type     TEXT NOT NULL,
    content       JSONB NOT NULL,
    stream_id     BIGINT NOT NULL DEFAULT nextval('account_data_stream'),
    PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX account_data_by_stream ON account_data (user_id, stream_id);
