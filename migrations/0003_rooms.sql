-- Rooms and their events (client-server API rooms; the event pipeline of docs/architecture.md).
-- Hot identifiers are interned: event_nid, room_nid, state_key_nid.

CREATE TABLE rooms (
    room_nid      BIGSERIAL PRIMARY KEY,
    room_id       TEXT NOT NULL UNIQUE,
    room_version  TEXT NOT NULL,
    created_ts    BIGINT NOT NULL
);

CREATE TABLE state_keys (
    state_key_nid BIGSERIAL PRIMARY KEY,
    type          TEXT NOT NULL,
    state_key     TEXT NOT NULL,
    UNIQUE (type, state_key)
);

-- A state group is a delta over prev_group, or a full snapshot when prev_group is NULL;
-- chains are cut with a snapshot every so often so a lookup reads a bounded chain.
CREATE TABLE state_groups (
    group_id      BIGSERIAL PRIMARY KEY,
    room_nid      BIGINT NOT NULL REFERENCES rooms (room_nid),
    prev_group    BIGINT REFERENCES state_groups (group_id),
    chain_length  INTEGER NOT NULL
);
CREATE TABLE state_group_entries (
    group_id      BIGINT NOT NULL REFERENCES state_groups (group_id),
    state_key_nid BIGINT NOT NULL,
    event_nid     BIGINT NOT NULL,
    PRIMARY KEY (group_id, state_key_nid)
);

-- Stream positions for sync: every persisted (non-outlier) event gets the next one.
CREATE SEQUENCE events_stream;
CREATE TABLE events (
    event_nid       BIGSERIAL PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    room_nid        BIGINT NOT NULL REFERENCES rooms (room_nid),
    stream_ordering BIGINT UNIQUE,
    depth           BIGINT NOT NULL,
    type            TEXT NOT NULL,
    state_key       TEXT,
    sender          TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    json            TEXT NOT NULL,
    rejected_reason TEXT,
    redacted_by     TEXT,
    state_group     BIGINT REFERENCES state_groups (group_id)
);
CREATE INDEX events_by_room_stream ON events (room_nid, stream_ordering);

CREATE TABLE event_auth (
    event_nid      BIGINT NOT NULL REFERENCES events (event_nid),
    auth_event_nid BIGINT NOT NULL REFERENCES events (event_nid),
    PRIMARY KEY (event_nid, auth_event_nid)
);

CREATE TABLE forward_extremities (
    room_nid  BIGINT NOT NULL REFERENCES rooms (room_nid),
    event_nid BIGINT NOT NULL REFERENCES events (event_nid),
    PRIMARY KEY (room_nid, event_nid)
);

CREATE TABLE current_state (
    room_nid      BIGINT NOT NULL REFERENCES rooms (room_nid),
    state_key_nid BIGINT NOT NULL REFERENCES state_keys (state_key_nid),
    event_nid     BIGINT NOT NULL REFERENCES events (event_nid),
    PRIMARY KEY (room_nid, state_key_nid)
);

-- Current membership of every user in every room, for room lists and sync.
CREATE TABLE room_memberships (
    room_nid        BIGINT NOT NULL REFERENCES rooms (room_nid),
    user_id         TEXT NOT NULL,
    membership      TEXT NOT NULL,
    event_nid       BIGINT NOT NULL REFERENCES events (event_nid),
    stream_ordering BIGINT NOT NULL,
    forgotten       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room_nid, user_id)
);
CREATE INDEX room_memberships_by_user ON room_memberships (user_id, membership);
CREATE INDEX room_memberships_by_stream ON room_memberships (user_id, stream_ordering);

-- Filters uploaded by clients for /sync.
CREATE TABLE user_filters (
    user_id    TEXT NOT NULL,
    filter_id  BIGSERIAL,
    filter     JSONB NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- Client transaction ids: a retried send returns the first event.
CREATE TABLE event_txn_ids (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX event_txn_ids_by_event ON event_txn_ids (event_id);

-- Read receipts (m.read, m.read.private; per thread), with a stream position for sync.
CREATE SEQUENCE receipts_stream;
CREATE TABLE receipts (
    room_nid      BIGINT NOT NULL REFERENCES rooms (room_nid),
    user_id       TEXT NOT NULL,
    receipt_type  TEXT NOT NULL,
    thread_id     TEXT NOT NULL DEFAULT '',
    event_id      TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    stream_id     BIGINT NOT NULL DEFAULT nextval('receipts_stream'),
    PRIMARY KEY (room_nid, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_by_stream ON receipts (room_nid, stream_id);

-- Relations (m.relates_to): edits, threads, references, annotations; for /relations,
-- /threads and bundled aggregations.
CREATE TABLE event_relations (
    event_nid       BIGINT PRIMARY KEY REFERENCES events (event_nid),
    room_nid        BIGINT NOT NULL REFERENCES rooms (room_nid),
    relates_to_id   TEXT NOT NULL,
    rel_type        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    sender          TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_by_parent ON event_relations (relates_to_id, rel_type, stream_ordering);
CREATE INDEX event_relations_threads ON event_relations (room_nid, rel_type, stream_ordering);

-- Local room aliases (#name:server_name -> room id).
CREATE TABLE room_aliases (
    room_alias  TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    creator     TEXT NOT NULL
);
CREATE INDEX room_aliases_by_room ON room_aliases (room_id);
