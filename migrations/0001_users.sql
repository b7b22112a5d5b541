-- Local accounts. A deactivated user id is kept so it is never reused.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT,
    admin         BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest      BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated   BOOLEAN NOT NULL DEFAULT FALSE,
    creation_ts   BIGINT NOT NULL
);
