"""A lightweight Matrix homeserver on asyncio and PostgreSQL."""

__version__ = "0.1.0"
