-- A change only the user themself may learn of (a new user-signing key, which nobody else can
-- see): it reaches the user's own syncs, not those of the people sharing a room with them.
ALTER TABLE device_list_changes ADD COLUMN self_only BOOLEAN NOT NULL DEFAULT false;
