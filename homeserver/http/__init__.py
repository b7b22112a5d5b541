"""aiohttp applications: routing, JSON in and out, errors, CORS, access logs."""
