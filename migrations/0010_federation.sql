-- Federation: other servers' keys, per-destination outbound queues and backoff, inbound
-- transaction deduplication, and which servers are in each room.

-- Server keys we fetched (directly or through a notary), with the signed document they came in,
-- which we serve again as a notary.
CREATE TABLE server_keys (
    server_name    TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    verify_key     TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts     BIGINT,
    key_json       TEXT NOT NULL,
    fetched_ts     BIGINT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);

-- Backoff for servers that did not answer.
CREATE TABLE federation_destinations (
    destination       TEXT PRIMARY KEY,
    failure_ts        BIGINT,
    retry_last_ts     BIGINT NOT NULL DEFAULT 0,
    retry_interval_ms BIGINT NOT NULL DEFAULT 0
);

-- PDUs waiting to be sent: written in the transaction that persists the event, deleted once
-- the destination acknowledged them.
CREATE TABLE federation_pdu_queue (
    destination TEXT NOT NULL,
    event_nid   BIGINT NOT NULL REFERENCES events (event_nid),
    PRIMARY KEY (destination, event_nid)
);

CREATE TABLE federation_edu_queue (
    queue_id    BIGSERIAL PRIMARY KEY,
    destination TEXT NOT NULL,
    edu_type    TEXT NOT NULL,
    content     TEXT NOT NULL
);
CREATE INDEX federation_edu_queue_by_destination ON federation_edu_queue (destination, queue_id);

-- Inbound transactions already processed: a retried transaction gets the same answer.
CREATE TABLE federation_inbound_txns (
    origin      TEXT NOT NULL,
    txn_id      TEXT NOT NULL,
    response    TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    PRIMARY KEY (origin, txn_id)
);

-- Invites from other servers: the stripped state the client shows before joining.
CREATE TABLE remote_invites (
    room_nid     BIGINT NOT NULL REFERENCES rooms (room_nid),
    user_id      TEXT NOT NULL,
    invite_state TEXT NOT NULL,
    PRIMARY KEY (room_nid, user_id)
);

-- The server of each member (user ids split on the first colon), for "which servers are in this room".
ALTER TABLE room_memberships
    ADD COLUMN server TEXT GENERATED ALWAYS AS (substring(user_id from position(':' in user_id) + 1)) STORED;
CREATE INDEX room_memberships_by_server ON room_memberships (room_nid, server) WHERE membership = 'join';
-- Membership changes of a room by position (who came to share or stopped sharing a room, for device lists).
CREATE INDEX room_memberships_by_room_stream ON room_memberships (room_nid, stream_ordering);

-- Media of other servers, fetched over federation and cached under media_store_path/remote_content.
CREATE TABLE remote_media (
    server_name   TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    media_length  BIGINT NOT NULL,
    upload_name   TEXT,
    fetched_ts    BIGINT NOT NULL,
    PRIMARY KEY (server_name, media_id)
);

CREATE TABLE remote_media_thumbnails (
    server_name   TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    method        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    media_length  BIGINT NOT NULL,
    PRIMARY KEY (server_name, media_id, width, height, method)
);

-- Events fetched from other servers' history (backfill) take positions below every live one.
CREATE SEQUENCE backfill_stream START WITH -1 INCREMENT BY -1 MAXVALUE -1;
