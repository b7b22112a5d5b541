"""PostgreSQL access through asyncpg: the only package that contains SQL."""
