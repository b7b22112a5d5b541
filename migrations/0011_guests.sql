-- Guest accounts (POST /register?kind=guest) are numbered, as in Synapse.
CREATE SEQUENCE guest_user_ids;
