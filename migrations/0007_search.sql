-- Full-text search over message bodies, room names and topics.
CREATE TABLE event_search (
    event_nid       BIGINT PRIMARY KEY REFERENCES events (event_nid),
    room_nid        BIGINT NOT NULL REFERENCES rooms (room_nid),
    stream_ordering BIGINT NOT NULL,
    key             TEXT NOT NULL,
    vector          TSVECTOR NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
CREATE INDEX event_search_by_room ON event_search (room_nid, stream_ordering);
