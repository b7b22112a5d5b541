-- Push rules, notification counts and pushers.
CREATE TABLE push_rules (
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    position    DOUBLE PRECISION NOT NULL,
    pattern     TEXT,
    conditions  JSONB NOT NULL DEFAULT '[]'::jsonb,
    actions     JSONB NOT NULL,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- Changes users make to rules: enabling or disabling, and new actions (also of predefined rules).
CREATE TABLE push_rule_settings (
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    enabled     BOOLEAN,
    actions     JSONB,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- Which events notify whom, for unread counts and /notifications.
CREATE TABLE event_push_actions (
    event_nid       BIGINT NOT NULL REFERENCES events (event_nid),
    user_id         TEXT NOT NULL,
    room_nid        BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    highlight       BOOLEAN NOT NULL,
    actions         JSONB NOT NULL,
    thread_id       TEXT NOT NULL DEFAULT 'main',
    PRIMARY KEY (event_nid, user_id)
);
CREATE INDEX event_push_actions_by_user ON event_push_actions (user_id, room_nid, stream_ordering);

CREATE TABLE pushers (
    user_id     TEXT NOT NULL,
    access_token_device TEXT NOT NULL,
    kind        TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    pushkey     TEXT NOT NULL,
    data        JSONB NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang        TEXT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey)
);
