"""`multipart/mixed` bodies of federation media (server-server API, Content Repository):
a JSON metadata part, then the media itself (or a `Location` to fetch it from)."""

from __future__ import annotations

import re


class MultipartError(ValueError):
    """The body is not a well-formed multipart/mixed message."""


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise MultipartError("not multipart/mixed")
    return match.group(1)


def parse(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers with lower-case names, content) of each part."""
    delimiter = b"--" + boundary.encode("ascii")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        raise MultipartError("body does not start with the boundary")
    chunks[0] = first[len(delimiter):]
    parts = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break
        rest = chunk.lstrip(b" \t").removeprefix(b"\r\n")
        if rest.startswith(b"\r\n"):
            head, content = b"", rest[2:]
        else:
            head, sep, content = rest.partition(b"\r\n\r\n")
            if not sep:
                raise MultipartError("part without a blank line after its headers")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def build(parts: list[tuple[dict[str, str], bytes]], boundary: str) -> bytes:
    out = bytearray()
    for headers, content in parts:
        out += b"--" + boundary.encode("ascii") + b"\r\n"
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += b"\r\n" + content + b"\r\n"
    out += b"--" + boundary.encode("ascii") + b"--\r\n"
    return bytes(out)
