-- Other servers' users' device lists, kept while a room is shared with them (their servers then
-- send each change): key queries are answered from here, and still are while a server is down.
-- `stale` when an update arrived out of order: the next query fetches the list again.
CREATE TABLE remote_device_lists (
    user_id          TEXT PRIMARY KEY,
    stream_id        BIGINT NOT NULL,
    devices          JSONB NOT NULL,
    master_key       JSONB,
    self_signing_key JSONB,
    stale            BOOLEAN NOT NULL DEFAULT false
);
