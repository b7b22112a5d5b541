-- The media repository: metadata here, files under media_store_path.
CREATE TABLE media (
    media_id      TEXT PRIMARY KEY,
    media_type    TEXT,
    media_length  BIGINT,
    upload_name   TEXT,
    user_id       TEXT NOT NULL,
    created_ts    BIGINT NOT NULL,
    -- Created through /media/v1/create and not uploaded yet.
    pending       BOOLEAN NOT NULL DEFAULT FALSE,
    -- Only served through the authenticated endpoints (enable_authenticated_media).
    authenticated BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE media_thumbnails (
    media_id      TEXT NOT NULL REFERENCES media (media_id),
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    method        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    media_length  BIGINT NOT NULL,
    PRIMARY KEY (media_id, width, height, method)
);
