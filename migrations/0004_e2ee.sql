-- End-to-end encryption support: device and one-time keys, to-device messages, device list
-- changes, cross-signing keys and signatures, server-side key backup.

CREATE TABLE device_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    key_json    JSONB NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE one_time_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    key_json    JSONB NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);

CREATE TABLE fallback_keys (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    key_json    JSONB NOT NULL,
    used        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- Whose devices or cross-signing keys changed, in stream order (for sync and /keys/changes).
CREATE SEQUENCE device_list_stream;
CREATE TABLE device_list_changes (
    stream_id   BIGINT NOT NULL DEFAULT nextval('device_list_stream') PRIMARY KEY,
    user_id     TEXT NOT NULL
);
CREATE INDEX device_list_changes_by_user ON device_list_changes (user_id, stream_id);

CREATE SEQUENCE to_device_stream;
CREATE TABLE to_device_messages (
    stream_id   BIGINT NOT NULL DEFAULT nextval('to_device_stream') PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    message     JSONB NOT NULL
);
CREATE INDEX to_device_by_device ON to_device_messages (user_id, device_id, stream_id);

CREATE TABLE to_device_txns (
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

CREATE TABLE cross_signing_keys (
    user_id     TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    key_json    JSONB NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded for keys: of a user's own devices and master key, or of another user's
-- master key (shown only to the signer).
CREATE TABLE key_signatures (
    target_user   TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signer_user   TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    signature     TEXT NOT NULL,
    PRIMARY KEY (target_user, target_key_id, signer_user, signer_key_id)
);

CREATE TABLE room_key_backups (
    user_id     TEXT NOT NULL,
    version     BIGSERIAL,
    algorithm   TEXT NOT NULL,
    auth_data   JSONB NOT NULL,
    etag        BIGINT NOT NULL DEFAULT 0,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE room_keys (
    user_id     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    room_id     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified BOOLEAN NOT NULL,
    session_data JSONB NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
