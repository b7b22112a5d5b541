-- When each pusher's pushkey was registered (sent to push gateways as `pushkey_ts`, seconds).
ALTER TABLE pushers ADD COLUMN pushkey_ts BIGINT NOT NULL DEFAULT 0;
