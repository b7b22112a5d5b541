-- Dehydrated devices (MSC3814): at most one per user, an ordinary device row plus the client's
-- encrypted device state. Deleting the device removes it.
CREATE TABLE dehydrated_devices (
    user_id     TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    device_data JSONB NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
