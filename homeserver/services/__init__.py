"""What the server does: one service per capability, each owning its caches."""
