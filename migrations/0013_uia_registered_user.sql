-- The account a completed registration session created: a retried request in the same session
-- (the answer was lost on the way) logs in to that account instead of failing with M_USER_IN_USE.
ALTER TABLE ui_auth_sessions ADD COLUMN registered_user_id TEXT;
