"""The pure protocol core: no I/O, usable as a library by bridges and tools."""
