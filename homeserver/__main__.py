"""`python -m homeserver` entry point."""

from homeserver.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
