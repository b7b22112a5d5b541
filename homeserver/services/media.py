"""The media repository (client-server API content-repo.yaml, authed-content-repo.yaml).

Uploads stream to a temporary file and are refused the moment they pass
`max_upload_size`; files live under `media_store_path`, metadata in
PostgreSQL. Thumbnails are made with Pillow in a worker thread, within
Pillow's decompression-bomb limit, at a few standard sizes, and cached.
Media of other servers is fetched once over federation (`/_matrix/federation/v1/media/download`,
multipart) and cached under `remote_content`; its thumbnails are made here.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import string
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from homeserver.config import Config
from homeserver.core.ids import is_valid_server_name
from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.federation import multipart
from homeserver.federation.client import FederationClient, FederationError, Unreachable
from homeserver.services.sessions import Requester
from homeserver.storage import media as media_store
from homeserver.storage.database import Database

_ID_CHARS = string.ascii_letters
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]+\Z")
PENDING_LIFETIME_MS = 24 * 60 * 60 * 1000
MAX_PENDING_UPLOADS = 50
# Thumbnail sizes offered (Element asks for these); a request gets the closest one.
THUMBNAIL_SIZES = ((32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"), (800, 600, "scale"))
THUMBNAIL_SOURCE_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/gif", "image/webp", "image/bmp"}
MAX_IMAGE_PIXELS = 32 * 1024 * 1024
# Types a browser may show inline; everything else is an attachment (HTML, SVG, ...).
INLINE_TYPES = {
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json", "image/jpeg", "image/gif",
    "image/png", "image/apng", "image/webp", "image/avif", "video/mp4", "video/webm", "video/ogg",
    "video/quicktime", "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
                               "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


@dataclass(frozen=True)
class StoredFile:
    path: Path
    media_type: str
    length: int
    upload_name: str | None

    def headers(self) -> dict[str, str]:
        base_type = self.media_type.split(";", 1)[0].strip().lower()
        disposition = "inline" if base_type in INLINE_TYPES else "attachment"
        if self.upload_name:
            disposition += "; filename*=utf-8''" + urllib.parse.quote(self.upload_name, safe="")
        return {"Content-Disposition": disposition, **SECURITY_HEADERS}


def _filename(disposition: str) -> str | None:
    """The file name of a Content-Disposition header (RFC 6266 `filename*` first)."""
    match = re.search(r"filename\*=utf-8''([^;]+)", disposition, re.IGNORECASE)
    if match:
        return urllib.parse.unquote(match.group(1))
    match = re.search(r'filename="?([^";]+)"?', disposition, re.IGNORECASE)
    return match.group(1) if match else None


def _new_media_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(24))


def make_thumbnail(source: Path, width: int, height: int, method: str) -> tuple[bytes, str]:
    """Crop or scale an image (runs in a worker thread)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with Image.open(source) as image:
        if method == "crop":
            ratio = max(width / image.width, height / image.height)
            wanted = (round(image.width * ratio), round(image.height * ratio))
        else:
            wanted = (width, height)
        # JPEGs decode straight at a reduced scale (1/2 to 1/8) no smaller than needed: far less work.
        image.draft("RGB", wanted)
        image.load()
        if method == "crop":
            ratio = max(width / image.width, height / image.height)
            scaled = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))))
            left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
            result = scaled.crop((left, top, left + width, top + height))
        else:
            result = image.copy()
            result.thumbnail((width, height))
        alpha = result.mode in ("RGBA", "LA", "P")
        out = io.BytesIO()
        if alpha:
            result.convert("RGBA").save(out, "PNG")
            return out.getvalue(), "image/png"
        result.convert("RGB").save(out, "JPEG", quality=80)
        return out.getvalue(), "image/jpeg"


class Media:
    def __init__(self, config: Config, database: Database) -> None:
        self.config = config
        self.database = database
        self.root = config.media_store_file
        self.max_upload_size = config.max_upload_size_bytes
        self.federation_client: FederationClient | None = None
        """Fetches other servers' media; set by the server."""
        self._fetching: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    def _path(self, media_id: str) -> Path:
        return self.root / "local_content" / media_id[:2] / media_id[2:4] / media_id[4:]

    def _thumbnail_path(self, media_id: str, width: int, height: int, method: str) -> Path:
        return self.root / "local_thumbnails" / media_id[:2] / media_id[2:4] / media_id[4:] / f"{width}-{height}-{method}"

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.config.server_name}/{media_id}"

    async def _write(self, media_id: str, chunks: AsyncIterator[bytes], declared_length: int | None) -> int:
        """Stream to a temporary file and move it into place; 413 as soon as the limit is passed."""
        if declared_length is not None and declared_length > self.max_upload_size:
            raise MatrixError(413, "M_TOO_LARGE", f"Uploads are limited to {self.max_upload_size} bytes")
        final = self._path(media_id)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: final.parent.mkdir(parents=True, exist_ok=True))
        temporary = final.with_name(final.name + ".part")
        handle = await loop.run_in_executor(None, temporary.open, "wb")
        length = 0
        try:
            async for chunk in chunks:
                length += len(chunk)
                if length > self.max_upload_size:
                    raise MatrixError(413, "M_TOO_LARGE", f"Uploads are limited to {self.max_upload_size} bytes")
                await loop.run_in_executor(None, handle.write, chunk)
            await loop.run_in_executor(None, handle.close)
            await loop.run_in_executor(None, os.replace, temporary, final)
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
        return length

    async def upload(
        self, requester: Requester, chunks: AsyncIterator[bytes], media_type: str | None, filename: str | None,
        declared_length: int | None,
    ) -> str:
        media_id = _new_media_id()
        length = await self._write(media_id, chunks, declared_length)
        await media_store.add_media(
            self.database.pool, media_id, media_type or "application/octet-stream", length, filename,
            requester.user_id, int(time.time() * 1000), False, self.config.enable_authenticated_media,
        )
        return self.mxc(media_id)

    async def create(self, requester: Requester) -> dict[str, object]:
        """`/media/v1/create`: reserve an id to upload to later (asynchronous uploads)."""
        now = int(time.time() * 1000)
        if await media_store.pending_uploads(self.database.pool, requester.user_id, now - PENDING_LIFETIME_MS) \
                >= MAX_PENDING_UPLOADS:
            raise MatrixError(429, "M_LIMIT_EXCEEDED", "Too many pending uploads", retry_after_ms=60_000)
        media_id = _new_media_id()
        await media_store.add_media(self.database.pool, media_id, None, None, None, requester.user_id, now, True,
                                    self.config.enable_authenticated_media)
        return {"content_uri": self.mxc(media_id), "unused_expires_at": now + PENDING_LIFETIME_MS}

    async def upload_to(
        self, requester: Requester, server_name: str, media_id: str, chunks: AsyncIterator[bytes],
        media_type: str | None, filename: str | None, declared_length: int | None,
    ) -> None:
        row = await media_store.get_media(self.database.pool, media_id) \
            if server_name == self.config.server_name else None
        if row is None:
            raise not_found("Unknown media id")
        if row["user_id"] != requester.user_id:
            raise forbidden("This media id was created by another user")
        if not row["pending"]:
            raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media has already been uploaded")
        if row["created_ts"] < int(time.time() * 1000) - PENDING_LIFETIME_MS:
            raise not_found("The media id has expired")
        length = await self._write(media_id, chunks, declared_length)
        await media_store.complete_media(
            self.database.pool, media_id, media_type or "application/octet-stream", length, filename
        )

    async def _source(self, server_name: str, media_id: str, legacy: bool) -> tuple[dict[str, Any], Path]:
        """The media's metadata and file: ours, or another server's (fetched and cached once)."""
        if server_name != self.config.server_name:
            row = await self.fetch_remote(server_name, media_id)
            return row, self._remote_path(server_name, media_id)
        row = await media_store.get_media(self.database.pool, media_id)
        if row is None or (legacy and row["authenticated"]):
            raise not_found("Media not found")
        if row["pending"]:
            raise MatrixError(504, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet")
        return row, self._path(media_id)

    def _remote_path(self, server_name: str, media_id: str) -> Path:
        return self.root / "remote_content" / server_name / media_id[:2] / media_id[2:4] / media_id[4:]

    async def fetch_remote(self, server_name: str, media_id: str) -> dict[str, Any]:
        """Another server's media: from the cache, else downloaded over federation (one download
        at a time per item, however many ask)."""
        if not is_valid_server_name(server_name) or not MEDIA_ID.match(media_id):
            raise not_found("Media not found")
        row = await media_store.get_remote_media(self.database.pool, server_name, media_id)
        if row is not None:
            return row
        key = (server_name, media_id)
        pending = self._fetching.get(key)
        if pending is None:
            pending = self._fetching[key] = asyncio.ensure_future(self._download_remote(server_name, media_id))
            pending.add_done_callback(lambda _f: self._fetching.pop(key, None))
        return await asyncio.shield(pending)

    async def _download_remote(self, server_name: str, media_id: str) -> dict[str, Any]:
        if self.federation_client is None:
            raise not_found("Media not found")
        limit = self.max_upload_size + 65536
        try:
            content_type, body, _headers = await self.federation_client.download(
                server_name, "/_matrix/federation/v1/media/download/" + media_id, None, limit
            )
            parts = multipart.parse(body, multipart.boundary_of(content_type))
            if len(parts) < 2:
                raise multipart.MultipartError("no media part")
            headers, data = parts[1]
            if "location" in headers:
                media_type, data = await self.federation_client.fetch_url(headers["location"], limit)
            else:
                media_type = headers.get("content-type", "application/octet-stream")
        except FederationError as exc:
            if exc.status == 404:
                raise not_found("Media not found") from None
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} did not serve the media: {exc}") from None
        except (Unreachable, multipart.MultipartError) as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not fetch the media from {server_name}: {exc}") from None
        if len(data) > self.max_upload_size:
            raise MatrixError(502, "M_TOO_LARGE", "The remote media is larger than max_upload_size")
        path = self._remote_path(server_name, media_id)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".part")
            temporary.write_bytes(data)
            os.replace(temporary, path)

        await asyncio.get_running_loop().run_in_executor(None, write)
        upload_name = _filename(headers.get("content-disposition", ""))
        await media_store.add_remote_media(self.database.pool, server_name, media_id, media_type, len(data),
                                           upload_name, int(time.time() * 1000))
        return {"media_type": media_type, "media_length": len(data), "upload_name": upload_name}

    async def download(self, server_name: str, media_id: str, legacy: bool, filename: str | None = None) -> StoredFile:
        row, path = await self._source(server_name, media_id, legacy)
        return StoredFile(path, str(row["media_type"]), int(row["media_length"]), filename or row["upload_name"])

    async def thumbnail(
        self, server_name: str, media_id: str, width: int, height: int, method: str, legacy: bool
    ) -> StoredFile:
        if method not in ("crop", "scale"):
            raise invalid_param("method must be 'crop' or 'scale'")
        if width < 1 or height < 1:
            raise invalid_param("width and height must be positive")
        row, source = await self._source(server_name, media_id, legacy)
        remote = server_name != self.config.server_name
        if str(row["media_type"]).split(";")[0].lower() not in THUMBNAIL_SOURCE_TYPES:
            raise invalid_param("Thumbnails can only be made of images")
        candidates = [s for s in THUMBNAIL_SIZES if s[2] == method] or list(THUMBNAIL_SIZES)
        fitting = [s for s in candidates if s[0] >= width and s[1] >= height]
        size_w, size_h, _method = min(fitting) if fitting else max(candidates)
        if remote:
            path = self.root / "remote_thumbnails" / server_name / media_id / f"{size_w}-{size_h}-{method}"
            known = await media_store.get_remote_thumbnail(self.database.pool, server_name, media_id, size_w, size_h,
                                                           method)
        else:
            path = self._thumbnail_path(media_id, size_w, size_h, method)
            known = await media_store.get_thumbnail(self.database.pool, media_id, size_w, size_h, method)
        if known is None:
            loop = asyncio.get_running_loop()
            try:
                data, media_type = await loop.run_in_executor(None, make_thumbnail, source, size_w, size_h, method)
            except Exception as exc:
                if type(exc).__name__ == "DecompressionBombError":
                    raise MatrixError(400, "M_TOO_LARGE", "The image is too large to thumbnail") from None
                raise invalid_param("The media is not an image that can be thumbnailed") from None
            await loop.run_in_executor(None, lambda: (path.parent.mkdir(parents=True, exist_ok=True),
                                                      path.write_bytes(data)))
            if remote:
                await media_store.add_remote_thumbnail(self.database.pool, server_name, media_id, size_w, size_h,
                                                       method, media_type, len(data))
            else:
                await media_store.add_thumbnail(self.database.pool, media_id, size_w, size_h, method, media_type,
                                                len(data))
            known = {"media_type": media_type, "media_length": len(data)}
        return StoredFile(path, known["media_type"], known["media_length"], None)
