"""URL previews (`/media/preview_url`): fetch a page, read its OpenGraph metadata, store its image.

Off unless `url_preview_enabled`. Every outbound connection goes to an address
checked against `url_preview_ip_range_blacklist` (private, loopback, link-local
and other special ranges by default) unless `url_preview_ip_range_whitelist`
allows it: host names are resolved here and the connection is made to the
checked address (no second lookup to rebind), IP literals are checked
directly, and redirects are followed one hop at a time, each checked. Bodies
are capped at `max_spider_size`, requests at a time limit; results are cached
in memory for an hour.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from html.parser import HTMLParser
from typing import Any, AsyncIterator
from urllib.parse import urljoin, urlsplit

import aiohttp

from homeserver.config import Config
from homeserver.errors import MatrixError, invalid_param
from homeserver.ip_ranges import BlockedAddress, CheckedResolver, blocked, ip_literal, parse_networks
from homeserver.services.media import Media
from homeserver.services.sessions import Requester

CACHE_SIZE = 1000
CACHE_LIFETIME_MS = 3_600_000
REQUEST_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "homeserver URL preview"


class _OpenGraph(HTMLParser):
    """Collects `og:*` meta tags, the title and the description from the head of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self.first_image: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        if tag == "meta":
            key = values.get("property") or values.get("name") or ""
            content = values.get("content")
            if content is None:
                return
            if key.startswith("og:") and key not in self.og:
                self.og[key] = content[:1000]
            elif key == "description" and self.description is None:
                self.description = content[:1000]
        elif tag == "title" and self.title is None:
            self._in_title = True
            self.title = ""
        elif tag == "img" and self.first_image is None and values.get("src"):
            self.first_image = values["src"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None and len(self.title) < 1000:
            self.title += data


def parse_html(body: bytes, charset: str | None, url: str) -> dict[str, Any]:
    """OpenGraph data of a page, falling back on its title, description and first image."""
    try:
        text = body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    parser = _OpenGraph()
    parser.feed(text)
    og: dict[str, Any] = dict(parser.og)
    if "og:title" not in og and parser.title:
        og["og:title"] = " ".join(parser.title.split())
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description
    image = og.get("og:image") or parser.first_image
    if image:
        og["og:image"] = urljoin(url, image)
    return og


def _forbidden_address() -> MatrixError:
    return MatrixError(403, "M_UNKNOWN", "The URL points to an address previews may not reach")


class UrlPreviews:
    def __init__(self, config: Config, media: Media) -> None:
        self.config = config
        self.media = media
        self.blacklist = parse_networks(config.url_preview_ip_range_blacklist)
        self.whitelist = parse_networks(config.url_preview_ip_range_whitelist)
        self.max_size = config.max_spider_size_bytes
        self._cache: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None

    async def preview(self, requester: Requester, url: str) -> dict[str, Any]:
        if not self.config.url_preview_enabled:
            raise MatrixError(404, "M_UNRECOGNIZED", "URL previews are disabled on this server")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid_param("Only http and https URLs can be previewed")
        now = int(time.time() * 1000)
        cached = self._cache.get(url)
        if cached and cached[0] > now - CACHE_LIFETIME_MS:
            return cached[1]
        content_type, charset, body, final_url = await self._fetch(url)
        if content_type.startswith("image/"):
            result = await self._store_image(requester, body, content_type)
        elif content_type in ("text/html", "application/xhtml+xml"):
            result = parse_html(body, charset, final_url)
            image = result.get("og:image")
            if isinstance(image, str) and image.startswith(("http://", "https://")):
                result.pop("og:image")
                try:
                    image_type, _c, image_body, _u = await self._fetch(image)
                    if image_type.startswith("image/"):
                        result.update(await self._store_image(requester, image_body, image_type))
                except MatrixError:
                    pass
        else:
            result = {}
        self._cache[url] = (now, result)
        self._cache.move_to_end(url)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    async def _store_image(self, requester: Requester, body: bytes, content_type: str) -> dict[str, Any]:
        async def chunks() -> AsyncIterator[bytes]:
            yield body

        mxc = await self.media.upload(requester, chunks(), content_type, None, len(body))
        return {"og:image": mxc, "og:image:type": content_type, "matrix:image:size": len(body)}

    async def _fetch(self, url: str) -> tuple[str, str | None, bytes, str]:
        """(content type, charset, body, final URL), following checked redirects."""
        for _hop in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            literal = ip_literal(host)
            if literal is not None and blocked(literal, self.blacklist, self.whitelist):
                raise _forbidden_address()
            try:
                async with self._http().get(url, allow_redirects=False, headers={"User-Agent": USER_AGENT}) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise MatrixError(502, "M_UNKNOWN", f"The page answered HTTP {resp.status}")
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(65536):
                        body += chunk
                        if len(body) > self.max_size:
                            raise MatrixError(502, "M_TOO_LARGE", "The page is larger than max_spider_size")
                    return resp.content_type, resp.charset, bytes(body), url
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddress):
                    raise _forbidden_address() from None
                raise MatrixError(502, "M_UNKNOWN", "Could not reach the page") from None
            except (aiohttp.ClientError, asyncio.TimeoutError):
                raise MatrixError(502, "M_UNKNOWN", "Could not fetch the page") from None
        raise MatrixError(502, "M_UNKNOWN", "Too many redirects")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=CheckedResolver(self.blacklist, self.whitelist),
                                             use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        return self._session

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
