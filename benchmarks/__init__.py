"""Benchmarks the project's users run: `python -m benchmarks.<name> --help`."""
